"""kvasir-seg over a miniature in the published layout: JPEG masks give one ROI per polyp, the
published boxes stand in where a mask is missing, bad records are quarantined by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtrinity.errors import UserError

from fixtures.kvasir_seg import HEIGHT, NO_MASK_BOX, NO_MASK_ID, POLYPS, WIDTH, make_kvasir_seg
from fixtures.build import build_source, box_iou as iou


def build(root: Path, out: Path) -> tuple[dict, list[dict], dict]:
    return build_source(f"kvasir-seg:{root}", out)


def test_jpeg_masks_give_one_roi_per_polyp_and_boxes_fill_in_for_a_missing_mask(tmp_path):
    root = make_kvasir_seg(tmp_path / "Kvasir-SEG")
    # the masks really carry JPEG noise: grey values beside 0 and 255
    stored = np.asarray(Image.open(root / "masks" / "cju0qkwl35piu0993l0dewei2.jpg"))
    assert len(np.unique(stored)) > 10

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["kvasir-seg"] == {"seen": 5, "written": 5, "quarantined": 0}
    assert bad == {}
    by_id = {Path(r["origin"]["file"]).stem: r for r in rows}
    assert sorted(by_id) == sorted([*POLYPS, NO_MASK_ID])
    for image_id, row in by_id.items():
        assert (row["modality"], row["organ"], row["disease"]) == ("Endoscopy", "colon", "polyp")
        assert row["split"] is None and row["reference_text"] is None
        assert (row["width"], row["height"]) == (WIDTH, HEIGHT)
        assert row["origin"]["file"] == f"images/{image_id}.jpg"
        assert all(roi["label"] == "polyp" and roi["source"] == "annotation" for roi in row["rois"])
    for image_id, boxes in POLYPS.items():
        rois = by_id[image_id]["rois"]
        assert len(rois) == len(boxes), image_id  # JPEG speckles made no extra ROI
        for box in boxes:
            assert max(iou(roi["bbox"], box) for roi in rois) >= 0.95
        assert all(roi["mask"] is not None for roi in rois)
    [box_roi] = by_id[NO_MASK_ID]["rois"]
    assert box_roi["bbox"] == list(NO_MASK_BOX) and box_roi["mask"] is None


def test_bad_records_are_quarantined_by_name_and_counts_reconcile(tmp_path):
    root = make_kvasir_seg(tmp_path / "Kvasir-SEG")
    good = (root / "images" / "cju0qkwl35piu0993l0dewei2.jpg").read_bytes()
    # a mask whose size differs from its image
    (root / "images" / "zz_wrongsize.jpg").write_bytes(good)
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(root / "masks" / "zz_wrongsize.jpg")
    # no mask, and a published box that leaves the image
    (root / "images" / "zz_outside.jpg").write_bytes(good)
    boxes = json.loads((root / "kavsir_bboxes.json").read_text())
    boxes["zz_outside"] = {
        "height": HEIGHT,
        "width": WIDTH,
        "bbox": [{"label": "polyp", "xmin": 50, "ymin": 10, "xmax": 140, "ymax": 40}],
    }
    (root / "kavsir_bboxes.json").write_text(json.dumps(boxes))
    # neither mask nor box
    (root / "images" / "zz_nothing.jpg").write_bytes(good)

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["kvasir-seg"] == {"seen": 8, "written": 5, "quarantined": 3}
    assert set(bad) == {"images/zz_wrongsize.jpg", "images/zz_outside.jpg", "images/zz_nothing.jpg"}
    assert bad["images/zz_wrongsize.jpg"]["reason"] == "mask masks/zz_wrongsize.jpg is 40x30 but its image is 96x72"
    assert bad["images/zz_outside.jpg"]["reason"] == (
        "kavsir_bboxes.json: entry zz_outside: box [50, 10, 140, 40] lies outside the 96x72 image"
    )
    assert bad["images/zz_nothing.jpg"]["reason"] == "mask file masks/zz_nothing.jpg is missing"
    assert all(r["stage"] == "locate" for r in bad.values())


def test_wrong_folder_names_the_missing_folder(tmp_path):
    (tmp_path / "Kvasir-SEG" / "images").mkdir(parents=True)
    with pytest.raises(
        UserError, match=r"^kvasir-seg expects images/ and masks/ under .*Kvasir-SEG: masks/ is missing$"
    ):
        build(tmp_path / "Kvasir-SEG", tmp_path / "out")
