"""`export coco`: pycocotools loads it, annToMask gives back each ROI's mask, COCOeval of it against itself
gives AP 1.0."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
from fixtures.exporting import export
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from medtrinity.export.selection import split_of


def _record_mask(roi: dict, height: int, width: int) -> np.ndarray:
    if roi["mask"] is None:  # a box annotation: its box is its mask
        mask = np.zeros((height, width), np.uint8)
        x0, y0, x1, y1 = roi["bbox"]
        mask[y0:y1, x0:x1] = 1
        return mask
    return mask_utils.decode({"size": roi["mask"]["size"], "counts": roi["mask"]["counts"].encode()})


def _load(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(str(path))


def test_coco_loads_and_every_mask_comes_back_exactly(mini_build, mini_rows, tmp_path):
    summary = export("coco", mini_build, tmp_path / "coco", include_test=True)
    by_id = {row["id"]: row for row in mini_rows}
    categories = None
    annotated = 0
    for split in ("train", "val", "test"):
        coco = _load(tmp_path / "coco" / f"{split}.json")
        if categories is None:
            categories = coco.dataset["categories"]
        assert coco.dataset["categories"] == categories  # one id per label in every split
        assert len(coco.imgs) == summary.written[split]
        for image in coco.imgs.values():
            row = by_id[image["record_id"]]
            assert split_of(row["split"]) == split
            assert (tmp_path / "coco" / "images" / image["file_name"]).read_bytes() == row["image"]["bytes"]
            rois = [roi for roi in row["rois"] if roi["source"] == "annotation"]
            annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            assert len(annotations) == len(rois)
            for roi, annotation in zip(rois, annotations, strict=True):
                expected = _record_mask(roi, row["height"], row["width"])
                np.testing.assert_array_equal(coco.annToMask(annotation), expected)
                x0, y0, x1, y1 = roi["bbox"]
                assert annotation["bbox"] == [x0, y0, x1 - x0, y1 - y0] and annotation["iscrowd"] == 0
                assert annotation["area"] == int(expected.sum())
                category = coco.cats[annotation["category_id"]]
                assert (category["name"], category["supercategory"]) == (roi["label"], row["modality"])
                assert "score" not in annotation
                annotated += 1
    assert annotated > 50


def test_cocoeval_of_the_ground_truth_against_itself_is_ap_one(mini_build, tmp_path):
    export("coco", mini_build, tmp_path / "coco")
    coco = _load(tmp_path / "coco" / "train.json")
    results = [{**a, "score": 1.0} for a in coco.dataset["annotations"]]
    for iou_type in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), iou_type)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        assert evaluation.stats[0] == 1.0, iou_type  # AP @ IoU .50:.95


def test_expert_rois_only_with_include_expert_and_with_their_score(mini_build, mini_rows, tmp_path):
    export("coco", mini_build, tmp_path / "coco", include_expert=True)
    coco = _load(tmp_path / "coco" / "train.json")
    experts = [a for a in coco.dataset["annotations"] if a["roi_source"] != "annotation"]
    expected = sum(
        1
        for row in mini_rows
        if split_of(row["split"]) == "train"
        for roi in row["rois"]
        if roi["source"] != "annotation"
    )
    assert len(experts) == expected > 0 and all("score" in a for a in experts)
