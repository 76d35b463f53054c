"""A small image+mask dataset in the generic layout, generated here, with known lesion geometry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

RECIPE = """\
name: toy-ultrasound
layout: image-mask
modality: Ultrasound
organ: breast
disease: breast mass
label: mass
options:
  images: "images/*.png"
  masks: "masks/{stem}.png"
"""


def lesion_box(i: int, size: int = 96) -> tuple[int, int, int, int]:
    """A known box per image index, spread over the image: x0, y0, x1, y1 (exclusive)."""
    x0 = 8 + (i * 13) % (size - 40)
    y0 = 6 + (i * 7) % (size - 40)
    return x0, y0, x0 + 20 + i % 5, y0 + 16 + i % 3


def make_image_mask_dataset(root: Path, n: int, size: int = 96) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image = rng.normal(150, 12, (size, size)).clip(0, 255)
        mask = np.zeros((size, size), np.uint8)
        x0, y0, x1, y1 = lesion_box(i, size)
        image[y0:y1, x0:x1] = rng.normal(60, 5, (y1 - y0, x1 - x0))  # hypoechoic lesion
        mask[y0:y1, x0:x1] = 255
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"case{i:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"case{i:03d}.png")
    recipe = root.parent / f"{root.name}-recipe.yaml"
    recipe.write_text(RECIPE)
    return recipe


@pytest.fixture
def toy_dataset(tmp_path) -> tuple[Path, Path]:
    """(recipe file, dataset folder) with 12 images."""
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, 12)
    return recipe, root
