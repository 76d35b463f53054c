"""Fixtures for build tests: a generated image+mask dataset with known lesion geometry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.image_mask import make_image_mask_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def toy_dataset(tmp_path) -> tuple[Path, Path]:
    """(recipe file, dataset folder) with 12 images."""
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, 12)
    return recipe, root
