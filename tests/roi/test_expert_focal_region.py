"""focal-region on synthetic ultrasound speckle with a dark oval lesion, and an endoscopy-like frame."""

import numpy as np
from scipy import ndimage

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def synthetic_ultrasound(seed=0):
    """A fan-shaped field on black, Rayleigh speckle, and a hypoechoic oval lesion below the centre."""
    rng = np.random.default_rng(seed)
    shape = (256, 320)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    depth, angle = np.hypot(rows + 20, cols - 160), np.degrees(np.arctan2(cols - 160, rows + 20))
    field = (depth > 40) & (depth < 270) & (np.abs(angle) < 40)
    lesion = (cols - 165) ** 2 / 38**2 + (rows - 140) ** 2 / 26**2 <= 1
    echo = np.where(lesion, 0.12, 0.45)
    speckle = rng.rayleigh(1.0, shape) / 1.25
    image = ndimage.gaussian_filter(echo * speckle, 0.8) * field
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), lesion


def test_synthetic_hypoechoic_lesion_matches_the_known_mask():
    image, lesion = synthetic_ultrasound()
    (region,) = get_expert("focal-region").locate(image, "Ultrasound", "breast", ["benign"])
    assert region.label == "hypoechoic focal region"
    assert dice(region.mask, lesion) >= 0.8
    assert region.score > 0.5
    assert region.source == "expert:focal-region@1.0"


def test_plain_speckle_gives_nothing():
    rng = np.random.default_rng(2)
    image = np.clip(ndimage.gaussian_filter(0.45 * rng.rayleigh(1.0, (200, 200)) / 1.25, 0.8), 0, 1) * 255
    assert get_expert("focal-region").locate(image.astype(np.uint8), "Ultrasound", None, []) == []


def test_endoscopy_bright_polyp_in_a_round_scope_field():
    rng = np.random.default_rng(4)
    shape = (240, 240)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    field = np.hypot(rows - 120, cols - 120) <= 112
    polyp = np.hypot(rows - 110, cols - 135) <= 28
    image = np.zeros(shape + (3,))
    image[field] = (170, 90, 80)
    image[polyp] = (235, 160, 140)
    image += ndimage.gaussian_filter(rng.normal(0, 8, shape), 1.5)[..., None] * field[..., None]
    image = np.clip(image, 0, 255).astype(np.uint8)
    (region,) = get_expert("focal-region").locate(image, "Endoscopy", "colon", ["polyp"])
    assert region.label == "bright focal region"
    assert dice(region.mask, polyp) >= 0.8
