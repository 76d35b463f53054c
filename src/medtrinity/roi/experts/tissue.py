"""Histopathology / microscopy expert: tissue against the bright glass background, and nuclei-dense areas.

Glass is near white in every channel, stained tissue is not: the darkest channel separates them (Otsu,
clamped to the glass range: a tile wholly covered by tissue stays tissue, and blank glass stays glass).
Nuclei take up haematoxylin; colour deconvolution (Ruifrok & Johnston HED) isolates it, and its local
density, smoothed over a few nuclei, marks the nuclei-dense region (RGB only: a gray image carries no stain
to separate).

An image with no glass in view is either a tile wholly covered by tissue or not a slide at all: cells in
medium on a flat gray background (a bright-field or phase-contrast microscopy image) look "stained" to the
darkest-channel rule everywhere. When such a flat, unstained background is in view (see `cells`), a tissue
region covering the whole frame would be false: Microscopy reports the cells, other modalities the objects
standing on that background as tissue.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import cells, ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

# Glass is near white: its darkest channel stays above 0.8 (stain signal below 0.2); anything whose darkest
# channel is above 0.9 (signal below 0.1) is glass however Otsu splits a blank slide's noise.
GLASS_STAIN_MIN, GLASS_STAIN_MAX = 0.1, 0.2
MIN_PART_FRACTION = 0.002
MIN_DENSE_FRACTION = 0.01
MIN_TEXTURE_STD, FULL_TEXTURE_STD = 0.02, 0.1  # gray spread of a tile with no glass: flat vs fully textured
FULL_COVER = 0.95  # tissue over this share of the frame: no glass in view
MIN_DENSE_CONTRAST = 0.5  # cnr 1: the dense area must stand clearly above the rest of the tissue


def tissue_mask(image: np.ndarray) -> np.ndarray:
    stain = ops.smooth(1.0 - ops.to_rgb(image).min(axis=2), 2.0)
    threshold = float(np.clip(ops.otsu(stain) or GLASS_STAIN_MAX, GLASS_STAIN_MIN, GLASS_STAIN_MAX))
    tissue = stain > threshold
    min_size = max(16, int(MIN_PART_FRACTION * tissue.size))
    return ops.fill_small_holes(ops.drop_small(tissue, min_size), min_size)


def nuclei_density(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2hed

    haematoxylin = rgb2hed(ops.to_rgb(image))[..., 0]
    return ops.smooth(np.clip(haematoxylin, 0, None), max(3.0, min(image.shape[:2]) / 40))


def dense_region(density: np.ndarray, tissue: np.ndarray) -> np.ndarray | None:
    threshold = ops.otsu(density[tissue])
    if threshold is None:
        return None
    dense = ops.drop_small(tissue & (density > threshold), int(MIN_DENSE_FRACTION * tissue.size))
    return dense if dense.any() else None


@register_expert
class TissueExpert(ClassicalExpert):
    name = "tissue"
    version = "1.1"
    region_kind = "region"  # tissue against glass, nuclei-dense areas (and cells): appearance, no diagnosis

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        tissue = tissue_mask(image)
        if tissue.mean() < MIN_PART_FRACTION:
            return []
        gray = ops.to_gray(image)
        found: list[Finding] = []
        if tissue.mean() < FULL_COVER:  # glass in view around the tissue
            found.append((tissue, "tissue", ops.contrast_score(gray, tissue, ~tissue)))
        elif (objects := cells.objects_on_flat_background(image)) is not None:  # cells on a bare background
            if modality.strip().lower() == "microscopy":
                return cells.cell_findings(image, objects)
            return [(objects, "tissue", ops.contrast_score(gray, objects, ~objects))]
        elif gray.std() >= MIN_TEXTURE_STD:  # no glass in view: a tile wholly covered, if it shows structure
            found.append((tissue, "tissue", min(1.0, float(gray.std()) / FULL_TEXTURE_STD)))
        else:  # a flat stained field shows no tissue structure to vouch for
            return []
        if image.ndim == 3:
            found += nuclei_dense_finding(image, tissue)
        return found


def nuclei_dense_finding(image: np.ndarray, tissue: np.ndarray) -> list[Finding]:
    density = nuclei_density(image)
    dense = dense_region(density, tissue)
    if dense is None or dense.sum() >= tissue.sum():
        return []
    score = ops.contrast_score(density, dense, tissue & ~dense)
    return [(dense, "nuclei-dense region", score)] if score >= MIN_DENSE_CONTRAST else []
