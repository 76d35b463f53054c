"""The generic layouts list exactly the items a publisher's folder holds, in a stable order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtrinity.errors import UserError
from medtrinity.sources.annotations import MaskFile
from medtrinity.sources.base import Recipe, load_recipe, named_recipes, open_source


def _png(path: Path, value: int = 0, size=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)


def test_image_mask_with_several_masks_per_image_and_images_beside_masks(tmp_path):
    # BUSI-like: masks live beside the images, some images have two masks, normal ones have an empty mask.
    for name in ("benign (1)", "benign (2)", "normal (1)"):
        _png(tmp_path / "benign" / f"{name}.png")
        _png(tmp_path / "benign" / f"{name}_mask.png", 255 if "benign" in name else 0)
    _png(tmp_path / "benign" / "benign (2)_mask_1.png", 255)
    recipe = Recipe(
        name="busi-like",
        layout="image-mask",
        modality="Ultrasound",
        organ="breast",
        label="lesion",
        options={"images": "*/*.png", "masks": "{parent}/{stem}_mask*.png", "exclude": ["*_mask*"]},
    )
    items = list(open_source(recipe, tmp_path).items())
    assert [i.file for i in items] == ["benign/benign (1).png", "benign/benign (2).png", "benign/normal (1).png"]
    assert [a.path for a in items[1].annotations] == ["benign/benign (2)_mask.png", "benign/benign (2)_mask_1.png"]
    assert items[0].annotations == [MaskFile("benign/benign (1)_mask.png", "lesion")]
    # an empty mask resolves to no region: a normal image is not an error
    assert items[2].annotations[0].resolve(tmp_path, items[2], (8, 8)) == []
    assert len(items[1].annotations[1].resolve(tmp_path, items[1], (8, 8))) == 1


def test_image_mask_missing_mask_policy(tmp_path):
    _png(tmp_path / "images" / "a.png")
    opts = {"images": "images/*.png", "masks": "masks/{stem}.png"}
    strict = Recipe(name="s", layout="image-mask", options=opts)
    assert [a.path for a in next(open_source(strict, tmp_path).items()).annotations] == ["masks/a.png"]
    lenient = Recipe(name="l", layout="image-mask", disease="x", options={**opts, "missing_mask": "normal"})
    item = next(open_source(lenient, tmp_path).items())
    assert item.annotations == [] and item.labels == ["normal"] and item.disease is None
    assert item.label_kinds == {"normal": "normal"}  # the recipe says a maskless image is normal


def test_class_folder_maps_classes(tmp_path):
    for cls in ("TUM", "NORM"):
        for i in range(2):
            _png(tmp_path / cls / f"{cls}-{i}.tif")
    (tmp_path / "README.txt").write_text("not an image")
    recipe = Recipe(
        name="crc",
        layout="class-folder",
        modality="Histopathology",
        organ="colon",
        options={"classes": {"TUM": {"label": "tumor epithelium", "disease": "adenocarcinoma"}}, "normal": ["NORM"]},
    )
    items = list(open_source(recipe, tmp_path).items())
    assert [i.file for i in items] == ["NORM/NORM-0.tif", "NORM/NORM-1.tif", "TUM/TUM-0.tif", "TUM/TUM-1.tif"]
    assert items[0].labels == ["NORM", "normal"] and items[0].disease is None
    assert items[0].label_kinds == {"normal": "normal"} and items[2].label_kinds == {}  # as options.normal says
    assert items[2].labels == ["tumor epithelium"] and items[2].disease == "adenocarcinoma"
    assert all(i.expert == "auto" for i in items)


def test_wrong_folder_and_bad_recipes(tmp_path):
    recipe = Recipe(name="x", layout="image-mask", options={"images": "images/*.png", "masks": "m/{stem}.png"})
    with pytest.raises(UserError, match="no file matching 'images/\\*.png'"):
        open_source(recipe, tmp_path)
    with pytest.raises(UserError, match="options.masks is required"):
        open_source(Recipe(name="y", layout="image-mask", options={"images": "*"}), tmp_path)
    with pytest.raises(UserError, match="unknown layout 'nope'"):
        open_source(Recipe(name="z", layout="nope"), tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nlayout: image-mask\nmodalty: CT\n")
    with pytest.raises(UserError, match="modalty"):
        load_recipe(str(bad))


def test_named_recipes_load():
    assert "demo" in named_recipes()
    for name in named_recipes():
        assert load_recipe(name).name == name
