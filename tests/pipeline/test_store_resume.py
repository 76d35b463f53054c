"""A build's output folder across runs, in-process: --resume leaves finished shards untouched and redoes the rest
from scratch, --overwrite starts clean, a repeated build without either is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.build import read_rows

from medtrinity.errors import UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build


def build(recipe: Path, root: Path, out: Path, **kw) -> dict:
    return run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(out), shard_size=4, **kw), show_progress=False)


def stamps(out: Path) -> dict[str, tuple[int, int]]:
    """Inode and mtime of every file: a rewritten file (temp + rename) gets a new inode."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_resume_skips_finished_shards_and_redoes_the_unfinished_one_from_scratch(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    build(recipe, root, out)
    whole = read_rows(out)
    assert [len(read_rows(out)), len(list((out / "_progress").glob("part-*.json")))] == [12, 3]
    # Shard 2 as a kill during its write leaves it: marker gone, a stale data file (shard 0's rows), a temp file.
    (out / "_progress" / "part-00002.json").unlink()
    (out / "data" / "part-00002.parquet").write_bytes((out / "data" / "part-00000.parquet").read_bytes())
    (out / "data" / ".part-00002.parquet.tmp-999").write_bytes(b"partial")
    (out / "manifest.json").unlink()
    finished = {name: stamp for name, stamp in stamps(out).items() if "part-00000" in name or "part-00001" in name}
    assert len(finished) == 4  # data and marker of shards 0 and 1 (nothing was quarantined)

    manifest = build(recipe, root, out, resume=True)

    after = stamps(out)
    assert {name: after[name] for name in finished} == finished
    assert read_rows(out) == whole
    assert manifest["sources"] == {"toy-ultrasound": {"seen": 12, "written": 12, "quarantined": 0}}
    assert (out / "_progress" / "part-00002.json").exists()
    assert not (out / "data" / ".part-00002.parquet.tmp-999").exists()


def test_resume_of_a_finished_build_rewrites_no_shard(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    build(recipe, root, out)
    before = {name: stamp for name, stamp in stamps(out).items() if name.startswith(("data/", "_progress/part-"))}
    build(recipe, root, out, resume=True)
    after = stamps(out)
    assert {name: after[name] for name in before} == before


def test_a_redone_shard_that_writes_no_rows_removes_its_stale_data_file(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    build(recipe, root, out)
    # Shard 2 unfinished with a data file, and its images now unreadable: the redo writes no rows.
    (out / "_progress" / "part-00002.json").unlink()
    for i in (8, 9, 10, 11):
        (root / "images" / f"case{i:03d}.png").write_bytes(b"")
    manifest = build(recipe, root, out, resume=True)
    assert manifest["shards"]["data"] == ["part-00000.parquet", "part-00001.parquet"]
    assert not (out / "data" / "part-00002.parquet").exists()
    assert [q["file"] for q in read_rows(out, "quarantine")] == [f"images/case{i:03d}.png" for i in (8, 9, 10, 11)]
    assert manifest["sources"] == {"toy-ultrasound": {"seen": 12, "written": 8, "quarantined": 4}}


def test_resume_on_a_new_folder_builds_it(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    manifest = build(recipe, root, tmp_path / "new", resume=True)
    assert manifest["totals"] == {"seen": 12, "written": 12, "quarantined": 0}
    assert len(read_rows(tmp_path / "new")) == 12


def test_a_repeated_build_without_flags_is_refused_and_leaves_the_build_as_it_was(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    build(recipe, root, out)
    before = stamps(out)
    with pytest.raises(UserError) as refused:
        build(recipe, root, out)
    assert str(refused.value) == (
        f"{out} already holds a build: pass --resume to continue it or --overwrite to replace it"
    )
    assert stamps(out) == before


def test_overwrite_removes_the_old_shards_and_manifest(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    build(recipe, root, out)  # 3 shards of 4
    old_manifest = (out / "manifest.json").read_text()
    (out / "data" / "part-00099.parquet").write_bytes(b"an old shard of another size")
    (out / "_progress" / "part-00099.json").write_text("{}")
    manifest = build(recipe, root, out, overwrite=True, limit=5)  # 2 shards: 4 + 1
    assert manifest["shards"]["data"] == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(p.name for p in (out / "_progress").iterdir()) == ["part-00000.json", "part-00001.json", "run.json"]
    assert (out / "manifest.json").read_text() != old_manifest
    assert manifest["totals"] == {"seen": 5, "written": 5, "quarantined": 0}
