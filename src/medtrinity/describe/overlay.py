"""ROI outlines drawn on a copy of the image, for a model that reads better with the regions marked.

Only the copy sent to the model is drawn on; the stored image stays exactly the pixels that were read.
"""

from __future__ import annotations

import numpy as np

from medtrinity.records import ROI

# Named so the prompt can say which outline is which ROI; cycled when there are more ROIs.
OUTLINE_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 0, 0)),
    ("green", (0, 200, 0)),
    ("blue", (0, 90, 255)),
    ("yellow", (255, 220, 0)),
    ("magenta", (255, 0, 255)),
    ("cyan", (0, 230, 230)),
)


def outline_colour(index: int) -> tuple[str, tuple[int, int, int]]:
    return OUTLINE_COLOURS[index % len(OUTLINE_COLOURS)]


def _mask_edge(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it: a one-pixel outline."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _box_edge(bbox: list[int], height: int, width: int) -> np.ndarray:
    x0, y0, x1, y1 = (max(0, bbox[0]), max(0, bbox[1]), min(width, bbox[2]), min(height, bbox[3]))
    edge = np.zeros((height, width), bool)
    if x1 > x0 and y1 > y0:
        edge[y0:y1, x0:x1] = True
        edge[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = False
    return edge


def roi_outline(roi: ROI, height: int, width: int) -> np.ndarray:
    """Bool HxW outline of one ROI: its mask's edge, or its box where it has no mask."""
    if roi.mask is not None:
        from medtrinity.roi.geometry import rle_to_mask

        mask = rle_to_mask(roi.mask)
        if mask.shape == (height, width) and mask.any():
            return _mask_edge(mask)
    return _box_edge(roi.bbox, height, width)


def draw_overlay(pixels: np.ndarray, rois: list[ROI]) -> np.ndarray:
    """A new RGB uint8 image: `pixels` with each ROI outlined in its colour. `pixels` is not modified."""
    rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
    canvas = np.array(rgb, dtype=np.uint8, copy=True)
    height, width = canvas.shape[:2]
    for index, roi in enumerate(rois):
        canvas[roi_outline(roi, height, width)] = outline_colour(index)[1]
    return canvas
