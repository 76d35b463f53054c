"""MRI head expert: the head region and focal hyperintensities inside it.

The head is the Otsu foreground against the dark (noise-only) background, largest component, holes
filled. A focal hyperintensity is a compact spot far above the robust intensity distribution inside
the head (median + k * MAD), away from the scalp (its fat is bright on T1) and small next to the head.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_HEAD_FRACTION = 0.03
MAD_FACTOR = 5.0  # ~3.4 standard deviations of a normal distribution above the median
MIN_SPOT_OF_HEAD, MAX_SPOT_OF_HEAD = 0.0005, 0.1
SCALP_DEPTH = 0.12  # of the head's equivalent radius
MAX_SPOTS = 3  # the most contrasting ones; more would bury them
MIN_SOLIDITY = 0.7  # compact spots, not the thin bright rim of a ventricle or a vessel


def head_mask(gray: np.ndarray) -> np.ndarray | None:
    from scipy import ndimage

    threshold = ops.otsu(gray)
    if threshold is None:
        return None
    # fill first: the skull is dark but enclosed by the scalp, so it is head, not background
    solid = ndimage.binary_opening(ops.fill_holes(gray > threshold), iterations=2)
    head = ops.fill_holes(ops.largest_component(solid))
    return head if head.mean() >= MIN_HEAD_FRACTION else None


def hyperintensities(gray: np.ndarray, head: np.ndarray) -> list[np.ndarray]:
    from scipy import ndimage
    from skimage.measure import regionprops

    # scalp and skull together are ~10-15 mm of a ~90 mm half-width: keep that far from the outline
    depth = max(2.0, SCALP_DEPTH * np.sqrt(head.sum() / np.pi))
    inner = ndimage.distance_transform_edt(head) > depth
    if inner.sum() < 50:
        return []
    values = gray[inner]
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) or 1e-3
    bright = inner & (gray > median + MAD_FACTOR * 1.4826 * mad)
    labelled, count = ops.label_components(bright)
    area = float(head.sum())
    spots = []
    for prop in regionprops(labelled):
        if MIN_SPOT_OF_HEAD * area <= prop.area <= MAX_SPOT_OF_HEAD * area and prop.solidity >= MIN_SOLIDITY:
            spots.append(grow_to_half_maximum(gray, labelled == prop.label, head))
    return spots


def grow_to_half_maximum(gray: np.ndarray, core: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Extend a spot's core to where it falls halfway to its surroundings: the spot's edge, not its peak."""
    reach = max(2, int(np.sqrt(core.sum())))
    near = (core | ops.ring(core, reach)) & head
    surround = near & ~ops.ring(core, reach // 2 + 1) & ~core
    if not surround.any():
        return core
    background = float(np.median(gray[surround]))
    half = (float(gray[core].max()) + background) / 2
    labelled, _ = ops.label_components(near & (gray > half))
    return ops.fill_holes(np.isin(labelled, np.unique(labelled[core & (labelled > 0)])))


@register_expert
class MriHeadExpert(ClassicalExpert):
    name = "mri-head"
    version = "1.0"
    region_kind = "region"  # a focal hyperintensity is a brightness, not a diagnosis

    def kind_of(self, label: str) -> str:
        return "anatomy" if label == "head" else self.region_kind

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        gray = ops.smooth(ops.to_gray(image), 1.0)
        head = head_mask(gray)
        if head is None:
            return []
        found: list[Finding] = [(head, "head", ops.contrast_score(gray, head, ~head))]
        spots = [(s, ops.contrast_score(gray, s, ops.ring(s, 4) & head)) for s in hyperintensities(gray, head)]
        for spot, score in sorted(spots, key=lambda item: -item[1])[:MAX_SPOTS]:
            found.append((spot, "focal hyperintensity", score))
        return found
