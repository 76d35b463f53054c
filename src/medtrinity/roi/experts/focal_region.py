"""Ultrasound / endoscopy expert: the dominant focal region that contrasts with its surroundings.

Speckle and mucosal texture are smoothed away first; Otsu inside the acquired field (the sector or
circle on its black surround) gives candidate regions, and the one kept is the most compact, most
contrasting one nearest the field centre — where the operator puts what they look at. On ultrasound
only dark (hypoechoic) candidates count, as focal lesions there typically are.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

SURROUND_LEVEL = 0.04  # the black surround of a sector or scope image
MIN_OF_FIELD, MAX_OF_FIELD = 0.005, 0.5
MIN_SCORE = 0.25  # under ~2.5 dB of contrast is texture, not a focal region


def acquired_field(gray: np.ndarray) -> np.ndarray:
    field = ops.fill_holes(ops.largest_component(ops.smooth(gray, 3.0) > SURROUND_LEVEL))
    return field if field.mean() >= 0.1 else np.ones_like(gray, dtype=bool)


def candidates(smoothed: np.ndarray, field: np.ndarray, polarities: tuple[str, ...]) -> list[tuple[np.ndarray, str]]:
    from scipy import ndimage

    inner = ndimage.binary_erosion(field, iterations=3) if not field.all() else field
    threshold = ops.otsu(smoothed[inner])
    if threshold is None:
        return []
    rim = inner & ~ndimage.binary_erosion(inner)
    found = []
    for polarity in polarities:
        side = smoothed < threshold if polarity == "dark" else smoothed > threshold
        labelled, count = ops.label_components(ndimage.binary_opening(side & inner, iterations=2))
        for index in range(1, count + 1):
            part = labelled == index
            edge_free = not (ops.touches_border(part) or (part & rim).any())
            if edge_free and MIN_OF_FIELD <= part.sum() / inner.sum() <= MAX_OF_FIELD:
                found.append((ops.fill_holes(part), polarity))
    return found


def rank(
    smoothed: np.ndarray, part: np.ndarray, field: np.ndarray, centre: np.ndarray, radius: float
) -> tuple[float, float]:
    """(confidence, ranking key): contrast against its own surroundings times compactness; centrality
    (distance from the field's `centre`, in field radii) ranks."""
    from skimage.measure import regionprops

    prop = regionprops(part.astype(np.uint8))[0]
    width = max(3, int(prop.equivalent_diameter_area / 4))
    inside, around = float(smoothed[part].mean()), float(smoothed[ops.ring(part, width) & field].mean())
    # Weber-like contrast |a - b| / max(a, b): the intensity ratio that lesion contrast in dB measures;
    # unlike a contrast-to-noise ratio it does not grow as smoothing flattens a blob of speckle
    contrast = abs(inside - around) / max(inside, around, 1e-6)
    confidence = contrast * prop.solidity
    offset = np.linalg.norm(np.array(prop.centroid) - centre) / radius
    return confidence, confidence * (1.0 - 0.5 * min(1.0, float(offset)))


@register_expert
class FocalRegionExpert(ClassicalExpert):
    name = "focal-region"
    version = "1.0"
    region_kind = "region"  # a contrasting region, claiming no diagnosis

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        gray = ops.to_gray(image)
        field = acquired_field(gray)
        smoothed = ops.smooth(gray, max(2.0, min(gray.shape) / 100))
        ultrasound = modality.strip().lower() == "ultrasound"
        polarities = ("dark",) if ultrasound else ("dark", "bright")
        centre, radius = np.argwhere(field).mean(axis=0), float(np.sqrt(field.sum() / np.pi))
        scored = [
            (rank(smoothed, part, field, centre, radius), part, pol)
            for part, pol in candidates(smoothed, field, polarities)
        ]
        if not scored:
            return []
        (confidence, _), part, polarity = max(scored, key=lambda item: item[0][1])
        if confidence < MIN_SCORE:
            return []
        label = "hypoechoic focal region" if ultrasound else f"{polarity} focal region"
        return [(part, label, confidence)]
