"""isic2018 over a miniature in the published layout: splits from the folder names, the Task 1 mask
as the ROI, the Task 3 diagnosis where ids match, the expert where a split has no masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtrinity.errors import UserError

from fixtures.isic2018 import HEIGHT, LESIONS, TASK3_ROWS, WIDTH, lesion_image, make_isic2018, write_task3
from fixtures.build import build_source, box_iou as iou

SPLIT = {"Training": "train", "Validation": "validation", "Test": "test"}
TASK3 = "ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv"


def build(root: Path, out: Path) -> tuple[dict, list[dict], dict]:
    return build_source(f"isic2018:{root}", out)


def test_splits_masks_and_diagnosis_where_ids_match(tmp_path):
    root = make_isic2018(tmp_path / "isic")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["isic2018"] == {"seen": 5, "written": 5, "quarantined": 0} and bad == {}
    by_key = {(r["origin"]["file"].split("_")[2], Path(r["origin"]["file"]).stem): r for r in rows}
    assert set(by_key) == set(LESIONS)
    for (split, image_id), row in by_key.items():
        assert row["origin"]["file"] == f"ISIC2018_Task1-2_{split}_Input/{image_id}.jpg"
        assert (row["modality"], row["organ"], row["split"]) == ("Dermoscopy", "skin", SPLIT[split])
        assert row["reference_text"] is None and (row["width"], row["height"]) == (WIDTH, HEIGHT)
        if split == "Test":  # no GroundTruth folder for this split: the expert outlines the lesion
            assert row["rois"] and all(roi["source"].startswith("expert:") for roi in row["rois"])
            continue
        [roi] = row["rois"]
        assert roi["source"] == "annotation" and roi["label"] == "skin lesion"
        assert roi["bbox"] == list(LESIONS[(split, image_id)])
        assert iou(roi["bbox"], LESIONS[(split, image_id)]) >= 0.95
    bcc = by_key[("Training", "ISIC_0000001")]
    assert bcc["disease"] == "basal cell carcinoma" and bcc["labels"] == ["skin lesion", "BCC"]
    assert bcc["coarse_caption"] == "Dermoscopy image of the skin showing a basal cell carcinoma."
    other = by_key[("Training", "ISIC_0000000")]  # no Task 3 row: the recipe's disease
    assert other["disease"] == "skin lesion" and other["labels"] == ["skin lesion"]


def test_task3_csv_at_the_root_is_read_too(tmp_path):
    root = make_isic2018(tmp_path / "isic")
    (root / TASK3).unlink()
    (root / TASK3).parent.rmdir()
    write_task3(root / "ISIC2018_Task3_Training_GroundTruth.csv", ["ISIC_0000003,1.0,0.0,0.0,0.0,0.0,0.0,0.0"])
    _, rows, _ = build(root, tmp_path / "out")
    diseases = {Path(r["origin"]["file"]).stem: r["disease"] for r in rows}
    assert diseases["ISIC_0000003"] == "melanoma" and diseases["ISIC_0000001"] == "skin lesion"


def test_bad_records_are_quarantined_by_name_and_counts_reconcile(tmp_path):
    root = make_isic2018(tmp_path / "isic")
    train_in, train_gt = root / "ISIC2018_Task1-2_Training_Input", root / "ISIC2018_Task1_Training_GroundTruth"
    rng = np.random.default_rng(9)
    for image_id in ("ISIC_0000004", "ISIC_0000005", "ISIC_0000006"):
        Image.fromarray(lesion_image(rng, (10, 10, 30, 30))).save(train_in / f"{image_id}.jpg")
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(train_gt / "ISIC_0000005_segmentation.png")  # wrong size
    Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)).save(train_gt / "ISIC_0000006_segmentation.png")
    # ISIC_0000004 has no mask although the split has its GroundTruth folder; ISIC_0000006's Task 3 row is not one-hot
    write_task3(root / TASK3, [*TASK3_ROWS, "ISIC_0000006,1.0,1.0,0.0,0.0,0.0,0.0,0.0"])

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["isic2018"] == {"seen": 8, "written": 5, "quarantined": 3}
    prefix = "ISIC2018_Task1-2_Training_Input/"
    assert set(bad) == {f"{prefix}ISIC_000000{n}.jpg" for n in (4, 5, 6)}
    assert bad[f"{prefix}ISIC_0000004.jpg"]["reason"] == (
        "mask file ISIC2018_Task1_Training_GroundTruth/ISIC_0000004_segmentation.png is missing"
    )
    assert (
        bad[f"{prefix}ISIC_0000005.jpg"]["reason"]
        == "mask ISIC2018_Task1_Training_GroundTruth/ISIC_0000005_segmentation.png is 40x30 but its image is 80x60"
    )
    assert bad[f"{prefix}ISIC_0000006.jpg"]["reason"] == (
        f"{TASK3}: row 5: expected exactly one of MEL, NV, BCC, AKIEC, BKL, DF, VASC to be 1.0"
    )


def test_wrong_folder_names_the_expected_input_folder(tmp_path):
    (tmp_path / "ISIC2018_Task1_Training_GroundTruth").mkdir()
    with pytest.raises(
        UserError,
        match=r"^isic2018 expects ISIC2018_Task1-2_Training_Input/ \(or the _Validation_/_Test_ one\) under .*: none is there$",
    ):
        build(tmp_path, tmp_path / "out")
