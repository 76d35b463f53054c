"""busi over a miniature in the published layout: one ROI per mask file, class -> disease, normal
images get the expert's region, bad records are quarantined by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtrinity.errors import UserError

from fixtures.busi import HEIGHT, LESIONS, WIDTH, make_busi
from fixtures.build import build_source, box_iou as iou

DISEASE = {"benign": "benign breast lesion", "malignant": "malignant breast lesion (carcinoma)", "normal": None}
LABEL = {"benign": "benign lesion", "malignant": "malignant lesion", "normal": "normal"}


def build(root: Path, out: Path) -> tuple[dict, list[dict], dict]:
    return build_source(f"busi:{root}", out)


@pytest.mark.parametrize("inner", [False, True], ids=["outer-folder", "Dataset_BUSI_with_GT"])
def test_each_mask_file_is_a_roi_and_classes_set_the_disease(tmp_path, inner):
    parent = make_busi(tmp_path / "busi")
    root = parent / "Dataset_BUSI_with_GT" if inner else parent
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["busi"] == {"seen": 4, "written": 4, "quarantined": 0} and bad == {}
    prefix = "" if inner else "Dataset_BUSI_with_GT/"
    assert sorted(r["origin"]["file"] for r in rows) == sorted(prefix + f for f in LESIONS)
    for row in rows:
        image = row["origin"]["file"].removeprefix(prefix)
        cls = image.split("/")[0]
        assert (row["modality"], row["organ"], row["disease"]) == ("Ultrasound", "breast", DISEASE[cls])
        assert row["labels"] == [LABEL[cls]]
        assert row["split"] is None and row["reference_text"] is None
        assert (row["width"], row["height"]) == (WIDTH, HEIGHT)
        boxes = LESIONS[image]
        if cls == "normal":  # empty mask: no source ROI; the tissue fills the frame, so no expert region stands out
            assert row["rois"] == []
            continue
        assert [roi["source"] for roi in row["rois"]] == ["annotation"] * len(boxes)
        assert all(roi["label"] == LABEL[cls] for roi in row["rois"])
        # ROIs come in mask-file order: _mask.png, then _mask_1.png
        for roi, box in zip(row["rois"], boxes):
            assert iou(roi["bbox"], box) >= 0.95
            assert roi["bbox"] == list(box)


def test_bad_records_are_quarantined_by_name_and_counts_reconcile(tmp_path):
    parent = make_busi(tmp_path / "busi")
    base = parent / "Dataset_BUSI_with_GT"
    good = (base / "benign" / "benign (1).png").read_bytes()
    (base / "benign" / "benign (9).png").write_bytes(good)  # no mask at all
    (base / "malignant" / "malignant (9).png").write_bytes(good)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(base / "malignant" / "malignant (9)_mask.png")
    (base / "normal" / "normal (9).png").write_bytes(good[:100])  # truncated image

    manifest, rows, bad = build(parent, tmp_path / "out")

    assert manifest["sources"]["busi"] == {"seen": 7, "written": 4, "quarantined": 3}
    assert bad["Dataset_BUSI_with_GT/benign/benign (9).png"]["reason"] == (
        "mask file Dataset_BUSI_with_GT/benign/benign (9)_mask.png is missing"
    )
    assert bad["Dataset_BUSI_with_GT/malignant/malignant (9).png"]["reason"] == (
        "mask Dataset_BUSI_with_GT/malignant/malignant (9)_mask.png is 30x20 but its image is 80x64"
    )
    truncated = bad["Dataset_BUSI_with_GT/normal/normal (9).png"]
    assert truncated["stage"] == "read" and truncated["reason"]


def test_wrong_folder_names_the_missing_class_folder(tmp_path):
    (tmp_path / "x" / "benign").mkdir(parents=True)
    (tmp_path / "x" / "normal").mkdir()
    with pytest.raises(UserError, match=r"^busi expects benign/, malignant/ and normal/ .*: malignant/ is missing$"):
        build(tmp_path / "x", tmp_path / "out")
