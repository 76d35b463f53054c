"""rsna-pneumonia: a build over a miniature in the published layout gives the known boxes and metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source

from fixtures.rsna_pneumonia import BOXES, make_rsna_pneumonia
from fixtures.build import build_source, box_iou as iou


def build(root: Path, out: Path) -> tuple[dict, list[dict], dict[str, dict]]:
    return build_source(f"rsna-pneumonia:{root}", out)


def kind_in(row: dict, label: str) -> str:
    return {k["label"]: k["kind"] for k in row["label_kinds"]}[label]


def test_build_gives_one_record_per_patient_with_the_known_boxes(tmp_path):
    root = make_rsna_pneumonia(tmp_path / "rsna")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["rsna-pneumonia"] == {"seen": 4, "written": 4, "quarantined": 0}
    by_file = {r["origin"]["file"]: r for r in rows}
    assert sorted(by_file) == [f"stage_2_train_images/{p}.dcm" for p in sorted(BOXES)]
    for patient, boxes in BOXES.items():
        row = by_file[f"stage_2_train_images/{patient}.dcm"]
        assert (row["modality"], row["organ"], row["split"]) == ("X-Ray", "lung", "train")
        assert (row["width"], row["height"]) == (64, 64)
        if boxes:
            assert row["disease"] == "pneumonia" and row["labels"] == ["lung opacity"]
            rois = [r for r in row["rois"] if r["source"] == "annotation"]
            assert len(rois) == len(boxes) == len(row["rois"])
            want = sorted([x, y, x + w, y + h] for x, y, w, h in boxes)
            for got, expected in zip(sorted(r["bbox"] for r in rois), want):
                assert iou(got, expected) >= 0.95
            assert all(r["label"] == "lung opacity" for r in rois)
            assert row["reference_text"] == "RSNA class: Lung Opacity."
        else:
            assert row["disease"] is None
            assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
    normal = by_file[f"stage_2_train_images/{sorted(BOXES)[2]}.dcm"]
    assert normal["labels"] == ["normal"] and normal["reference_text"] == "RSNA class: Normal."
    assert {k["label"]: k["kind"] for k in normal["label_kinds"]} == {"normal": "normal"} | {
        r["label"]: "anatomy" for r in normal["rois"]
    }
    # "No Lung Opacity / Not Normal": no lung opacity (a negative), and abnormal without saying how
    other = by_file[f"stage_2_train_images/{sorted(BOXES)[3]}.dcm"]
    assert other["labels"] == ["no lung opacity", "abnormality other than lung opacity"]
    assert [kind_in(other, label) for label in other["labels"]] == ["negative", "finding"]
    assert other["reference_text"] == "RSNA class: No Lung Opacity / Not Normal."
    opacity = by_file[f"stage_2_train_images/{sorted(BOXES)[0]}.dcm"]
    assert kind_in(opacity, "lung opacity") == "finding" and opacity["rois"][0]["kind"] == "finding"
    # the patientId is the publisher's file name: it may name the file, never appear in text
    for row in rows:
        patient = Path(row["origin"]["file"]).stem
        text = " ".join(str(row[k]) for k in ("description", "coarse_caption", "reference_text", "labels", "id"))
        assert patient not in text


def test_malformed_row_missing_dicom_and_box_outside_are_quarantined(tmp_path):
    root = make_rsna_pneumonia(tmp_path / "rsna")
    labels = root / "stage_2_train_labels.csv"
    labels.write_text(
        labels.read_text()
        + "ffff0000-0000-4000-8000-00000000000a,abc,10,10,10,1\n"  # malformed (line 7)
        + "ffff0000-0000-4000-8000-00000000000b,10,10,10,10,1\n"  # no DICOM
        + "0a1b2c3d-0000-4000-8000-000000000003,50,50,40,40,1\n"  # box beyond the 64x64 image (line 9)
    )
    from fixtures.rsna_pneumonia import chest_pixels, write_xray_dicom

    write_xray_dicom(root / "stage_2_train_images" / "ffff0000-0000-4000-8000-00000000000a.dcm", chest_pixels(9))

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["rsna-pneumonia"] == {"seen": 6, "written": 3, "quarantined": 3}
    malformed = bad["stage_2_train_images/ffff0000-0000-4000-8000-00000000000a.dcm"]
    assert malformed["stage"] == "read"  # the source's own row is broken: found before any file is read
    assert malformed["reason"] == "stage_2_train_labels.csv line 7: x is not a number"
    missing = bad["stage_2_train_images/ffff0000-0000-4000-8000-00000000000b.dcm"]
    assert missing["stage"] == "read" and "is missing" in missing["reason"]
    outside = bad["stage_2_train_images/0a1b2c3d-0000-4000-8000-000000000003.dcm"]
    assert "stage_2_train_labels.csv line 9" in outside["reason"] and "outside the 64x64 image" in outside["reason"]


def test_reasons_name_line_and_column_never_the_cell(tmp_path):
    root = make_rsna_pneumonia(tmp_path / "rsna")
    labels = root / "stage_2_train_labels.csv"
    labels.write_text(
        labels.read_text()
        + "ffff0000-0000-4000-8000-00000000000a,10,10,Melchiorra,10,1\n"  # line 7: identifier in width
        + "ffff0000-0000-4000-8000-00000000000b,10,10,10,10,PIDX7781\n"  # line 8: identifier in Target
        + "ffff0000-0000-4000-8000-00000000000c,10,10,10,10,\n"  # line 9: Target empty
        + "ffff0000-0000-4000-8000-00000000000d,10,nan,10,10,1\n"  # line 10: not finite
    )

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["rsna-pneumonia"] == {"seen": 8, "written": 4, "quarantined": 4}
    assert {Path(f).stem[-1]: r["reason"] for f, r in bad.items()} == {
        "a": "stage_2_train_labels.csv line 7: width is not a number",
        "b": "stage_2_train_labels.csv line 8: Target is not 0 or 1",
        "c": "stage_2_train_labels.csv line 9: Target is empty",
        "d": "stage_2_train_labels.csv line 10: y is not a finite number",
    }


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "stage_2_train_images").mkdir()
    with pytest.raises(UserError, match="stage_2_train_labels.csv is missing"):
        open_source(load_recipe("rsna-pneumonia"), tmp_path)
