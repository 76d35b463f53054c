"""kits23: a miniature in the published layout (slices-first, flipped affine, HU), built end to end."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medtrinity.errors import UserError

from fixtures.build import box_iou as iou, build_source, read_rows as rows
from fixtures.volumes import KITS_BLOCKS, SHAPE, axial_box, kits_affine, make_kits23

NAMES = {1: "kidney", 2: "tumor", 3: "cyst"}
# kidney 4..11 -> 4 (largest, first of ties) + 5, 7, 9, 11; tumor 6..8; cyst 10..11;
# label-free 0..3, 12..15 -> interior label-free slices 2 and 13.
EXPECTED_SLICES = [2, 4, 5, 6, 7, 8, 9, 10, 11, 13]


def build(source: str, out: Path) -> dict:
    return build_source(source, out)[0]


@pytest.mark.parametrize("under_dataset", [True, False])
def test_kits_build_reorients_windows_hu_and_finds_each_label(tmp_path, under_dataset):
    root = make_kits23(tmp_path / "kits23", n_cases=2, under_dataset=under_dataset)
    manifest = build(f"kits23:{root}", tmp_path / "out")
    assert manifest["sources"]["kits23"] == {"seen": 20, "written": 20, "quarantined": 0}
    out = rows(tmp_path / "out")
    prefix = "dataset/" if under_dataset else ""
    for case in ("case_00000", "case_00001"):
        mine = [r for r in out if r["origin"]["file"] == f"{prefix}{case}/imaging.nii.gz"]
        assert [r["origin"]["slice"] for r in mine] == EXPECTED_SLICES
    for row in out:
        k = row["origin"]["slice"]
        assert (row["modality"], row["organ"]) == ("CT", "kidney")
        assert row["origin"]["intensity"] == "CT window soft tissue (L40 W400) HU"
        assert row["origin"]["spacing"] == [0.8, 0.8]
        # stored slice-first with z = -3 * slice: canonical k sits at z = -3 * (15 - k)
        assert row["origin"]["orientation"] == f"axial RAS z={-3 * (SHAPE[2] - 1 - k)}mm"
        present = sorted({v for v, b in KITS_BLOCKS if b[4] <= k < b[5]})
        assert row["disease"] == ("renal tumor" if 2 in present else None)
        # Every case has a tumour: a slice without it carries the case's diagnosis as kind "case", never "normal".
        names = [NAMES[v] for v in present]
        assert row["labels"] == (names if 2 in present else names + ["renal tumor"])
        kinds = {k["label"]: k["kind"] for k in row["label_kinds"]}
        expected_kinds = {"kidney": "anatomy", "tumor": "finding", "cyst": "finding", "renal tumor": "case"}
        assert {label: kinds[label] for label in row["labels"]} == {
            label: expected_kinds[label] for label in row["labels"]
        }
        expected = sorted((NAMES[v], axial_box(b)) for v, b in KITS_BLOCKS if b[4] <= k < b[5])
        got = sorted((r["label"], r["bbox"]) for r in row["rois"] if r["source"] == "annotation")
        if not present:  # a label-free slice: only experts outline anything (on the miniature's noise, maybe nothing)
            assert all(r["source"].startswith("expert:") for r in row["rois"])
        assert [g[0] for g in got] == [e[0] for e in expected]
        assert all(iou(g[1], e[1]) >= 0.95 for g, e in zip(got, expected))
        for roi in row["rois"]:
            assert roi["kind"] == (expected_kinds[roi["label"]] if roi["source"] == "annotation" else "anatomy")
            if roi["label"] == "tumor":  # on the patient's LEFT kidney: the image's right half
                assert roi["bbox"][0] >= SHAPE[0] // 2 and roi["position"]["horizontal"] in ("right-center", "right")


def test_a_label_map_of_another_shape_is_quarantined_and_the_rest_goes_on(tmp_path):
    root = make_kits23(tmp_path / "kits23", n_cases=2)
    nib.save(
        nib.Nifti1Image(np.zeros((16, 30, 32), np.uint8), kits_affine()),
        str(root / "dataset" / "case_00001" / "segmentation.nii.gz"),
    )
    manifest = build(f"kits23:{root}", tmp_path / "out")
    assert manifest["sources"]["kits23"] == {"seen": 11, "written": 10, "quarantined": 1}
    (bad,) = rows(tmp_path / "out", "quarantine")
    assert bad["file"] == "dataset/case_00001/imaging.nii.gz"
    assert "label map dataset/case_00001/segmentation.nii.gz has shape 32x30x16 but its image" in bad["reason"]


def test_wrong_folder_and_bad_window_are_one_line_user_errors(tmp_path):
    (tmp_path / "case_00000").mkdir()
    with pytest.raises(
        UserError, match=r"kits23 expects case_<nnnnn>/imaging.nii.gz under .*: no case_\*/imaging.nii.gz is there"
    ):
        build(f"kits23:{tmp_path}", tmp_path / "out")
    recipe = tmp_path / "k.yaml"
    recipe.write_text("name: k\nlayout: kits23\nmodality: CT\noptions:\n  window: sunset\n")
    make_kits23(tmp_path / "ok", n_cases=1)
    with pytest.raises(UserError, match="unknown window 'sunset'"):
        build(f"{recipe}:{tmp_path / 'ok'}", tmp_path / "out2")
