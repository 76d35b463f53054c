"""coco: boxes, polygons and both RLE forms become ROIs with the known geometry; categories become labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source

from fixtures.coco import OBJECTS, make_coco
from fixtures.build import build_source, box_iou as iou


def build(recipe: Path, root: Path, out: Path):
    return build_source(f"{recipe}:{root}", out)


def test_build_gives_the_known_rois_for_every_annotation_kind(tmp_path):
    root = tmp_path / "coco"
    recipe = make_coco(root)
    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-coco"] == {"seen": 5, "written": 5, "quarantined": 0}
    by_file = {r["origin"]["file"]: r for r in rows}
    assert sorted(by_file) == [f"images/{n}" for n in sorted(OBJECTS)]
    for name, objects in OBJECTS.items():
        row = by_file[f"images/{name}"]
        assert (row["modality"], row["organ"], row["split"]) == ("Endoscopy", "colon", "train")
        annotated = sorted((r for r in row["rois"] if r["source"] == "annotation"), key=lambda r: r["bbox"])
        expected = sorted(objects, key=lambda o: list(o[2]))
        assert len(annotated) == len(expected)
        for roi, (category, kind, box) in zip(annotated, expected):
            assert roi["label"] == {"adenoma": "polyp"}.get(category, category)
            assert iou(roi["bbox"], box) >= 0.95, (name, kind, roi["bbox"], box)
            assert (roi["mask"] is None) == (kind == "bbox")
    assert by_file["images/b.png"]["labels"] == ["polyp", "blood"] and by_file["images/b.png"]["disease"] == "polyp"
    # an image without annotations: the JSON names nothing on it, which is not "normal"
    assert by_file["images/e.png"]["labels"] == [] and by_file["images/e.png"]["disease"] is None
    assert all(r["source"].startswith("expert:") for r in by_file["images/e.png"]["rois"])


def test_bad_annotations_and_missing_image_are_quarantined(tmp_path):
    root = tmp_path / "coco"
    recipe = make_coco(root)
    path = root / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    data["images"].append({"id": 99, "file_name": "missing.png", "width": 64, "height": 64})
    data["annotations"] += [
        {"id": 900, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},  # unknown category
        {"id": 901, "image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "segmentation": []},  # outside
        {"id": 902, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": [[1, 2, 3]]},  # bad polygon
    ]
    path.write_text(json.dumps(data))

    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-coco"] == {"seen": 6, "written": 2, "quarantined": 4}
    assert "is missing" in bad["images/missing.png"]["reason"]
    assert "annotation 900: category_id 7 is not in 'categories'" in bad["images/a.png"]["reason"]
    assert (
        "annotation 901" in bad["images/b.png"]["reason"] and "outside the 64x64 image" in bad["images/b.png"]["reason"]
    )
    assert "annotation 902" in bad["images/c.png"]["reason"] and "polygon" in bad["images/c.png"]["reason"]


def test_wrong_folder_names_the_missing_json(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nlayout: coco\noptions:\n  annotations: annotations/instances_val.json\n")
    with pytest.raises(UserError, match="annotations/instances_val.json under .*: it is missing"):
        open_source(load_recipe(str(recipe)), tmp_path)
