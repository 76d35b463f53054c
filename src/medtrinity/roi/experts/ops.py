"""Small image operations the built-in experts share (scikit-image / SciPy imported inside each function)."""

from __future__ import annotations

import numpy as np

from medtrinity import records
from medtrinity.roi.geometry import bbox_of_mask

_LUMA = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray


def to_gray(image: np.ndarray) -> np.ndarray:
    """Float gray image in [0, 1] from uint8 gray or RGB.

    Not `roi.measure.to_gray` (BT.601, 0-255 scale): the experts' thresholds were tuned on this scale.
    """
    values = image.astype(np.float64) / 255.0
    return values if values.ndim == 2 else values @ _LUMA


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Float RGB image in [0, 1] from uint8 gray or RGB."""
    values = image.astype(np.float64) / 255.0
    return np.repeat(values[..., None], 3, axis=2) if values.ndim == 2 else values


def downscale(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its longer side at most `max_side` (anti-aliased), still uint8."""
    height, width = pixels.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1.0:
        return pixels
    from skimage.transform import resize

    shape = (max(1, round(height * factor)), max(1, round(width * factor))) + pixels.shape[2:]
    small = resize(pixels, shape, order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def upscale_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to `shape` (HxW)."""
    if mask.shape == tuple(shape[:2]):
        return mask.astype(bool)
    rows = (np.arange(shape[0]) * mask.shape[0] // shape[0]).clip(0, mask.shape[0] - 1)
    cols = (np.arange(shape[1]) * mask.shape[1] // shape[1]).clip(0, mask.shape[1] - 1)
    return mask[np.ix_(rows, cols)].astype(bool)


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(image, sigma) if sigma > 0 else image


def otsu(values: np.ndarray) -> float | None:
    """Otsu threshold of the values, or None when they are (nearly) constant."""
    if values.size < 2 or float(values.max() - values.min()) < 1e-6:
        return None
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values))


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    labelled, count = ndimage.label(mask)
    return labelled, int(count)


def largest_component(mask: np.ndarray) -> np.ndarray:
    labelled, count = label_components(mask)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labelled.ravel())[1:]
    return labelled == (int(np.argmax(sizes)) + 1)


def drop_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """The mask without its components of fewer than `min_size` pixels."""
    labelled, count = label_components(mask)
    if count == 0:
        return mask.astype(bool)
    keep = np.bincount(labelled.ravel()) >= min_size
    keep[0] = False
    return keep[labelled]


def fill_small_holes(mask: np.ndarray, max_size: int) -> np.ndarray:
    """The mask with its gaps of fewer than `max_size` pixels filled."""
    return ~drop_small(~mask.astype(bool), max_size)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_fill_holes(mask)


def disk_closing(mask: np.ndarray, radius: float) -> np.ndarray:
    """Morphological closing by a Euclidean disk, through distance transforms (fast for any radius).

    Outside the frame counts as background, so the closing does not glue a region to the image edge.
    """
    from scipy import ndimage

    if not mask.any():
        return mask.astype(bool)
    left, top, x1, y1 = bbox_of_mask(mask)
    pad = int(np.ceil(radius)) + 2
    crop = np.pad(mask[top:y1, left:x1], pad)
    grown = ndimage.distance_transform_edt(~crop) <= radius
    closed_crop = ndimage.distance_transform_edt(grown) > radius
    closed = np.zeros(mask.shape, dtype=bool)
    bottom = min(mask.shape[0], top + closed_crop.shape[0] - pad)
    right = min(mask.shape[1], left + closed_crop.shape[1] - pad)
    closed[top:bottom, left:right] = closed_crop[pad : pad + bottom - top, pad : pad + right - left]
    return closed | mask


def touches_border(component: np.ndarray) -> bool:
    return bool(component[0].any() or component[-1].any() or component[:, 0].any() or component[:, -1].any())


def ring(mask: np.ndarray, width: float) -> np.ndarray:
    """The band within `width` pixels (Euclidean) around a mask: the region's immediate surroundings."""
    from scipy import ndimage

    band = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return band
    x0, y0, x1, y1 = bbox_of_mask(mask)
    reach = int(np.ceil(width)) + 1  # only the mask's box grown by the width can be in the band
    top, left = max(0, y0 - reach), max(0, x0 - reach)
    bottom, right = y1 + reach, x1 + reach
    crop = mask[top:bottom, left:right]
    band[top:bottom, left:right] = ~crop & (ndimage.distance_transform_edt(~crop) <= max(1.0, width))
    return band


def contrast_score(image: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """Contrast-to-noise ratio of inside vs outside, mapped to [0, 1) as cnr / (1 + cnr)."""
    if not inside.any() or not outside.any():
        return 0.0
    a, b = image[inside], image[outside]
    cnr = abs(float(a.mean()) - float(b.mean())) / (float(a.std()) + float(b.std()) + 1e-6)
    return cnr / (1.0 + cnr)


def circularity(mask: np.ndarray) -> float:
    """4*pi*area / perimeter**2 of the mask, clipped to [0, 1] (1 for a disc)."""
    from skimage.measure import perimeter

    length = float(perimeter(mask))
    return 0.0 if length == 0 else min(1.0, 4.0 * np.pi * float(mask.sum()) / length**2)


def make_region(mask: np.ndarray, label: str, score: float, source: str) -> records.Region:
    bbox = tuple(float(v) for v in bbox_of_mask(mask))
    return records.Region(
        label=label, source=source, mask=mask.astype(bool), bbox=bbox, score=round(float(np.clip(score, 0, 1)), 3)
    )
