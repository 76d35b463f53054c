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
        assert (
            row["reference_text"]
            == f"Finding labels (mined from the report): {findings.replace('|', ', ')}. View position: {view}."
        )
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
    bbox.write_text(
        bbox.read_text()
        + "00000001_001.png,Mass,abc,1,2,3,,,\n"  # line 4: malformed
        + "00000003_000.png,Atelectasis,50,50,40,40,,,\n"
    )  # line 5: beyond 64x64

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["chestx-ray14"] == {"seen": 5, "written": 2, "quarantined": 3}
    assert (
        bad["images/00000009_000.png"]["stage"] == "read" and "is missing" in bad["images/00000009_000.png"]["reason"]
    )
    assert bad["images_001/images/00000001_001.png"]["reason"] == "BBox_List_2017.csv line 4: x is not a number"
    outside = bad["images_002/images/00000003_000.png"]["reason"]
    assert "BBox_List_2017.csv line 5" in outside and "outside the 64x64 image" in outside


def test_malformed_entry_rows_quarantine_their_image_and_the_run_goes_on(tmp_path):
    root = make_chestx_ray14(tmp_path / "cxr14")
    entry = root / "Data_Entry_2017.csv"
    entry.write_text(
        entry.read_text()
        + "00000001_001.png,No Finding\n"  # line 6: too few fields
        + "00000004_000.png,Mass,0,PIDX40411\n"  # line 7: too few, an ID in it
        + "00000009_000.png,,0,9,40,F,PA,64,64,0.143,0.143,\n"  # line 8: empty Finding Labels
        + ",Mass,0,9,40,F,PA,64,64,0.143,0.143,\n"
    )  # line 9: empty Image Index

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["chestx-ray14"] == {"seen": 7, "written": 3, "quarantined": 4}
    assert {r["origin"]["file"] for r in rows} == {f"{v[2]}/{n}" for n, v in IMAGES.items()} - {
        "images_001/images/00000001_001.png"
    }
    assert {f: (r["stage"], r["reason"]) for f, r in bad.items()} == {
        "images_001/images/00000001_001.png": (
            "read",
            "Data_Entry_2017.csv line 6: the row has 2 field(s), too few to reach View Position (field 7)",
        ),
        "images/00000004_000.png": (
            "read",
            "Data_Entry_2017.csv line 7: the row has 4 field(s), too few to reach View Position (field 7)",
        ),
        "images/00000009_000.png": ("read", "Data_Entry_2017.csv line 8: Finding Labels is empty"),
        "Data_Entry_2017.csv:line 9": ("read", "Data_Entry_2017.csv line 9: Image Index is empty"),
    }


def test_box_reasons_name_line_and_column_never_the_cell(tmp_path):
    root = make_chestx_ray14(tmp_path / "cxr14")
    bbox = root / "BBox_List_2017.csv"
    bbox.write_text(
        bbox.read_text()
        + "00000001_001.png,Mass,1,2\n"  # line 4: two numbers, row cut short
        + "00000003_000.png,Mass,1,2,5,,,,\n"  # line 5: three numbers, h empty
        + "00000001_000.png,Mass,Melchiorra,1,2,3,,,\n"  # line 6: a shifted identifier in x
        + "00000002_000.png,Mass,1,2,3,inf,,,\n"
    )  # line 7: not finite

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["chestx-ray14"] == {"seen": 4, "written": 0, "quarantined": 4}
    assert {f: r["reason"] for f, r in bad.items()} == {
        "images_001/images/00000001_001.png": "BBox_List_2017.csv line 4: the box needs 4 numbers (x, y, w, h), found 2",
        "images_002/images/00000003_000.png": "BBox_List_2017.csv line 5: the box needs 4 numbers (x, y, w, h), found 3",
        "images_001/images/00000001_000.png": "BBox_List_2017.csv line 6: x is not a number",
        "images_002/images/00000002_000.png": "BBox_List_2017.csv line 7: h is not a finite number",
    }


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match="Data_Entry_2017.csv is missing"):
        open_source(load_recipe("chestx-ray14"), tmp_path)
    (tmp_path / "images").rmdir()
    (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n")
    with pytest.raises(UserError, match="images/ is missing"):
        open_source(load_recipe("chestx-ray14"), tmp_path)


def test_view_position_gives_the_orientation_and_the_patient_side(tmp_path):
    root = make_chestx_ray14(tmp_path / "cxr14")
    _, rows, _ = build(root, tmp_path / "out")
    by_name = {Path(r["origin"]["file"]).name: r for r in rows}
    for name, (_, view, *_rest) in IMAGES.items():
        assert by_name[name]["origin"]["orientation"] == view
        # frontal views follow the radiological convention, so a lateralised ROI gets its patient side
        sided = [
            roi
            for roi in by_name[name]["rois"]
            if roi["position"]["horizontal"] in ("left", "left-center", "right", "right-center")
        ]
        if sided:
            assert "patient's" in by_name[name]["attributes"]["roi"]
