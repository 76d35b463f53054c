"""The demo: real bundled images of several modalities, every record with a consistent ROI."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from medtrinity.pipeline.config import BuildConfig, SourceSpec
from medtrinity.pipeline.runner import run_build
from medtrinity.roi.geometry import area_ratio, bbox_of_mask, describe_position, rle_area, rle_to_mask

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    manifest = run_build(BuildConfig(sources=[SourceSpec(recipe="demo", path=".")], out=str(out)), show_progress=False)
    return out, manifest


def test_demo_builds_21_records_of_8_modalities_without_quarantine(demo_out):
    out, manifest = demo_out
    assert manifest["sources"]["demo"]["seen"] == 21  # the README's "21 images from 17 files"
    assert manifest["sources"]["demo"]["quarantined"] == 0, list((out / "quarantine").glob("*"))
    rows = pq.read_table(out / "data" / "part-00000.parquet").to_pylist()
    assert len({r["modality"] for r in rows}) == 8
    assert len({r["id"] for r in rows}) == len(rows)


def test_every_demo_roi_is_consistent(demo_out):
    out, _ = demo_out
    for row in pq.read_table(out / "data" / "part-00000.parquet").to_pylist():
        # MR_small is a crop with tissue to every edge: no region stands out, and the expert honestly finds none.
        assert row["rois"] or row["origin"]["file"].endswith("/MR_small.dcm"), row["origin"]["file"]
        for roi in row["rois"]:
            mask = rle_to_mask(roi["mask"])
            assert mask.shape == (row["height"], row["width"])
            assert bbox_of_mask(mask) == roi["bbox"]
            assert roi["area_ratio"] == area_ratio(rle_area(roi["mask"]), row["width"], row["height"])
            x0, y0, x1, y1 = roi["bbox"]
            expected = describe_position((x0 + x1) / 2 / row["width"], (y0 + y1) / 2 / row["height"])
            assert (roi["position"]["horizontal"], roi["position"]["vertical"]) == (
                expected.horizontal,
                expected.vertical,
            )
            assert roi["source"] == "annotation" or roi["source"].startswith("expert:")
        assert all(text.strip() for text in row["attributes"].values())
        assert all(check["ok"] for check in row["checks"])
        assert row["knowledge"]


def test_demo_overlay_records_use_the_files_own_annotation(demo_out):
    out, _ = demo_out
    rows = pq.read_table(out / "data" / "part-00000.parquet").to_pylist()
    overlay = [r for r in rows if r["origin"]["file"].endswith("examples_overlay.dcm")][0]
    assert [roi["source"] for roi in overlay["rois"]] == ["annotation"]
    assert overlay["rois"][0]["label"] == "liver lesion"
    # the marked lesion sits on the image's left (the patient's right), mid-height
    assert overlay["rois"][0]["position"] == {"horizontal": "left", "vertical": "middle"}


def test_demo_loads_with_datasets(demo_out, tmp_path):
    datasets = pytest.importorskip("datasets")
    out, _ = demo_out
    ds = datasets.load_dataset(
        "parquet", data_files=str(out / "data" / "*.parquet"), split="train", cache_dir=str(tmp_path / "hf-cache")
    )  # not the shared cache: it may hold an older build
    image = ds[0]["image"]
    assert (image.width, image.height) == (ds[0]["width"], ds[0]["height"])


def test_every_passage_id_in_the_demo_can_be_looked_up_in_the_knowledge_base(demo_out):
    from medtrinity.knowledge.hybrid import open_kb

    out, _ = demo_out
    kb = open_kb(None)  # the KB the build used (no --kb): `medtrinity kb search default --id ID`
    for row in pq.read_table(out / "data" / "part-00000.parquet", columns=["knowledge"]).to_pylist():
        for passage in row["knowledge"]:
            found = kb.get(passage["id"])
            assert found is not None and (found.title, found.text) == (passage["title"], passage["text"])
