"""Fallback expert: the main foreground object (Otsu threshold, largest component, holes filled)."""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_FRACTION = 0.005  # smaller than this is a speck, not "the main object"
MAX_FRACTION = 0.98  # larger than this is the whole frame: no object stands out


def foreground_polarity(gray: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """The Otsu class that is NOT the background, the background being the class that owns the border."""
    border = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    return bright if border.mean() <= 0.5 else ~bright


def separability(values: np.ndarray, threshold: float) -> float:
    """Otsu's effectiveness measure: between-class variance / total variance, in [0, 1]."""
    total = float(values.var())
    if total == 0:
        return 0.0
    upper = values > threshold
    weight = float(upper.mean())
    if weight in (0.0, 1.0):
        return 0.0
    between = weight * (1 - weight) * (float(values[upper].mean()) - float(values[~upper].mean())) ** 2
    return between / total


@register_expert
class ForegroundExpert(ClassicalExpert):
    name = "foreground"
    version = "1.0"

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        from scipy import ndimage

        gray = ops.smooth(ops.to_gray(image), 1.0)
        threshold = ops.otsu(gray)
        if threshold is None:
            return []
        candidate = foreground_polarity(gray, gray > threshold)
        candidate = ndimage.binary_opening(candidate, iterations=2)  # detach thin lines, drop text specks
        mask = ops.fill_holes(ops.largest_component(candidate))
        fraction = float(mask.mean())
        if not MIN_FRACTION <= fraction <= MAX_FRACTION:
            return []
        return [(mask, "foreground", separability(gray, threshold))]
