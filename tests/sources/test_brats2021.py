"""brats2021: a miniature in the published layout (BraTS-style flipped affine), built end to end."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medtrinity.errors import UserError

from fixtures.build import box_iou as iou, build_source, read_rows as rows
from fixtures.volumes import BRATS_BLOCKS, axial_box, brats_affine, make_brats2021

NAMES = {1: "necrotic tumor core", 2: "peritumoral edema", 4: "GD-enhancing tumor"}
# per_label 5: edema 3..10 -> 3 (largest, first of ties) + 4, 6, 8, 10; core 5..7 all; enhancing 6..12 ->
# 6 + 7, 9, 10, 12; label-free 0, 1, 2, 13, 14, 15 -> interior normals 2 and 14.
EXPECTED_SLICES = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14]


def build(source: str, out: Path) -> dict:
    return build_source(source, out)[0]


def test_brats_build_writes_the_chosen_slices_with_exact_label_regions(tmp_path):
    root = make_brats2021(tmp_path / "BraTS2021_Training_Data", n_cases=2)
    manifest = build(f"brats2021:{root}", tmp_path / "out")
    assert manifest["sources"]["brats2021"] == {"seen": 22, "written": 22, "quarantined": 0}
    out = rows(tmp_path / "out")
    for case in ("BraTS2021_00000", "BraTS2021_00001"):
        mine = [r for r in out if r["origin"]["file"] == f"{case}/{case}_flair.nii.gz"]
        assert [r["origin"]["slice"] for r in mine] == EXPECTED_SLICES
    for row in out:
        k = row["origin"]["slice"]
        assert (row["modality"], row["organ"], row["split"], row["reference_text"]) == ("MRI", "brain", None, None)
        assert row["origin"]["axis"] == "axial" and row["origin"]["spacing"] == [1.0, 1.0]
        assert row["origin"]["orientation"] == f"axial RAS z={k}mm"
        assert row["origin"]["intensity"] == "percentile 0.5-99.5 to 8-bit (over the volume)"
        present = [v for v, b in BRATS_BLOCKS.items() if b[4] <= k < b[5]]
        source_rois = [r for r in row["rois"] if r["source"] == "annotation"]
        assert sorted(r["label"] for r in source_rois) == sorted(NAMES[v] for v in present)
        assert row["disease"] == ("glioma" if present else None)
        # A label-free slice of a glioma case is not "normal": it carries the case's diagnosis, kind "case".
        assert row["labels"] == ([NAMES[v] for v in sorted(present)] if present else ["glioma"])
        kinds = {k["label"]: k["kind"] for k in row["label_kinds"]}
        assert {label: kinds[label] for label in row["labels"]} == (
            {NAMES[v]: "finding" for v in present} if present else {"glioma": "case"}
        )
        assert all(r["kind"] == "finding" for r in source_rois)
        if not present:  # a label-free slice: the expert outlines the head
            assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
        for roi in source_rois:
            value = next(v for v, n in NAMES.items() if n == roi["label"])
            assert iou(roi["bbox"], axial_box(BRATS_BLOCKS[value])) >= 0.95
            assert roi["bbox"] == axial_box(BRATS_BLOCKS[value])
            assert roi["source"] == "annotation"


def test_sequence_option_and_bad_cases_are_quarantined_with_reasons(tmp_path):
    root = make_brats2021(tmp_path / "data", n_cases=3)
    nib.save(
        nib.Nifti1Image(np.zeros((32, 32, 10), np.uint8), brats_affine()),
        str(root / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz"),
    )
    (root / "BraTS2021_00002" / "BraTS2021_00002_seg.nii.gz").unlink()
    recipe = tmp_path / "brats-t1ce.yaml"
    recipe.write_text(
        (Path(__file__).parents[2] / "src/medtrinity/sources/recipes/brats2021.yaml")
        .read_text()
        .replace("sequence: flair", "sequence: t1ce")
        .replace("normal_slices: 2", "normal_slices: 0")
    )
    manifest = build(f"{recipe}:{root}", tmp_path / "out")
    assert manifest["sources"]["brats2021"] == {"seen": 11, "written": 9, "quarantined": 2}
    assert {r["origin"]["file"] for r in rows(tmp_path / "out")} == {"BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz"}
    reasons = {r["file"]: r["reason"] for r in rows(tmp_path / "out", "quarantine")}
    assert (
        "label map BraTS2021_00001/BraTS2021_00001_seg.nii.gz has shape 32x32x10 but its image"
        in reasons["BraTS2021_00001/BraTS2021_00001_t1ce.nii.gz"]
    )
    assert (
        "label map BraTS2021_00002/BraTS2021_00002_seg.nii.gz is missing"
        in reasons["BraTS2021_00002/BraTS2021_00002_t1ce.nii.gz"]
    )


def test_cases_one_folder_down_are_found_and_a_wrong_folder_is_one_user_error(tmp_path):
    make_brats2021(tmp_path / "top" / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021", n_cases=1)
    assert build(f"brats2021:{tmp_path / 'top'}", tmp_path / "out")["sources"]["brats2021"]["written"] == 11
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        UserError, match=r"brats2021 expects case folders BraTS2021_<id>/ .* no BraTS2021_\* folder is there"
    ) as err:
        build(f"brats2021:{tmp_path / 'empty'}", tmp_path / "out2")
    assert "\n" not in str(err.value)
