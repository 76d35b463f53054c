"""foreground: the main object, bright on dark or dark on bright, on synthetic images."""

import numpy as np

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def scene(object_level: float, background_level: float, seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:200, :240]
    obj = (rows - 90) ** 2 / 60**2 + (cols - 130) ** 2 / 80**2 <= 1
    image = np.where(obj, object_level, background_level) + rng.normal(0, 0.05, obj.shape)
    image[obj & (np.hypot(rows - 90, cols - 130) < 12)] = background_level  # a hole: still the object
    image[185:189, 10:60] = object_level  # a small text-like mark apart from the object
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), obj


def test_bright_object_on_dark_background():
    image, obj = scene(0.7, 0.1)
    (region,) = get_expert("foreground").locate(image, "PET", None, [])
    assert region.label == "foreground"
    assert dice(region.mask, obj) >= 0.95
    assert region.score > 0.8
    assert region.source == "expert:foreground@1.0"


def test_dark_object_on_bright_background():
    image, obj = scene(0.3, 0.9, seed=1)
    (region,) = get_expert("foreground").locate(image, "Other", None, [])
    assert dice(region.mask, obj) >= 0.95


def test_pure_noise_has_a_low_separability():
    rng = np.random.default_rng(0)
    noise = rng.integers(100, 140, (128, 128)).astype(np.uint8)
    regions = get_expert("foreground").locate(noise, "Other", None, [])
    assert all(r.score < 0.8 for r in regions)
