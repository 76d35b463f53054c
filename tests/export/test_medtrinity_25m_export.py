"""`export medtrinity-25m`: a build of the release's miniature comes back in the release's own columns and values,
plus the recovered boxes and the clean images; records of other sources are mapped into the same columns."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from fixtures.exporting import export
from fixtures.build import box_iou, build_source
from fixtures.medtrinity_25m import DEMO_ROWS, FULL_PARTS, HEIGHT, WIDTH, make_medtrinity_25m
from PIL import Image

from medtrinity.cli import main
from medtrinity.roi.experts.green_box import outline_green

COLUMNS = ["image", "id", "file_name", "caption", "source", "bboxes"]
# what the build writes of the miniature (the rest is quarantined: broken, repeated or without an image)
WRITTEN_FULL = {
    "chexpert_p1.jpg",
    "chexpert_p2.jpg",
    "brats_001.png",
    "NCT_TUM_01.jpg",
    "deeplesion_01.jpg",
    "deeplesion_02.jpg",
    "pmc_fig_07.jpg",
    "chexpert_p3.jpg",
}
WRITTEN_DEMO = {"demo_00001", "demo_00002", "demo_00003"}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_medtrinity_25m(tmp_path_factory.mktemp("release") / "MedTrinity-25M")


@pytest.fixture(scope="module")
def release_build(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "out"
    build_source(f"medtrinity-25m:{release}", out, on_contradiction="keep")
    return out


@pytest.fixture(scope="module")
def exported(release_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "mt25m"
    summary = export("medtrinity-25m", release_build, out, shard_size=4)
    files = sorted((out / "data").glob("*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    return summary, out, files, rows


def _released_rows(release) -> tuple[list[dict], list[dict]]:
    """The release's own rows, read from its Parquet files: 25M_full's and 25M_demo's (without images)."""
    full = [
        row
        for path in sorted((release / "25M_full").glob("train-*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    demo = pq.read_table(release / "25M_demo" / "train-00000-of-00001.parquet", columns=["id", "caption"]).to_pylist()
    return full, demo


def test_columns_and_values_are_the_releases_plus_bboxes(exported, release):
    summary, _, files, rows = exported
    assert [p.name for p in files] == [
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
    ]
    assert all(pq.read_schema(p).names == COLUMNS for p in files)
    assert summary.written == {"train": 11} and len(rows) == 11
    full, demo = _released_rows(release)
    released: dict[str, dict] = {}
    for row in full:  # a repeated file_name's later row is quarantined: the first one is exported
        if row["file_name"] in WRITTEN_FULL:
            released.setdefault(row["file_name"], row)
    assert len(released) == 8
    got = {r["file_name"]: r for r in rows if r["source"] is not None}
    assert {name: {k: r[k] for k in ("id", "file_name", "caption", "source")} for name, r in got.items()} == released
    # 25M_demo rows: their id and caption; the demo names no source and no file (file_name is its id)
    demo_rows = {r["id"]: r for r in rows if r["source"] is None}
    assert {i: (r["file_name"], r["caption"]) for i, r in demo_rows.items()} == {
        d["id"]: (d["id"], d["caption"]) for d in demo if d["id"] in WRITTEN_DEMO
    }


def test_bboxes_are_the_drawn_boxes_and_images_are_clean(exported):
    _, _, _, rows = exported
    drawn = {r.name: r.boxes for part in FULL_PARTS for r in part} | {r.name: r.boxes for r in DEMO_ROWS}
    for row in rows:
        truth = drawn[row["file_name"]]
        assert len(row["bboxes"]) == len(truth), row["file_name"]
        for box in truth:
            assert max(box_iou(box, b) for b in row["bboxes"]) >= 0.9, row["file_name"]
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        assert image.size == (WIDTH, HEIGHT)
        assert not outline_green(np.asarray(image.convert("RGB"))).any(), row["file_name"]
        stem = row["file_name"].rsplit(".", 1)[0]
        assert row["image"]["path"] == f"{stem}.png"  # the cleaned pixels, stored losslessly
    brats = next(r for r in rows if r["file_name"] == "brats_001.png")  # a PNG outline: exact coordinates
    assert sorted(brats["bboxes"]) == [[10, 8, 56, 42], [146, 116, 192, 152]]


def test_export_json_counts_the_contradicted_captions(exported):
    summary, _, _, _ = exported
    assert summary.details == {
        "parquet_files": 3,
        "rows_from_the_release": 11,
        "released_captions_contradicted": {"(none)": 1, "chexpert": 2},
    }
    assert summary.options == {
        "include_failed": False,
        "include_test": False,
        "exclude": False,
        "include_expert": False,
        "shard_size": 4,
    }


def test_load_dataset_reads_the_export_with_images_decoded(exported):
    datasets = pytest.importorskip("datasets")
    _, out, _, rows = exported
    loaded = datasets.load_dataset(str(out), cache_dir=str(out.parent / "hf-cache"))  # not the shared cache
    assert list(loaded) == ["train"] and len(loaded["train"]) == 11
    assert loaded["train"].column_names == COLUMNS
    first = loaded["train"][0]
    assert first["image"].size == (WIDTH, HEIGHT) and first["id"] == rows[0]["id"]


def test_other_sources_are_mapped_into_the_same_columns(mini_build, mini_rows, tmp_path):
    summary = export("medtrinity-25m", mini_build, tmp_path / "all", include_expert=True)
    rows = [r for p in sorted((tmp_path / "all" / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert len(rows) == sum(summary.written.values())
    by_id = {r["id"]: r for r in mini_rows}
    others = [r for r in rows if r["id"] in by_id]
    assert {by_id[r["id"]]["source"] for r in others} >= {"demo", "busi", "kvasir-seg", "chexpert"}
    for row in others:
        record = by_id[row["id"]]
        assert row["file_name"] == record["origin"]["file"]
        assert row["caption"] == record["description"] and row["source"] == record["source"]
        assert row["bboxes"] == [roi["bbox"] for roi in record["rois"]]  # experts' too, with --include-expert
    release = [r for r in rows if r["id"] not in by_id]
    assert len(release) == summary.details["rows_from_the_release"] == 11
    # without --include-expert, an expert's boxes stay out (the sources' annotations and recovered boxes stay)
    plain = export("medtrinity-25m", mini_build, tmp_path / "plain")
    kept = {
        r["id"]: r["bboxes"]
        for p in sorted((tmp_path / "plain" / "data").glob("*.parquet"))
        for r in pq.read_table(p, columns=["id", "bboxes"]).to_pylist()
    }
    for record in mini_rows:
        if record["id"] in kept:
            assert kept[record["id"]] == [roi["bbox"] for roi in record["rois"] if roi["source"] == "annotation"]
    assert plain.written == summary.written


def test_command_line(release_build, tmp_path, capsys):
    assert main(["export", "medtrinity-25m", str(release_build), "--out", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote 11 records (train 11) as medtrinity-25m to {tmp_path / 'o'}"
    assert "  released captions contradicted: (none) 1, chexpert 2" in lines
    assert main(["export", "medtrinity-25m", str(release_build), "--out", str(tmp_path / "p"), "--kind", "qa"]) == 2
    assert capsys.readouterr().err == "medtrinity: error: --kind applies to llava exports, not medtrinity-25m\n"
    assert not (tmp_path / "p").exists()
