"""Dermoscopy expert: the pigmented lesion against the surrounding skin.

Melanin absorbs most in the blue, so a lesion is darkest in the blue channel relative to skin; Otsu on a
smoothed darkness image separates it, and the lesion is the sizeable dark component nearest the centre
(dermoscopes are aimed at it). Dark vignetted corners touch the frame and are passed over when a
central component exists.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_FRACTION = 0.003  # below this a dark component is a hair fragment or pore
MIN_SCORE = 0.3  # cnr 0.43: below it the "lesion" is no darker than skin texture


def darkness(image: np.ndarray) -> np.ndarray:
    """Darkness weighted to the blue channel, where pigment contrasts most."""
    rgb = ops.to_rgb(image)
    return 1.0 - (0.5 * rgb[..., 2] + 0.5 * ops.to_gray(image))


def nearest_to_centre(parts: list[np.ndarray]) -> np.ndarray:
    centre = np.array(parts[0].shape) / 2.0

    def distance(part: np.ndarray) -> float:
        return float(np.linalg.norm(np.argwhere(part).mean(axis=0) - centre))

    inner = [p for p in parts if not ops.touches_border(p)]
    return min(inner or parts, key=distance)


@register_expert
class SkinLesionExpert(ClassicalExpert):
    name = "skin-lesion"
    version = "1.0"
    region_kind = "finding"  # the lesion a dermoscopy image is taken of: the record's finding

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        from scipy import ndimage

        raw = darkness(image)
        dark = ops.smooth(raw, max(2.0, min(raw.shape) / 100))  # over hairs and skin texture
        threshold = ops.otsu(dark)
        if threshold is None:
            return []
        candidate = ndimage.binary_opening(dark > threshold, iterations=2)
        labelled, count = ops.label_components(candidate)
        parts = [labelled == index for index in range(1, count + 1)]
        parts = [p for p in parts if p.mean() >= MIN_FRACTION]
        if not parts:
            return []
        lesion = ops.fill_holes(nearest_to_centre(parts))
        if lesion.mean() > 0.9:  # the whole frame is "dark": no lesion stands out from skin
            return []
        # contrast on the unsmoothed image: smoothing would make any blob of skin noise look distinct
        score = ops.contrast_score(raw, lesion, ops.ring(lesion, max(3, min(dark.shape) // 30)))
        return [(lesion, "lesion", score)] if score >= MIN_SCORE else []
