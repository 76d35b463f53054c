"""The output folder (pipeline/store.py) in-process: which folders it refuses, what prepare removes and keeps,
shard files and markers, and the sums the manifest is made of."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medtrinity.errors import UserError
from medtrinity.pipeline.store import ShardStore, shard_name
from medtrinity.records import QUARANTINE_SCHEMA, SCHEMA, Origin, Sample, sample_to_row

IDENTITY = {
    "shard_size": 4,
    "top_k": 3,
    "sources": [{"recipe": "toy", "path": "/d/toy"}],
    "recipes": [{"name": "toy", "expert": None}],
    "listing": {"count": 8, "digest": "ab12"},
}


def row(i: int, source: str = "toy") -> dict:
    sample = Sample(
        id=f"id{i:02d}", source=source, origin=Origin(file=f"images/case{i:03d}.png"), modality="CT", width=8, height=6
    )
    sample.image_bytes = b"\x89PNG\r\n\x1a\n" + bytes([i])
    return sample_to_row(sample)


def bad(i: int, transient: bool = False, source: str = "toy") -> dict:
    return {
        "id": f"id{i:02d}",
        "source": source,
        "file": f"images/case{i:03d}.png",
        "stage": "describe",
        "reason": "model server unreachable" if transient else "image is empty",
        "transient": transient,
    }


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


@pytest.fixture
def store(tmp_path) -> ShardStore:
    store = ShardStore(tmp_path / "out")
    store.prepare(IDENTITY, resume=False, overwrite=False)
    return store


# ---------------------------------------------------------------- names
def test_shard_names_have_five_digits():
    assert shard_name(0) == "part-00000"
    assert shard_name(42) == "part-00042"
    assert shard_name(123456) == "part-123456"


# ---------------------------------------------------------------- which folders a build may use
def test_a_new_folder_is_made_with_its_subfolders_and_run_record(tmp_path):
    store = ShardStore(tmp_path / "a" / "out")
    assert store.holds_build() is False
    store.prepare(IDENTITY, resume=False, overwrite=False)
    assert sorted(p.name for p in store.out.iterdir()) == ["_progress", "cache", "data", "quarantine"]
    assert json.loads((store.out / "_progress" / "run.json").read_text()) == IDENTITY
    assert (store.out / "_progress" / "run.json").read_text() == json.dumps(IDENTITY, sort_keys=True)
    assert store.holds_build() is True


def test_resume_on_a_new_folder_starts_the_build(tmp_path):
    store = ShardStore(tmp_path / "out")
    store.prepare(IDENTITY, resume=True, overwrite=False)
    assert files(store.out) == ["_progress/run.json"]
    assert store.markers() == []


def test_an_empty_folder_and_one_left_with_only_our_names_are_accepted(tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "cache").mkdir()
    (out / "errors.log").write_text("")
    (out / ".manifest.json.tmp-4242").write_bytes(b"partial")  # a kill during the manifest's write
    store = ShardStore(out)
    store.check(IDENTITY, resume=False, overwrite=False)
    store.prepare(IDENTITY, resume=False, overwrite=False)
    assert not (out / ".manifest.json.tmp-4242").exists()
    assert (out / "errors.log").exists()


def test_a_folder_of_other_files_is_refused_naming_three_of_them(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    for name in ("d.jpg", "a.jpg", "c.jpg", "b.jpg", "manifest.json.bak", ".x.tmp-1a"):
        (out / name).write_bytes(b"")
    (out / "data").mkdir()
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(UserError) as refused:
            ShardStore(out).prepare(IDENTITY, resume=resume, overwrite=overwrite)
        assert str(refused.value) == (
            f"--out {out} is not empty and holds no build (.x.tmp-1a, a.jpg, b.jpg, +3 more); "
            "give a new or empty folder"
        )
    assert files(out) == [".x.tmp-1a", "a.jpg", "b.jpg", "c.jpg", "d.jpg", "manifest.json.bak"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["data"]


def test_a_folder_of_three_other_files_lists_them_all(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    for name in ("x", "y", "z"):
        (out / name).write_text("")
    with pytest.raises(UserError, match=r"holds no build \(x, y, z\); give"):
        ShardStore(out).check(IDENTITY, resume=False, overwrite=False)


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"PAR1")
    with pytest.raises(UserError) as refused:
        ShardStore(out).prepare(IDENTITY, resume=False, overwrite=True)
    assert str(refused.value) == f"--out {out} is a file; give a folder for the dataset"
    assert out.read_bytes() == b"PAR1"


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out"
    with pytest.raises(UserError) as refused:
        ShardStore(out).prepare(IDENTITY, resume=False, overwrite=False)
    assert str(refused.value) == f"cannot create the output folder {out}: Not a directory"


def test_a_second_build_without_resume_or_overwrite_is_refused_and_changes_nothing(store):
    store.write_shard(0, [row(0)], [], {"toy": {"seen": 1, "written": 1, "quarantined": 0}})
    before = {name: stamp(store.out / name) for name in files(store.out)}
    with pytest.raises(UserError) as refused:
        store.prepare(IDENTITY, resume=False, overwrite=False)
    assert str(refused.value) == (
        f"{store.out} already holds a build: pass --resume to continue it or --overwrite to replace it"
    )
    assert {name: stamp(store.out / name) for name in files(store.out)} == before


def test_a_folder_with_only_a_manifest_holds_a_build(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    store = ShardStore(out)
    assert store.holds_build() is True
    with pytest.raises(UserError, match="already holds a build"):
        store.check(IDENTITY, resume=False, overwrite=False)
    with pytest.raises(UserError) as refused:
        store.check(IDENTITY, resume=True, overwrite=False)
    assert str(refused.value) == (
        f"{out} holds a build without its run record (run.json), so it cannot be resumed; "
        "pass --overwrite to start again"
    )


def test_resume_with_other_settings_is_refused_naming_each_change(store):
    changed = {**IDENTITY, "shard_size": 5, "top_k": 0}
    with pytest.raises(UserError) as refused:
        store.prepare(changed, resume=True, overwrite=False)
    assert str(refused.value) == (
        f"{store.out} was built with other settings (--shard-size 4 -> 5; --top-k 3 -> 0); "
        "resume with the same ones, or pass --overwrite to start again"
    )
    assert json.loads((store.progress_dir / "run.json").read_text()) == IDENTITY


def test_resume_keeps_finished_shards_untouched(store):
    store.write_shard(0, [row(0)], [bad(1)], {"toy": {"seen": 2, "written": 1, "quarantined": 1}})
    kept = ["data/part-00000.parquet", "quarantine/part-00000.parquet", "_progress/part-00000.json"]
    before = {name: stamp(store.out / name) for name in kept}
    store.prepare(IDENTITY, resume=True, overwrite=False)
    assert {name: stamp(store.out / name) for name in kept} == before
    assert store.is_done(0) is True


def test_overwrite_removes_the_old_build_and_keeps_the_users_files_and_the_cache(store):
    store.write_shard(0, [row(0)], [bad(1)], {"toy": {"seen": 2, "written": 1, "quarantined": 1}})
    store.write_manifest({"totals": {"seen": 2}})
    (store.out / "README.txt").write_text("my notes")
    (store.cache_dir / "requests.sqlite").write_bytes(b"cache")
    other = {**IDENTITY, "top_k": 5}
    store.prepare(other, resume=False, overwrite=True)
    assert files(store.out) == ["README.txt", "_progress/run.json", "cache/requests.sqlite"]
    assert sorted(p.name for p in store.out.iterdir()) == ["README.txt", "_progress", "cache", "data", "quarantine"]
    assert json.loads((store.progress_dir / "run.json").read_text()) == other
    assert store.is_done(0) is False


def test_overwrite_of_a_build_killed_before_its_manifest_starts_clean(store):
    store.write_shard(0, [row(0)], [], {"toy": {"seen": 1, "written": 1, "quarantined": 0}})
    assert not (store.out / "manifest.json").exists()
    store.prepare(IDENTITY, resume=False, overwrite=True)
    assert files(store.out) == ["_progress/run.json"]


def test_overwrite_of_a_build_left_with_only_a_manifest_removes_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    ShardStore(out).prepare(IDENTITY, resume=False, overwrite=True)
    assert files(out) == ["_progress/run.json"]


def test_temp_files_of_a_killed_run_are_removed_at_every_level_and_nothing_else(store):
    planted = [
        store.out / ".manifest.json.tmp-17",
        store.progress_dir / ".part-00001.json.tmp-17",
        store.data_dir / ".part-00001.parquet.tmp-123",
        store.cache_dir / "sub" / ".x.tmp-9",
    ]
    kept = [
        store.data_dir / "notes.tmp-1",
        store.data_dir / ".part.tmp-",
        store.data_dir / ".part.tmp-1b",
        store.out / "x.manifest.json.tmp-17",
    ]
    for path in planted + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    store.remove_stale_temporaries()
    assert [p for p in planted if p.exists()] == []
    assert [p for p in kept if p.exists()] == kept


# ---------------------------------------------------------------- shards
def test_a_written_shard_is_done_and_reads_back(store):
    assert store.is_done(3) is False
    counts = {"toy": {"seen": 3, "written": 2, "quarantined": 1}}
    store.write_shard(3, [row(0), row(1)], [bad(2, transient=True)], counts, extra={"describer_usage": {"requests": 3}})
    assert store.is_done(3) is True
    assert store.is_done(2) is False
    assert store.marker(3) == {
        "shard": 3,
        "written": 2,
        "quarantined": 1,
        "sources": counts,
        "describer_usage": {"requests": 3},
    }
    assert [r["id"] for r in store.shard_rows(3)] == ["id00", "id01"]
    assert store.shard_rows(3, "quarantine") == [bad(2, transient=True)]
    assert store.shard_rows(4) == [] and store.shard_rows(4, "quarantine") == []
    # The declared schemas, metadata included (it tells `datasets` that `image` is an Image).
    data_schema = pq.read_schema(store.data_dir / "part-00003.parquet")
    assert data_schema.remove_metadata() == SCHEMA.remove_metadata()
    assert data_schema.metadata[b"huggingface"] == SCHEMA.metadata[b"huggingface"]
    assert (
        pq.read_schema(store.quarantine_dir / "part-00003.parquet").remove_metadata()
        == QUARANTINE_SCHEMA.remove_metadata()
    )
    assert files(store.out) == [
        "_progress/part-00003.json",
        "_progress/run.json",
        "data/part-00003.parquet",
        "quarantine/part-00003.parquet",
    ]


def test_a_shard_without_extras_has_the_four_marker_fields(store):
    store.write_shard(0, [], [bad(0)], {"toy": {"seen": 1, "written": 0, "quarantined": 1}})
    assert store.marker(0) == {
        "shard": 0,
        "written": 0,
        "quarantined": 1,
        "sources": {"toy": {"seen": 1, "written": 0, "quarantined": 1}},
    }
    assert not (store.data_dir / "part-00000.parquet").exists()


def test_a_redone_shard_without_rows_removes_the_stale_files_of_an_earlier_attempt(store):
    store.write_shard(1, [row(0)], [bad(1)], {"toy": {"seen": 2, "written": 1, "quarantined": 1}})
    store.unfinish(1)
    assert store.is_done(1) is False
    store.write_shard(1, [], [bad(0), bad(1)], {"toy": {"seen": 2, "written": 0, "quarantined": 2}})
    assert not (store.data_dir / "part-00001.parquet").exists()
    assert [q["id"] for q in store.shard_rows(1, "quarantine")] == ["id00", "id01"]
    store.write_shard(1, [row(0), row(1)], [], {"toy": {"seen": 2, "written": 2, "quarantined": 0}})
    assert not (store.quarantine_dir / "part-00001.parquet").exists()
    assert [r["id"] for r in store.shard_rows(1)] == ["id00", "id01"]


def test_unfinish_of_a_shard_that_never_finished_is_harmless(store):
    store.unfinish(7)
    assert store.is_done(7) is False


def test_shards_are_zstd_parquet_in_row_groups_of_128(store):
    quarantined = [bad(i) for i in range(130)]
    store.write_shard(0, [row(0)], quarantined, {"toy": {"seen": 131, "written": 1, "quarantined": 130}})
    meta = pq.ParquetFile(store.quarantine_dir / "part-00000.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [128, 2]
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert (
        pq.read_schema(store.quarantine_dir / "part-00000.parquet").remove_metadata()
        == QUARANTINE_SCHEMA.remove_metadata()
    )
    assert not [p for p in store.out.rglob("*") if ".tmp-" in p.name]


# ---------------------------------------------------------------- sums over the finished shards
def test_transient_ids_and_count(store):
    store.write_shard(
        0,
        [row(0)],
        [bad(1, transient=True), bad(2), bad(3, transient=True)],
        {"toy": {"seen": 4, "written": 1, "quarantined": 3}},
    )
    store.write_shard(1, [], [bad(4, transient=True)], {"toy": {"seen": 1, "written": 0, "quarantined": 1}})
    store.write_shard(2, [row(5)], [], {"toy": {"seen": 1, "written": 1, "quarantined": 0}})
    assert store.transient_ids(0) == {"id01", "id03"}
    assert store.transient_ids(1) == {"id04"}
    assert store.transient_ids(2) == set()
    assert store.transient_count() == 3
    store.unfinish(1)  # only finished shards count
    assert store.transient_count() == 2


def test_a_quarantine_written_before_the_transient_column_has_no_transient_ids(store):
    old_schema = pa.schema([f for f in QUARANTINE_SCHEMA if f.name != "transient"])
    rows = [{k: v for k, v in bad(1).items() if k != "transient"}]
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema), store.quarantine_dir / "part-00000.parquet")
    assert store.transient_ids(0) == set()


def test_markers_are_in_shard_order_and_skip_the_run_record(store):
    for index in (10, 2, 0):
        store.write_shard(index, [], [bad(index)], {"toy": {"seen": 1, "written": 0, "quarantined": 1}})
    assert [m["shard"] for m in store.markers()] == [0, 2, 10]


def test_source_counts_sum_the_markers_per_source_sorted(store):
    store.write_shard(
        0,
        [row(0), row(1, "b-src")],
        [bad(2)],
        {"toy": {"seen": 2, "written": 1, "quarantined": 1}, "b-src": {"seen": 1, "written": 1, "quarantined": 0}},
    )
    store.write_shard(1, [row(3)], [bad(4)], {"toy": {"seen": 2, "written": 1, "quarantined": 1}})
    counts = store.source_counts()
    assert counts == {
        "b-src": {"seen": 1, "written": 1, "quarantined": 0},
        "toy": {"seen": 4, "written": 2, "quarantined": 2},
    }
    assert list(counts) == ["b-src", "toy"]
    assert all(type(v) is int for c in counts.values() for v in c.values())


def test_describer_usage_is_summed_over_the_shards_that_have_one(store):
    assert store.describer_usage() is None
    store.write_shard(0, [row(0)], [], {"toy": {"seen": 1, "written": 1, "quarantined": 0}})
    assert store.describer_usage() is None
    store.write_shard(
        1,
        [row(1)],
        [],
        {"toy": {"seen": 1, "written": 1, "quarantined": 0}},
        extra={"describer_usage": {"requests": 2, "retries": 1}},
    )
    store.write_shard(
        2,
        [row(2)],
        [],
        {"toy": {"seen": 1, "written": 1, "quarantined": 0}},
        extra={"describer_usage": {"requests": 3, "cache_hits": 1}},
    )
    store.write_shard(
        3, [row(3)], [], {"toy": {"seen": 1, "written": 1, "quarantined": 0}}, extra={"describer_usage": {}}
    )
    assert store.describer_usage() == {"requests": 5, "retries": 1, "cache_hits": 1}


def test_the_manifest_is_indented_json_in_the_given_key_order(store):
    path = store.write_manifest({"z": 1, "a": {"b": [1, 2]}})
    assert path == store.out / "manifest.json"
    assert path.read_text() == '{\n  "z": 1,\n  "a": {\n    "b": [\n      1,\n      2\n    ]\n  }\n}\n'
    assert not [p for p in os.listdir(store.out) if ".tmp-" in p]


def test_the_saved_identity_is_the_run_record_or_none(tmp_path):
    store = ShardStore(tmp_path / "out")
    assert store.saved_identity() is None  # no folder yet
    store.prepare(IDENTITY, resume=False, overwrite=False)
    assert store.saved_identity() == IDENTITY
    run_file = store.progress_dir / "run.json"
    run_file.write_text('{"shard_size": 4')  # cut short by a full disk
    assert store.saved_identity() is None
    run_file.write_text('["shard_size", 4]')  # JSON, but not a record
    assert store.saved_identity() is None
