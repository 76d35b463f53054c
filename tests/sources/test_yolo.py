"""yolo: normalised boxes become the known pixel boxes; names from data.yaml; split from the folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source
from medtrinity.sources.layouts.yolo import label_path

from fixtures.yolo import NAMES, OBJECTS, make_yolo
from fixtures.build import build_source


def build(recipe: Path, root: Path, out: Path):
    return build_source(f"{recipe}:{root}", out)


def test_label_path_replaces_the_last_images_folder():
    assert label_path("images/train/a.jpg") == "labels/train/a.txt"
    assert label_path("data/images/val/images.v2.png") == "data/labels/val/images.v2.txt"


def test_build_gives_the_known_boxes_labels_and_splits(tmp_path):
    root = tmp_path / "yolo"
    recipe = make_yolo(root)
    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-yolo"] == {"seen": 4, "written": 4, "quarantined": 0}
    by_file = {r["origin"]["file"]: r for r in rows}
    assert sorted(by_file) == sorted(OBJECTS)
    for image, boxes in OBJECTS.items():
        row = by_file[image]
        assert (row["width"], row["height"], row["modality"], row["organ"]) == (80, 64, "X-Ray", "wrist")
        assert row["split"] == image.split("/")[1]
        annotated = [r for r in row["rois"] if r["source"] == "annotation"]
        assert sorted((r["label"], r["bbox"]) for r in annotated) == sorted(
            (NAMES[c], [x0, y0, x1, y1]) for c, x0, y0, x1, y1 in boxes or []
        )
    assert by_file["images/train/p2.png"]["labels"] == ["fracture", "plate"]
    # a background image names no object: not a statement of "normal"
    assert by_file["images/train/p3.png"]["labels"] == [] and by_file["images/train/p3.png"]["disease"] is None
    assert by_file["images/val/p4.png"]["labels"] == ["plate"]


def test_malformed_line_unknown_class_and_box_outside_are_quarantined(tmp_path):
    root = tmp_path / "yolo"
    recipe = make_yolo(root)
    (root / "labels/train/p1.txt").write_text("0 0.5 0.5 0.2\n")  # 4 fields
    (root / "labels/train/p2.txt").write_text("0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1\n")
    (root / "labels/val/p4.txt").write_text("1 0.95 0.5 0.3 0.2\n")  # x1 = 1.1 * width

    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-yolo"] == {"seen": 4, "written": 1, "quarantined": 3}
    assert "labels/train/p1.txt line 1: expected 'class cx cy w h'" in bad["images/train/p1.png"]["reason"]
    assert "labels/train/p2.txt line 2: class 5 is not one of the 2 names" in bad["images/train/p2.png"]["reason"]
    outside = bad["images/val/p4.png"]["reason"]
    assert "labels/val/p4.txt line 1" in outside and "outside the 80x64 image" in outside


def test_wrong_folder_and_missing_names(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nlayout: yolo\noptions:\n  data_yaml: data.yaml\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no file matching 'images/\\*\\*/\\*'"):
        open_source(load_recipe(str(recipe)), tmp_path / "empty")
    root = tmp_path / "ds"
    make_yolo(root)
    (root / "data.yaml").unlink()
    with pytest.raises(UserError, match="expects data.yaml under .*: it is missing"):
        open_source(load_recipe(str(recipe)), root)
