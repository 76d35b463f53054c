"""Fundus expert: the retinal field (the round lit field on the black surround) and the optic disc.

The disc is the brightest compact spot of the field, crossed by dark vessels: a gray closing removes the
vessels, the brightest percentile gives a seed, and a local Otsu threshold around the seed draws the disc.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

SURROUND_LEVEL = 0.12  # the unlit surround of a fundus photograph is black; the lit field is far above this
SEED_PERCENTILE = 99.0


def retinal_field(image: np.ndarray) -> np.ndarray:
    lit = ops.smooth(ops.to_rgb(image).max(axis=2), 2.0)
    threshold = min(ops.otsu(lit) or SURROUND_LEVEL, SURROUND_LEVEL)
    return ops.fill_holes(ops.largest_component(lit > threshold))


def devesseled(gray: np.ndarray, radius: int) -> np.ndarray:
    """Gray closing: removes dark vessels narrower than the window, keeps bright blobs.

    A square window (separable max/min filters) is several times faster than a disk and as good here.
    """
    from scipy import ndimage

    return ops.smooth(ndimage.grey_closing(gray, size=(2 * radius + 1, 2 * radius + 1)), 2.0)


def optic_disc(signal: np.ndarray, field: np.ndarray, field_radius: float) -> np.ndarray | None:
    from scipy import ndimage

    inner = ndimage.distance_transform_edt(field) > max(1.0, 0.04 * field_radius)  # clear of the rim
    if inner.sum() < 100:
        return None
    seeds = inner & (signal >= np.percentile(signal[inner], SEED_PERCENTILE))
    seed = ops.largest_component(seeds)
    if not seed.any():
        return None
    centre = np.argwhere(seed).mean(axis=0)
    # the disc spans about a seventh of the field's diameter: a window twice that holds disc and background
    rows, cols = np.ogrid[: signal.shape[0], : signal.shape[1]]
    window = inner & ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= (0.3 * field_radius) ** 2)
    threshold = ops.otsu(signal[window])
    if threshold is None:
        return None
    disc = ops.largest_component(ndimage.binary_opening(window & (signal > threshold), iterations=2))
    return ops.fill_holes(disc) if disc.any() else None


@register_expert
class FundusDiscExpert(ClassicalExpert):
    name = "fundus-disc"
    version = "1.0"
    region_kind = "anatomy"  # retinal field, optic disc

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        field = retinal_field(image)
        if field.mean() < 0.05:
            return []
        field_radius = float(np.sqrt(field.sum() / np.pi))
        rows, cols = np.nonzero(field)
        box_circle = np.pi * (max(np.ptp(rows), np.ptp(cols)) + 1) ** 2 / 4
        roundness = min(1.0, float(field.sum()) / box_circle)  # 1 for a full round field, less when cropped
        lit = ops.to_rgb(image).max(axis=2)
        found: list[Finding] = []
        if not field.all():
            found.append((field, "retinal field", roundness * ops.contrast_score(lit, field, ~field)))
        signal = devesseled(ops.to_gray(image), max(2, int(0.03 * field_radius)))
        disc = optic_disc(signal, field, field_radius)
        if disc is not None and disc.sum() >= 20:
            around = ops.ring(disc, max(3, int(0.1 * field_radius))) & field
            score = ops.circularity(disc) * ops.contrast_score(signal, disc, around)
            found.append((disc, "optic disc", score))
        return found
