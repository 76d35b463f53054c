"""Regions (masks, boxes) turned into ROIs as DESIGN.md defines them.

Conventions (the record schema's):
- `bbox` is [x0, y0, x1, y1] in pixels with x1/y1 exclusive, so x1 - x0 is the width.
- The ROI centre is the bbox centre, normalised by the image size: cx = (x0 + x1) / 2 / width.
- Position words: five bins per axis with edges 0.2, 0.4, 0.6, 0.8; a value on an edge goes to the upper bin.
- `area_ratio` is ROI pixels / image pixels in percent, rounded to one decimal, half away from zero
  (computed in exact integer arithmetic, so 0.05 % boundaries never depend on float error).
- `mask` is a COCO compressed RLE {"size": [h, w], "counts": str}.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

import numpy as np

from medtrinity.errors import StageError
from medtrinity.records import HORIZONTAL_WORDS, VERTICAL_WORDS, ROI, Position, Region

POSITION_EDGES = (0.2, 0.4, 0.6, 0.8)
DEFAULT_MIN_COMPONENT_PIXELS = 9


# ---------------------------------------------------------------- words and ratios
def _position_bin(value: float, axis: str) -> int:
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"normalised {axis} centre must lie in [0, 1], got {value}")
    # bisect_right puts a value equal to an edge in the bin above it; 1.0 lands in the last bin.
    return bisect_right(POSITION_EDGES, value)


def describe_position(cx: float, cy: float) -> Position:
    """Position words for an ROI centre (cx, cy) normalised to [0, 1] in image coordinates."""
    return Position(
        horizontal=HORIZONTAL_WORDS[_position_bin(cx, "horizontal")],
        vertical=VERTICAL_WORDS[_position_bin(cy, "vertical")],
    )


def area_ratio(pixel_count: int, width: int, height: int) -> float:
    """Percent of the image covered, one decimal, rounded half away from zero (exact)."""
    total = int(width) * int(height)
    count = int(pixel_count)
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 0 <= count <= total:
        raise ValueError(f"pixel count {count} is outside 0..{total} for a {width}x{height} image")
    # tenths of a percent = count * 1000 / total; floor(x + 1/2) in integers (x >= 0, so half away from zero).
    tenths = (2 * count * 1000 + total) // (2 * total)
    return tenths / 10


# ---------------------------------------------------------------- COCO RLE
def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a 2D mask, with `counts` as str so it fits the Arrow schema and JSON."""
    from pycocotools import mask as mask_utils

    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask must be 2D, got shape {array.shape}")
    rle = mask_utils.encode(np.asfortranarray(array.astype(bool).astype(np.uint8)))
    counts = rle["counts"]
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts),
    }


def _coco_rle(rle: dict) -> dict:
    """The form pycocotools decodes: compressed counts as bytes; uncompressed (list) counts converted."""
    from pycocotools import mask as mask_utils

    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list | tuple):  # uncompressed COCO RLE, as some annotation files store it
        return mask_utils.frPyObjects({"size": [height, width], "counts": list(counts)}, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": counts}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Bool HxW mask of a COCO RLE (compressed str/bytes counts, or uncompressed list counts)."""
    import warnings

    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        # pycocotools' Cython decoder trips a NumPy 2 deprecation notice on every call; the result is correct.
        warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword")
        return mask_utils.decode(_coco_rle(rle)).astype(bool)


def rle_area(rle: dict) -> int:
    """Number of foreground pixels of a COCO RLE, without decoding it."""
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(_coco_rle(rle)))


# ---------------------------------------------------------------- masks to ROIs
def bbox_of_mask(mask: np.ndarray) -> list[int]:
    """[x0, y0, x1, y1] of the foreground, x1/y1 exclusive. An empty mask has no box (ValueError)."""
    array = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(array.any(axis=1))
    cols = np.flatnonzero(array.any(axis=0))
    if rows.size == 0:
        raise ValueError("an empty mask has no bounding box")
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def _roi_for_box(
    bbox: list[int],
    pixel_count: int,
    width: int,
    height: int,
    label: str,
    source: str,
    score: float | None,
    mask: dict | None,
) -> ROI:
    x0, y0, x1, y1 = bbox
    return ROI(
        bbox=bbox,
        label=label,
        source=source,
        position=describe_position((x0 + x1) / 2 / width, (y0 + y1) / 2 / height),
        area_ratio=area_ratio(pixel_count, width, height),
        mask=mask,
        score=None if score is None else float(score),
    )


def roi_from_mask(mask: np.ndarray, label: str, source: str = "annotation", score: float | None = None) -> ROI:
    """One ROI for one mask (the caller decides whether it is one component); the mask is stored as RLE."""
    array = np.asarray(mask).astype(bool)
    if array.ndim != 2:
        raise StageError(f"mask of {label!r} must be 2D, got shape {array.shape}")
    pixel_count = int(array.sum())
    if pixel_count == 0:
        raise StageError(f"mask of {label!r} is empty")
    height, width = array.shape
    return _roi_for_box(bbox_of_mask(array), pixel_count, width, height, label, source, score, mask_to_rle(array))


def _components(mask: np.ndarray, min_component_pixels: int) -> list[np.ndarray]:
    """8-connected components; small ones (JPEG-mask noise) dropped unless that would drop them all."""
    from scipy import ndimage

    labelled, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return []
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    keep = [i + 1 for i in range(count) if sizes[i] >= min_component_pixels]
    if not keep:
        keep = [int(np.argmax(sizes)) + 1]  # the largest (first in raster order on a tie)
    return [labelled == index for index in keep]


def _check_image_size(width: int, height: int) -> None:
    if int(width) <= 0 or int(height) <= 0:
        raise StageError(f"image is {width}x{height}: no ROI can be placed on an empty image")


def _rois_from_mask_region(region: Region, width: int, height: int, min_component_pixels: int) -> list[ROI]:
    mask = np.asarray(region.mask)
    if mask.ndim != 2:
        raise StageError(f"mask of {region.label!r} must be 2D, got shape {mask.shape}")
    if mask.shape != (height, width):
        raise StageError(f"mask of {region.label!r} is {mask.shape[1]}x{mask.shape[0]} but image is {width}x{height}")
    rois = [
        roi_from_mask(component, region.label, region.source, region.score)
        for component in _components(mask.astype(bool), min_component_pixels)
    ]
    # Largest first, then top-to-bottom, left-to-right: the same order on every run.
    rois.sort(key=lambda roi: (-rle_area(roi.mask), roi.bbox[1], roi.bbox[0], roi.bbox[3], roi.bbox[2]))
    return rois


def _roi_from_box_region(region: Region, width: int, height: int) -> ROI:
    try:
        box = [float(v) for v in region.bbox]
    except (TypeError, ValueError):
        raise StageError(f"box {region.bbox!r} of {region.label!r} is not four numbers") from None
    shown = "[" + ", ".join(f"{v:g}" for v in box) + "]"
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise StageError(f"box {shown} of {region.label!r} is not four finite numbers")
    # Round outward (the box still covers every pixel it touches), then clip to the image.
    x0 = max(math.floor(box[0]), 0)
    y0 = max(math.floor(box[1]), 0)
    x1 = min(math.ceil(box[2]), width)
    y1 = min(math.ceil(box[3]), height)
    if x1 <= x0 or y1 <= y0:
        raise StageError(f"box {shown} of {region.label!r} has no area inside the {width}x{height} image")
    return _roi_for_box(
        [x0, y0, x1, y1], (x1 - x0) * (y1 - y0), width, height, region.label, region.source, region.score, None
    )


def rois_from_region(
    region: Region, width: int, height: int, min_component_pixels: int = DEFAULT_MIN_COMPONENT_PIXELS
) -> list[ROI]:
    """The ROIs of one region on a width x height image.

    A mask region gives one ROI per 8-connected component (components under `min_component_pixels`
    dropped, but never all of them), ordered by area descending then top-left first; an empty mask gives
    no ROI. A box region (used only when the region has no mask) gives one ROI, rounded outward and
    clipped to the image, with `mask` None. Label, source and score are copied from the region.
    """
    _check_image_size(width, height)
    if region.mask is not None:
        return _rois_from_mask_region(region, int(width), int(height), min_component_pixels)
    if region.bbox is not None:
        return [_roi_from_box_region(region, int(width), int(height))]
    raise StageError(f"region {region.label!r} has neither a mask nor a box")


def rois_from_regions(
    regions: Iterable[Region], width: int, height: int, min_component_pixels: int = DEFAULT_MIN_COMPONENT_PIXELS
) -> list[ROI]:
    """All ROIs of the regions, region by region in the order given."""
    return [roi for region in regions for roi in rois_from_region(region, width, height, min_component_pixels)]
