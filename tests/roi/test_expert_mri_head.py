"""mri-head on a synthetic axial head MRI with one bright focal spot."""

import numpy as np

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def ellipse(shape, centre_xy, radii_xy) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (cols - centre_xy[0]) ** 2 / radii_xy[0] ** 2 + (rows - centre_xy[1]) ** 2 / radii_xy[1] ** 2 <= 1


def synthetic_head_mri(with_spot=True, seed=0):
    """Noise background, bright scalp rim, dark skull, textured brain and (optionally) a bright spot."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    head = ellipse(shape, (128, 128), (92, 112))
    image = np.full(shape, 0.04)
    image[head] = 0.7  # scalp fat
    image[ellipse(shape, (128, 128), (86, 106))] = 0.15  # skull
    brain = ellipse(shape, (128, 128), (80, 100))
    image[brain] = 0.45
    image[ellipse(shape, (128, 128), (60, 80)) & ~ellipse(shape, (128, 128), (40, 60))] = 0.38  # grey/white
    spot = ellipse(shape, (150, 100), (9, 8))
    if with_spot:
        image[spot] = 0.85
    image += rng.normal(0, 0.025, shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), head, spot


def test_synthetic_head_and_focal_hyperintensity_match_the_known_masks():
    image, head, spot = synthetic_head_mri()
    regions = get_expert("mri-head").locate(image, "MRI", "brain", [])
    assert [r.label for r in regions] == ["head", "focal hyperintensity"]
    assert dice(regions[0].mask, head) >= 0.95
    assert dice(regions[1].mask, spot) >= 0.8
    assert regions[1].score > 0.6
    assert regions[1].source == "expert:mri-head@1.0"


def test_without_a_spot_only_the_head_is_found():
    image, head, _ = synthetic_head_mri(with_spot=False)
    regions = get_expert("mri-head").locate(image, "MRI", "brain", [])
    assert [r.label for r in regions] == ["head"]  # the bright scalp rim is not a focal hyperintensity
