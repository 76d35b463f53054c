"""CT expert: the body, the lungs (air inside the body) and bone (the brightest tissue) on an axial slice.

Air is the darkest thing on any CT window, so Otsu over the slice splits air from the body; the largest
bright component with its holes filled is the body (an opening first detaches the thin scanner table).
Large air pockets inside the body are the lungs; small ones (bowel gas) are passed over. Bone is the
tissue that stands well above the body's median (soft tissue) level.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_BODY_FRACTION = 0.02
MIN_LUNG_OF_BODY = 0.03  # each lung is several percent of a chest slice; gas in a bowel loop is less
MIN_BONE_OF_BODY = 0.001
MIN_BONE_STEP = 0.2  # bone sits at least this far (of the gray range) above soft tissue on common windows


def body_mask(gray: np.ndarray) -> tuple[np.ndarray, float] | None:
    from scipy import ndimage

    threshold = ops.otsu(gray)
    if threshold is None:
        return None
    solid = ndimage.binary_opening(gray > threshold, iterations=3)
    body = ops.fill_holes(ops.largest_component(solid))
    return (body, threshold) if body.mean() >= MIN_BODY_FRACTION else None


def lungs_mask(gray: np.ndarray, body: np.ndarray, air_level: float) -> np.ndarray:
    from scipy import ndimage

    inner = ndimage.binary_erosion(body, iterations=2)
    air = ndimage.binary_opening(inner & (gray < air_level), iterations=1)
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
    version = "1.0"

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        gray = ops.smooth(ops.to_gray(image), 1.0)
        found_body = body_mask(gray)
        if found_body is None:
            return []
        body, air_level = found_body
        tissue = body & (gray >= air_level)  # the body's own tissue, without the air of the lungs
        found: list[Finding] = [(body, "body", ops.contrast_score(gray, tissue, ~body))]
        lungs = lungs_mask(gray, body, air_level)
        if lungs.any():
            found.append((lungs, "lungs", ops.contrast_score(gray, lungs, body & ~lungs)))
        bone = bone_mask(gray, tissue & ~lungs)
        if bone is not None:
            found.append((bone, "bone", ops.contrast_score(gray, bone, ops.ring(bone, 3) & body & ~lungs)))
        return found
