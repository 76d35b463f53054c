"""chestx-ray14: labels for all images, boxes where BBox_List gives them, split from the list files."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source

from fixtures.chestx_ray14 import IMAGES, make_chestx_ray14
from fixtures.build import build_source, box_iou as iou


def build(root: Path, out: Path):
    return build_source(f"chestx-ray14:{root}", out)


def test_build_reads_labels_boxes_and_splits(tmp_path):
    root = make_chestx_ray14(tmp_path / "cxr14")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["chestx-ray14"] == {"seen": 4, "written": 4, "quarantined": 0}
    by_name = {Path(r["origin"]["file"]).name: r for r in rows}
    assert {n: r["origin"]["file"] for n, r in by_name.items()} == {n: f"{v[2]}/{n}" for n, v in IMAGES.items()}
    for name, (findings, view, _, split, boxes) in IMAGES.items():
        row = by_name[name]
        assert (row["modality"], row["organ"], row["split"]) == ("X-Ray", "chest", split)
        assert row["reference_text"] == f"Finding labels (mined from the report): {findings.replace('|', ', ')}. View position: {view}."
        annotated = [r for r in row["rois"] if r["source"] == "annotation"]
        assert len(annotated) == len(boxes)
        for roi, (label, x, y, w, h) in zip(annotated, boxes):
            assert roi["label"] == label.lower()
            assert iou(roi["bbox"], [x, y, x + w, y + h]) >= 0.95
        if not boxes:
            assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
    assert by_name["00000001_000.png"]["labels"] == ["cardiomegaly", "effusion"]
    assert by_name["00000001_000.png"]["disease"] == "cardiomegaly, effusion"
    assert by_name["00000001_001.png"]["labels"] == ["normal"] and by_name["00000001_001.png"]["disease"] is None
    assert by_name["00000003_000.png"]["labels"] == ["atelectasis", "pleural thickening"]


def test_malformed_rows_missing_image_and_box_outside_are_quarantined(tmp_path):
    root = make_chestx_ray14(tmp_path / "cxr14")
    entry = root / "Data_Entry_2017.csv"
    entry.write_text(entry.read_text() + "00000009_000.png,Mass,0,9,40,F,PA,64,64,0.143,0.143,\n")  # no image
    bbox = root / "BBox_List_2017.csv"
    bbox.write_text(bbox.read_text()
                    + "00000001_001.png,Mass,abc,1,2,3,,,\n"          # line 4: malformed
                    + "00000003_000.png,Atelectasis,50,50,40,40,,,\n")  # line 5: beyond 64x64

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["chestx-ray14"] == {"seen": 5, "written": 2, "quarantined": 3}
    assert bad["images/00000009_000.png"]["stage"] == "read" and "is missing" in bad["images/00000009_000.png"]["reason"]
    malformed = bad["images_001/images/00000001_001.png"]["reason"]
    assert "BBox_List_2017.csv line 4" in malformed and "malformed box" in malformed
    outside = bad["images_002/images/00000003_000.png"]["reason"]
    assert "BBox_List_2017.csv line 5" in outside and "outside the 64x64 image" in outside


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match="Data_Entry_2017.csv is missing"):
        open_source(load_recipe("chestx-ray14"), tmp_path)
    (tmp_path / "images").rmdir()
    (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n")
    with pytest.raises(UserError, match="images/ is missing"):
        open_source(load_recipe("chestx-ray14"), tmp_path)
