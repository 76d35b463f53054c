"""skin-lesion on a synthetic dermoscopy image: a brown lesion on noisy skin-coloured texture."""

import numpy as np
from scipy import ndimage

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def synthetic_dermoscopy(seed=0, vignette=True, hairs=True):
    rng = np.random.default_rng(seed)
    shape = (240, 320)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    angle = np.arctan2(rows - 130, cols - 150)
    radius = 55 + 8 * np.sin(3 * angle) + 5 * np.cos(5 * angle)  # an irregular border
    lesion = np.hypot(rows - 130, cols - 150) <= radius
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2) * 12 + rng.normal(0, 6, shape)
    image = np.empty(shape + (3,))
    image[:] = (215, 165, 140)
    image[lesion] = (125, 80, 55)
    image += texture[..., None]
    if vignette:  # dark scope corners that touch the frame
        corner = np.hypot(rows - shape[0] / 2, cols - shape[1] / 2) > 190
        image[corner] *= 0.25
    if hairs:
        for row in (40, 200):
            image[row : row + 2, 20:300] = (60, 45, 40)
    return np.clip(image, 0, 255).astype(np.uint8), lesion


def test_synthetic_lesion_matches_the_known_mask():
    image, lesion = synthetic_dermoscopy()
    (region,) = get_expert("skin-lesion").locate(image, "Dermoscopy", "skin", ["melanoma"])
    assert region.label == "lesion"
    assert region.source == "expert:skin-lesion@1.0"
    assert dice(region.mask, lesion) >= 0.8
    assert region.score > 0.5


def test_lesion_is_found_without_vignetting_or_hair_too():
    image, lesion = synthetic_dermoscopy(seed=3, vignette=False, hairs=False)
    (region,) = get_expert("skin-lesion").locate(image, "Dermoscopy", None, [])
    assert dice(region.mask, lesion) >= 0.85


def test_plain_skin_gives_nothing():
    rng = np.random.default_rng(1)
    skin = np.clip(np.array([215, 165, 140]) + rng.normal(0, 6, (128, 128, 1)), 0, 255).astype(np.uint8)
    assert get_expert("skin-lesion").locate(skin, "Dermoscopy", None, []) == []
