"""Microscopy expert: cells (or any objects) that stand out from a flat, unstained background.

Bright-field and phase-contrast images of cells in medium show a flat gray background that covers most of
the frame; a cell differs from it, brighter or darker, often ringed by an optical halo of the opposite
polarity. The background level is the image's median (the background is the majority), its noise the
median absolute deviation from it; pixels that differ by many noise units in the polarity that carries
most of the contrast, closed and with holes filled, are the cells (the halo is left out). Nothing is reported
when the background is not flat (texture everywhere) or not unstained (a stained tissue tile).
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

NOISE_UNITS = 5.0  # a pixel this many robust standard deviations off the background level is not background
MIN_STEP = 0.04  # and at least this far (of the gray range): a clean synthetic background has ~no noise
MIN_OBJECT_FRACTION = 0.001
MAX_OBJECTS_FRACTION = 0.6  # beyond this the "background" is not the majority: no flat background in view
MAX_BACKGROUND_CHROMA = 0.08  # channel spread of an unstained background (a stained field is colourful)
MAX_BACKGROUND_SPREAD = 0.06  # gray std of a flat background, after smoothing
MAX_CELLS = 50  # one region per cell up to this many; past it, one region for them all


def chroma(image: np.ndarray) -> np.ndarray:
    rgb = ops.to_rgb(image)
    return rgb.max(axis=2) - rgb.min(axis=2)


def objects_on_flat_background(image: np.ndarray) -> np.ndarray | None:
    """Mask of what differs from a flat unstained background, or None when no such background is in view."""
    gray = ops.smooth(ops.to_gray(image), 2.0)
    level = float(np.median(gray))
    offset = gray - level
    step = max(NOISE_UNITS * 1.4826 * float(np.median(np.abs(offset))), MIN_STEP)
    differs = np.abs(offset) > step
    if not differs.any() or differs.mean() > MAX_OBJECTS_FRACTION:
        return None
    background = ~differs
    if float(gray[background].std()) > MAX_BACKGROUND_SPREAD:
        return None
    if image.ndim == 3 and float(np.median(chroma(image)[background])) > MAX_BACKGROUND_CHROMA:
        return None
    # A cell and its optical halo have opposite polarity (bright cell, dark halo, or the reverse under phase
    # contrast); the polarity carrying more of the contrast is the cells', the other is their halo.
    bright = float(offset[offset > step].sum()) >= float(-offset[offset < -step].sum())
    objects = offset > step if bright else offset < -step
    objects = ops.fill_holes(ops.disk_closing(objects, 3.0))
    objects = ops.drop_small(objects, max(16, int(MIN_OBJECT_FRACTION * objects.size)))
    return objects if objects.any() else None


def cell_findings(image: np.ndarray, objects: np.ndarray) -> list[Finding]:
    """One finding per cell (largest first), or one for all when there are too many to list."""
    gray = ops.to_gray(image)
    labelled, count = ops.label_components(objects)
    if count > MAX_CELLS:
        return [(objects, "cells", ops.contrast_score(gray, objects, ~objects))]
    sizes = np.bincount(labelled.ravel())[1:]
    found: list[Finding] = []
    for index in np.argsort(-sizes) + 1:
        cell = labelled == index
        surround = ops.ring(cell, max(3.0, np.sqrt(cell.sum()) / 4)) & ~objects
        found.append((cell, "cell", ops.contrast_score(gray, cell, surround)))
    return found


@register_expert
class CellsExpert(ClassicalExpert):
    name = "cells"
    version = "1.0"
    region_kind = "region"  # objects standing out from the background, claiming no diagnosis

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        objects = objects_on_flat_background(image)
        return [] if objects is None else cell_findings(image, objects)
