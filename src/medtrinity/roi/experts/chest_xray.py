"""Chest radiograph expert: the two lung fields of a frontal film, and the more opaque one when a finding is named.

Lungs hold air, so on a frontal radiograph they are the two large dark fields enclosed by the bright
chest wall, mediastinum and diaphragm; the air outside the body also is dark but touches the film edge.
Sides are image sides: the pipeline derives the patient's side from the view and orientation.
"""

from __future__ import annotations

import numpy as np

from medtrinity.caption import NORMAL_LABELS
from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_LUNG_FRACTION = 0.02  # each lung field covers at least this much of a frontal chest film


def lung_candidates(gray: np.ndarray) -> list[np.ndarray]:
    """Dark components not touching the film edge, largest first.

    A first Otsu split finds the air outside the body (dark and touching the edge); a second one, over the
    rest, separates lung from the chest wall and mediastinum even when one lung is partly opaque.
    """
    from scipy import ndimage

    threshold = ops.otsu(gray)
    if threshold is None:
        return []
    outside = np.zeros_like(gray, dtype=bool)
    labelled, count = ops.label_components(ndimage.binary_opening(gray < threshold, iterations=3))
    for index in range(1, count + 1):
        part = labelled == index
        if ops.touches_border(part):
            outside |= part
    inside = ~ndimage.binary_dilation(outside, iterations=2)
    threshold = ops.otsu(gray[inside]) if inside.any() else None
    if threshold is None:
        return []
    dark = ndimage.binary_opening(inside & (gray < threshold), iterations=3)  # cut thin links between parts
    labelled, count = ops.label_components(dark)
    parts = [labelled == index for index in range(1, count + 1)]
    parts = [p for p in parts if not ops.touches_border(p) and p.mean() >= MIN_LUNG_FRACTION]
    return sorted(parts, key=lambda p: -int(p.sum()))


def tidy_lung(part: np.ndarray) -> np.ndarray:
    """Close over vessels and nodules inside the field: they are lung, however bright."""
    return ops.fill_holes(ops.disk_closing(part, max(3.0, 0.025 * max(part.shape))))


# Contrast score between the two lung fields below which neither is called the more opaque one.
MIN_OPACITY_DIFFERENCE = 0.2
# Labels that name no lung finding: nothing to place on a side.
NOT_A_LUNG_FINDING = ("support devices", "no lung opacity", "not normal", "other than lung opacity", "(uncertain)")
NO_FINDING_LABELS = NORMAL_LABELS | {"no abnormality", "none"}  # the caption's, and two more seen on chest films
OPAQUE_SUFFIX = " (more opaque lung)"


def finding_names(labels: list[str]) -> list[str]:
    """Labels that may name a lung finding: not "normal", not a negative ("no pneumothorax"), not a device."""
    return [
        label
        for label in labels
        if label.strip().lower() not in NO_FINDING_LABELS
        and not label.strip().lower().startswith("no ")
        and not any(word in label.lower() for word in NOT_A_LUNG_FINDING)
    ]


@register_expert
class ChestXrayLungsExpert(ClassicalExpert):
    name = "chest-xray-lungs"
    version = "1.1"
    region_kind = "anatomy"  # the lung fields

    def kind_of(self, label: str) -> str:
        # The more opaque lung is where the film looks denser, not where the source puts the finding.
        return "region" if label.endswith(OPAQUE_SUFFIX) else self.region_kind

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        gray = ops.smooth(ops.to_gray(image), 2.0)
        midline = gray.shape[1] / 2.0
        sides: dict[str, np.ndarray] = {}
        for part in lung_candidates(gray):
            cols = np.nonzero(part)[1]
            left_share = float((cols < midline).mean())
            side = "left" if left_share > 0.8 else "right" if left_share < 0.2 else None
            if side is not None and side not in sides:  # the largest one wholly on each side
                sides[side] = tidy_lung(part)
        if not sides:
            return []
        both = np.logical_or.reduce(list(sides.values()))
        contrast = ops.contrast_score(gray, both, ops.ring(both, 10))
        areas = [float(mask.sum()) for mask in sides.values()]
        balance = min(areas) / max(areas) if len(areas) == 2 else 0.5  # one field alone is a weaker fit
        score = contrast * balance**0.5
        found: list[Finding] = [(mask, f"lung field (image {side})", score) for side, mask in sorted(sides.items())]
        findings = finding_names(labels)
        if findings and len(sides) == 2:
            opaque_side = max(sides, key=lambda side: float(gray[sides[side]].mean()))
            other = sides["left" if opaque_side == "right" else "right"]
            # confidence that one lung really is more opaque: the contrast between the two fields. Below the
            # floor the lungs look alike, and naming a side for the finding would be an invention.
            difference = ops.contrast_score(gray, sides[opaque_side], other)
            if difference >= MIN_OPACITY_DIFFERENCE:
                found.append((sides[opaque_side], f"{', '.join(findings)}{OPAQUE_SUFFIX}", min(score, difference)))
        return found
