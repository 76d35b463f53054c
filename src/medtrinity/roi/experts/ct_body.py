"""CT expert: the body, the lungs (air inside the body) and bone (the brightest tissue) on an axial slice.

What it is given: the describer's 8-bit view of the slice, i.e. Hounsfield units already windowed
(linear, clipped) by the reader, not HU. It assumes only what holds on every common window: air outside
the body is the darkest thing on the slice, soft tissue sits mid-range and bone near the top. A narrow
window breaks the converse: on a brain window (L40/W80) everything below ~0 HU (fat, CSF, air) clips to
black, so a dark pocket inside the body is not necessarily air. Hence lungs are looked for only where the
organ may hold them (never in a head, neck, pelvis or limb slice), and only as pockets about as dark as
the air outside the body.

Otsu over the slice splits air from the body; the largest bright component with its holes filled is the
body (an opening first detaches the thin scanner table). Large air-dark pockets inside the body are the
lungs; small ones (bowel gas) are passed over. Bone is the tissue that stands well above the body's
median (soft tissue) level.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_BODY_FRACTION = 0.02
# The body stands well above the air around it on every CT window (soft tissue is 0.4 or more of the gray
# range above air even on a lung window). A split much smaller than this is of one material's noise (a slice
# with no body in it, or a crop inside it): there is no body outline to find.
MIN_BODY_STEP = 0.15
MIN_LUNG_OF_BODY = 0.03  # each lung is several percent of a chest slice; gas in a bowel loop is less
MIN_BONE_OF_BODY = 0.001
MIN_BONE_STEP = 0.2  # bone sits at least this far (of the gray range) above soft tissue on common windows
# Lung parenchyma (-700..-900 HU) is far nearer air (-1000) than soft tissue (+40) on any window: on a lung
# window (L-600/W1500) it is ~0.07 above the outside air with soft tissue ~0.7 above; fat (-100 HU) on a
# soft-tissue window (L40/W400) is 0.15 above air with soft tissue 0.5 above. A quarter of the way from
# air to soft tissue keeps the first and leaves out the second.
AIR_OF_AIR_TO_TISSUE = 0.25
MIN_OUTSIDE_AIR = 0.01  # less outside air than this (a crop inside the body): the floor of the range is air
# Slices of these organs hold no lung; a dark pocket there is CSF, fat or a sinus, not a lung.
NO_LUNG_ORGANS = frozenset(
    {
        "head",
        "brain",
        "skull",
        "face",
        "orbit",
        "orbits",
        "sinus",
        "sinuses",
        "neck",
        "pelvis",
        "hip",
        "arm",
        "upper arm",
        "forearm",
        "elbow",
        "wrist",
        "hand",
        "finger",
        "leg",
        "thigh",
        "femur",
        "knee",
        "tibia",
        "ankle",
        "foot",
        "extremity",
        "upper extremity",
        "lower extremity",
    }
)


def may_hold_lungs(organ: str | None) -> bool:
    return (organ or "").strip().lower() not in NO_LUNG_ORGANS


def body_mask(gray: np.ndarray) -> tuple[np.ndarray, float] | None:
    from scipy import ndimage

    threshold = ops.otsu(gray)
    if threshold is None:
        return None
    solid = ndimage.binary_opening(gray > threshold, iterations=3)
    body = ops.fill_holes(ops.largest_component(solid))
    if body.mean() < MIN_BODY_FRACTION:
        return None
    if not body.all() and float(np.median(gray[body]) - np.median(gray[~body])) < MIN_BODY_STEP:
        return None
    return body, threshold


def air_darkness(gray: np.ndarray, body: np.ndarray, tissue: np.ndarray, air_level: float) -> float:
    """The gray level under which a pixel inside the body is as dark as air: near the outside air's level."""
    outside = ~body
    air = float(np.median(gray[outside])) if outside.mean() >= MIN_OUTSIDE_AIR else float(gray.min())
    soft = float(np.median(gray[tissue])) if tissue.any() else air_level
    return min(air_level, air + AIR_OF_AIR_TO_TISSUE * max(0.0, soft - air))


def lungs_mask(gray: np.ndarray, body: np.ndarray, dark_level: float) -> np.ndarray:
    from scipy import ndimage

    inner = ndimage.binary_erosion(body, iterations=2)
    air = ndimage.binary_opening(inner & (gray < dark_level), iterations=1)
    return ops.fill_holes(ops.drop_small(air, max(1, int(MIN_LUNG_OF_BODY * body.sum()))))


def bone_mask(gray: np.ndarray, tissue: np.ndarray) -> np.ndarray | None:
    """Tissue well above the body's typical (median: soft tissue) level: on any CT window, bone."""
    if not tissue.any():
        return None
    bone = tissue & (gray > float(np.median(gray[tissue])) + MIN_BONE_STEP)
    bone = ops.drop_small(bone, max(4, int(MIN_BONE_OF_BODY * tissue.sum())))
    return bone if bone.any() else None


@register_expert
class CtBodyExpert(ClassicalExpert):
    name = "ct-body"
    version = "1.2"
    region_kind = "anatomy"  # body, lungs, bone

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        gray = ops.smooth(ops.to_gray(image), 1.0)
        found_body = body_mask(gray)
        if found_body is None:
            return []
        body, air_level = found_body
        tissue = body & (gray >= air_level)  # the body's own tissue, without the air of the lungs
        found: list[Finding] = [(body, "body", ops.contrast_score(gray, tissue, ~body))]
        lungs = np.zeros_like(body)
        if may_hold_lungs(organ):
            lungs = lungs_mask(gray, body, air_darkness(gray, body, tissue, air_level))
        if lungs.any():
            found.append((lungs, "lungs", ops.contrast_score(gray, lungs, body & ~lungs)))
        bone = bone_mask(gray, tissue & ~lungs)
        if bone is not None:
            found.append((bone, "bone", ops.contrast_score(gray, bone, ops.ring(bone, 3) & body & ~lungs)))
        return found
