"""`medtrinity export`: what a user gets right or wrong — one line and nothing written for every mistake, an
atomic output folder, and the records left out (failed checks, test split, --exclude) counted with the reason."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures.exporting import export
from fixtures.build import read_rows

from medtrinity.cli import main
from medtrinity.errors import UserError
from medtrinity.export import llava
from medtrinity.records import SCHEMA, rows_to_table


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["export", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _split_counts(rows: list[dict]) -> tuple[int, int, int]:
    """(train, val, test) records of the miniature build: no split -> train, validate -> val."""
    splits = [r["split"] for r in rows]
    test = splits.count("test")
    val = sum(s in ("val", "validate", "validation", "valid", "dev") for s in splits)
    return len(rows) - test - val, val, test


def test_cli_writes_and_summarises(mini_build, mini_rows, tmp_path, capsys):
    train, val, test = _split_counts(mini_rows)
    quarantined = len(read_rows(mini_build, "quarantine"))
    assert (val, test) == (4, 6) and quarantined > 0
    code, out, err = _run(capsys, "coco", mini_build, "--out", tmp_path / "coco")
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"wrote {train + val} records (train {train}, val {val}) as coco to ")
    assert "left out 6: in a benchmark's test split (--include-test exports them, to test files only)" in out
    assert f"not exported {quarantined}: quarantined by the build (see its quarantine/)" in out
    saved = json.loads((tmp_path / "coco" / "export.json").read_text())
    assert saved["records_written"] == train + val and saved["left_out"] == {"failed": 0, "test": 6, "excluded": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pdf", "{build}", "--out", "{out}"], "argument FORMAT: invalid choice: 'pdf'"),
        (
            ["llava", "{build}", "--out", "{out}", "--box-format", "xyxy"],
            "argument --box-format: invalid choice: 'xyxy'",
        ),
        (
            ["coco", "{build}", "--out", "{out}", "--box-format", "qwen"],
            "--box-format applies to llava exports, not coco",
        ),
        (
            ["hf", "{build}", "--out", "{out}", "--include-expert"],
            "--include-expert applies to llava, coco and medtrinity-25m exports",
        ),
        (["llava", "{tmp}", "--out", "{out}"], "is not a medtrinity build: it has no manifest.json and data/ folder"),
        (["llava", "{tmp}/missing", "--out", "{out}"], "is not a folder; give the output folder of a build"),
        (["llava", "{empty}", "--out", "{out}"], "holds no record (data/ has no rows); nothing to export"),
        (["llava", "{build}", "--out", "{existing}"], "already exists; pass --overwrite to replace it"),
        (["llava", "{build}", "--out", "{build}"], "would replace the build itself"),
        (
            ["llava", "{build}", "--out", "{out}", "--shard-size", "0"],
            "--shard-size applies to webdataset, hf and medtrinity-25m",
        ),
        (["webdataset", "{build}", "--out", "{out}", "--shard-size", "0"], "--shard-size must be a positive number"),
        (["llava", "{build}", "--out", "{out}", "--exclude", "{tmp}/nope.txt"], "--exclude "),
    ],
)
def test_mistakes_give_one_line_and_write_nothing(mini_build, tmp_path, capsys, argv, message):
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    (empty / "manifest.json").write_text("{}")
    pq.write_table(rows_to_table([]), empty / "data" / "part-00000.parquet")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    values = {"build": mini_build, "out": tmp_path / "out", "tmp": tmp_path, "empty": empty, "existing": existing}
    code, out, err = _run(capsys, *(a.format(**values) for a in argv))
    assert code == 2 and out == ""
    assert err.startswith("medtrinity: error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temporary folder left
    assert (existing / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_an_earlier_export(mini_build, tmp_path):
    out = tmp_path / "llava"
    out.mkdir()
    (out / "old.txt").write_text("old")
    export("llava", mini_build, out, kind="caption", overwrite=True)
    assert not (out / "old.txt").exists() and (out / "train.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llava"]


def test_an_interrupted_export_leaves_no_folder(mini_build, tmp_path, monkeypatch):
    calls = []

    def add_then_fail(self, row):
        calls.append(row["id"])
        if len(calls) == 20:
            raise KeyboardInterrupt
        return original(self, row)

    original = llava.Writer.add
    monkeypatch.setattr(llava.Writer, "add", add_then_fail)
    with pytest.raises(KeyboardInterrupt):
        export("llava", mini_build, tmp_path / "llava")
    assert len(calls) == 20 and list(tmp_path.iterdir()) == []


def test_exclude_file_and_failed_checks(mini_build, mini_rows, tmp_path):
    # A copy of the build in which two records failed a check, as `--on-contradiction keep` writes them.
    build = tmp_path / "build"
    shutil.copytree(mini_build, build)
    part = build / "data" / "part-00000.parquet"
    rows = pq.read_table(part).to_pylist()
    failing = [r["id"] for r in rows if r["source"] == "kvasir-seg"][:2]
    for row in rows:
        if row["id"] in failing:
            row["checks"] = [
                *row["checks"],
                {"name": "side", "ok": False, "detail": "text says left", "status": "fail"},
            ]
    pq.write_table(rows_to_table(rows), part)
    assert pq.read_schema(part).equals(SCHEMA, check_metadata=False)

    excluded = [r["id"] for r in mini_rows if r["source"] == "busi"]
    (tmp_path / "leaks.txt").write_text("# ids from the leakage report\n" + "\n".join(excluded) + "\nffff\n")
    summary = export("webdataset", build, tmp_path / "out", exclude=str(tmp_path / "leaks.txt"))
    assert dict(summary.catalog.left_out) == {"failed": 2, "test": 6, "excluded": 4}
    assert dict(summary.catalog.failed_checks) == {"side": 2}
    train, val, _ = _split_counts(mini_rows)
    assert summary.catalog.excluded_unknown == 1 and sum(summary.written.values()) == train + val - 2 - 4
    names = set()
    for shard in (tmp_path / "out").glob("*.tar"):
        with tarfile.open(shard) as tar:
            names |= {member.split(".")[0] for member in tar.getnames()}
    assert not names & set(failing + excluded)

    (tmp_path / "leaks.json").write_text(json.dumps({"leaks": [{"id": i, "near": "x"} for i in excluded]}))
    again = export("webdataset", build, tmp_path / "again", exclude=str(tmp_path / "leaks.json"), include_failed=True)
    assert dict(again.catalog.left_out) == {"test": 6, "excluded": 4}


def test_nothing_left_to_export_is_refused(mini_build, mini_rows, tmp_path):
    (tmp_path / "all.txt").write_text("\n".join(r["id"] for r in mini_rows))
    with pytest.raises(UserError, match="is left to export"):
        export("llava", mini_build, tmp_path / "out", exclude=str(tmp_path / "all.txt"))
    assert not (tmp_path / "out").exists()


def test_build_reader_reads_in_batches(mini_build):
    from medtrinity.export.build_reader import BATCH_ROWS, Build

    sizes = [len(batch) for batch in Build(mini_build).batches(["id"])]
    assert max(sizes) == BATCH_ROWS and sum(sizes) == Build(Path(mini_build)).rows
