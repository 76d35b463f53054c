"""Annotation kinds that published datasets use beyond mask files: checked pixel boxes, normalised
(YOLO) boxes, the SIIM competition's relative run-length encoding, COCO polygons / RLE, and a record
problem found while listing (a malformed row) that quarantines its item when resolved.

Every kind resolves against the image shape the read stage found, so a box outside the image or a mask
of the wrong size is caught per record (StageError naming the file and the problem), never per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity.errors import StageError
from medtrinity.records import Region

# Publishers' float boxes may overshoot the border by rounding; more than this is an error.
BOX_TOLERANCE_PX = 1.0


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def checked_box(
    x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int], where: str
) -> tuple[float, float, float, float]:
    """The box clipped to the image, or StageError when it is empty or lies outside the image."""
    height, width = shape
    box = (x0, y0, x1, y1)
    if not all(math.isfinite(v) for v in box):
        raise StageError(f"{where}: box {box} is not four finite numbers")
    if x1 <= x0 or y1 <= y0:
        raise StageError(f"{where}: box {_fmt(box)} (x0, y0, x1, y1) has no area")
    tol = BOX_TOLERANCE_PX
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        raise StageError(f"{where}: box {_fmt(box)} (x0, y0, x1, y1) lies outside the {width}x{height} image")
    return max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))


@dataclass
class PixelBox:
    """A box in pixels (x0, y0, x1, y1; x1/y1 exclusive), checked against the image; `where` names the
    annotation file and row for the quarantine reason."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    where: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        box = checked_box(self.x0, self.y0, self.x1, self.y1, shape, self.where)
        return [Region(label=self.label, bbox=box)]


@dataclass
class NormalisedBox:
    """A YOLO box: centre x, centre y, width, height as fractions of the image size."""

    cx: float
    cy: float
    w: float
    h: float
    label: str
    where: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        height, width = shape
        values = (self.cx, self.cy, self.w, self.h)
        if any(not math.isfinite(v) or v < 0 or v > 1 for v in values):
            raise StageError(f"{self.where}: normalised box {_fmt(values)} is outside 0..1")
        # YOLO files carry ~6 decimals: round to 1/1000 px so 39.99998 stays pixel 40, not 39.
        x0, x1 = (round((self.cx + s * self.w / 2) * width, 3) for s in (-1, 1))
        y0, y1 = (round((self.cy + s * self.h / 2) * height, 3) for s in (-1, 1))
        return [Region(label=self.label, bbox=checked_box(x0, y0, x1, y1, shape, self.where))]


# ---------------------------------------------------------------- SIIM-ACR relative RLE
def decode_relative_rle(text: str, height: int, width: int) -> np.ndarray:
    """Bool HxW mask of the SIIM-ACR competition's RLE (its mask_functions.rle2mask): pairs of
    (offset, length) where each offset counts from the END of the previous run (the first from pixel 0),
    over the pixels in column-major order (down each column, then the next column).
    ValueError (with the reason) for anything malformed."""
    tokens = text.split()
    if not tokens:
        raise ValueError("empty run-length encoding")
    try:
        numbers = [int(t) for t in tokens]
    except ValueError:  # says which value by position, not what it is: the cell may hold an identifier
        place = next(i for i, t in enumerate(tokens, start=1) if not t.lstrip("-").isdigit())
        raise ValueError(f"run-length encoding value {place} is not a whole number") from None
    if len(numbers) % 2:
        raise ValueError(f"run-length encoding has an odd number of values ({len(numbers)})")
    total = height * width
    flat = np.zeros(total, dtype=bool)
    position = 0
    for offset, length in zip(numbers[0::2], numbers[1::2]):
        if offset < 0 or length <= 0:
            raise ValueError(f"run-length encoding has a negative offset or non-positive length ({offset} {length})")
        position += offset
        if position + length > total:
            raise ValueError(f"run-length encoding runs past the end of the {width}x{height} image")
        flat[position : position + length] = True
        position += length
    return flat.reshape(width, height).T  # column-major: flat index = column * height + row


@dataclass
class RelativeRle:
    """One region of SIIM-ACR's train-rle.csv (relative, column-major RLE; see decode_relative_rle)."""

    counts: str
    label: str
    where: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        try:
            mask = decode_relative_rle(self.counts, *shape)
        except ValueError as e:
            raise StageError(f"{self.where}: {e}") from None
        return [Region(label=self.label, mask=mask)] if mask.any() else []


# ---------------------------------------------------------------- COCO segmentation
def coco_segmentation_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Bool HxW mask of a COCO `segmentation`: a list of polygons [x1, y1, x2, y2, …] or an RLE dict
    (compressed or uncompressed counts), rasterised by pycocotools. ValueError when malformed."""
    import warnings

    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if not isinstance(size, list | tuple) or len(size) != 2 or "counts" not in segmentation:
            raise ValueError("RLE segmentation needs 'size' [h, w] and 'counts'")
        if [int(v) for v in size] != [height, width]:
            raise ValueError(f"RLE segmentation is {size[1]}x{size[0]} but the image is {width}x{height}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    elif isinstance(segmentation, list) and segmentation:
        polygons = segmentation if isinstance(segmentation[0], list) else [segmentation]
        for polygon in polygons:
            if len(polygon) < 6 or len(polygon) % 2 or not all(isinstance(v, int | float) for v in polygon):
                raise ValueError("a polygon needs an even number (>= 6) of x, y coordinates")
        rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width))
    else:
        raise ValueError("segmentation is neither polygons nor RLE")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword")
        try:
            return mask_utils.decode(rle).astype(bool)
        except Exception:  # pycocotools raises plain exceptions on corrupt counts
            raise ValueError("RLE segmentation cannot be decoded") from None


@dataclass
class CocoSegmentation:
    """A COCO instance's `segmentation` (polygons or RLE)."""

    segmentation: Any
    label: str
    where: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        try:
            mask = coco_segmentation_mask(self.segmentation, *shape)
        except ValueError as e:
            raise StageError(f"{self.where}: {e}") from None
        if not mask.any():
            raise StageError(f"{self.where}: the segmentation covers no pixel of the {shape[1]}x{shape[0]} image")
        return [Region(label=self.label, mask=mask)]


def parse_float(text: str | None, column: str = "the value") -> float | None:
    """A float from a CSV cell; None for an empty cell; ValueError "<column> is not a number" otherwise.

    The message names the column, never the cell: a shifted row can put an identifier in a number column,
    and the message becomes a quarantine reason."""
    if text is None or not str(text).strip():
        return None
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{column} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} is not a finite number")
    return value
