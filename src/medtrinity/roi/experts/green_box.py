"""Recover ROI boxes drawn into an image as green rectangle outlines, and remove the outlines.

MedTrinity-25M as released shows each ROI as a green rectangle burned into the pixels (a few pixels wide,
pure or near-pure green, softened by JPEG); its users asked for the coordinates instead. This module finds
the outlines, returns each as a box with a score, and makes the clean image.

How a box is found:
1. outline colour: greenness = G - max(R, B) >= STRICT_GREENNESS and G >= MIN_GREEN (JPEG's chroma
   subsampling turns a 1 px pure-green line into a ~2 px band of (75, 200, 75)-like pixels: still green);
2. straight runs: a morphological opening with a 1 x MIN_SIDE (MIN_SIDE x 1) line keeps horizontal (vertical)
   runs at least MIN_SIDE long; green areas that hold a BLOB x BLOB square are image content, not lines;
3. segments: connected runs at most MAX_LINE px thick;
4. rectangles: two parallel segments whose ends match make a candidate; each of its four sides must be
   covered (closed or nearly closed outline: mean coverage >= MEAN_COVERAGE, every side >= SIDE_COVERAGE);
   a candidate whose outline is mostly the outline of better boxes (two boxes stacked) is dropped;
5. score = mean side coverage x separation², where separation is the share of non-green pixels in rings just
   inside and outside the outline: a box drawn over green content (a green-stained slide) scores low and is
   reported so, never cleaned, never invented.

The box is the outline's outer edge, [x0, y0, x1, y1) with x1/y1 exclusive: what PIL's
`ImageDraw.rectangle((x0, y0, x1 - 1, y1 - 1), width=w)` covers, the way such outlines are drawn.

Cleaning: the outline band of each confident box plus CLEAN_MARGIN px on both sides (JPEG bleed) is replaced
by linear interpolation across the band, from the nearest pixels outside it, along the shorter direction
(across the line, never along it). `fill="biharmonic"` uses scikit-image's biharmonic inpainting on a crop
around each box instead (smoother; about half the speed on images of ~55 kpx, bench/green_box.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from medtrinity import records
from medtrinity.roi.experts.base import ExpertOptions, check_pixels, register_expert

VERSION = "1"
RECOVERED_SOURCE = f"recovered:green-box@{VERSION}"  # the `source` of every region recovered here
LABEL = "marked region"  # what the release marks: the region its caption describes, no diagnosis claimed

STRICT_GREENNESS = 50  # G - max(R, B) of an outline pixel, after JPEG at quality >= 75
MIN_GREEN = 80
LINE_GREENNESS = 30  # a 1 px line after JPEG fades to this in places; runs and coverage use it
LINE_MIN_GREEN = 60
# Luma of a pure or near-pure green line pixel (0.587 G + ...: 136-150) with JPEG's error: JPEG keeps luma at full
# resolution, so this tells the line's own pixels from the chroma bleed beside it (whose luma is the image's).
LINE_LUMA = (115, 175)
EDGE_SHARE = 0.7  # an offset is part of a side's line where this share of its peak is line-like
MIN_SIDE = 10  # shortest box side, px
MAX_LINE = 8  # thickest outline band, px (4 px lines + JPEG bleed)
BLOB = MAX_LINE + 1  # a green square this big is content, not an outline
MATCH_OVERLAP = 0.6  # opposite sides overlap along at least this share of the longer one
SIDE_COVERAGE = 0.6
MEAN_COVERAGE = 0.85
CONFIDENT_SCORE = 0.5  # boxes scoring below are reported with their score but not removed from the image
CLEAN_MARGIN = 2  # px beyond the outline band that are refilled too (JPEG chroma bleed)
RING = (3, 7)  # separation rings: from 3 to 7 px outside and inside the outline band


@dataclass(frozen=True)
class FoundBox:
    bbox: tuple[int, int, int, int]  # outer edge, x1/y1 exclusive
    width: int  # estimated line width, px (JPEG bleed included)
    coverage: float  # mean share of each side that is drawn
    separation: float  # share of non-green pixels around the outline
    score: float

    @property
    def confident(self) -> bool:
        return self.score >= CONFIDENT_SCORE


@dataclass
class Recovery:
    boxes: list[FoundBox]
    pixels: np.ndarray  # the clean image (the input itself when nothing was removed)
    removed_pixels: int = 0
    fill: str = "linear"
    left_in_place: list[FoundBox] = field(default_factory=list)  # low-score boxes, not removed

    def note(self) -> str:
        """What was done to the pixels, for `origin.intensity`."""
        removed = [b for b in self.boxes if b.confident]
        if not removed and not self.left_in_place:
            return "no green box outline found"
        parts = []
        if removed:
            widths = sorted({b.width for b in removed})
            parts.append(
                f"{len(removed)} green box outline{'s' if len(removed) > 1 else ''} removed "
                f"({self.fill} fill of {self.removed_pixels} px, line width {'/'.join(map(str, widths))} px)"
            )
        if self.left_in_place:
            n = len(self.left_in_place)
            parts.append(f"{n} low-confidence green outline{'s' if n > 1 else ''} left in place")
        return "; ".join(parts)


@dataclass(frozen=True)
class _Segment:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive

    def thickness(self, horizontal: bool) -> int:
        return (self.y1 - self.y0) if horizontal else (self.x1 - self.x0)


def greenness(pixels: np.ndarray) -> np.ndarray:
    """G - max(R, B) per pixel (int16); zero for a gray image."""
    if pixels.ndim != 3:
        return np.zeros(pixels.shape[:2], np.int16)
    rgb = pixels.astype(np.int16)
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


def line_masks(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line, core): pixels green enough to belong to an outline, and those of them with a green line's own
    luma (the line itself rather than the chroma bleed beside it)."""
    if pixels.ndim != 3:
        empty = np.zeros(pixels.shape[:2], bool)
        return empty, empty
    line = (greenness(pixels) >= LINE_GREENNESS) & (pixels[..., 1] >= LINE_MIN_GREEN)
    luma = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return line, line & (luma >= LINE_LUMA[0]) & (luma <= LINE_LUMA[1])


def outline_green(pixels: np.ndarray) -> np.ndarray:
    """Pixels of the outline colour: pure or near-pure green, JPEG-softened."""
    if pixels.ndim != 3:
        return np.zeros(pixels.shape[:2], bool)
    return (greenness(pixels) >= STRICT_GREENNESS) & (pixels[..., 1] >= MIN_GREEN)


def _segments(strict: np.ndarray, content: np.ndarray, horizontal: bool) -> list[_Segment]:
    from scipy import ndimage

    line = np.ones((1, MIN_SIDE) if horizontal else (MIN_SIDE, 1), bool)
    bridge = np.ones((1, 3) if horizontal else (3, 1), bool)  # a JPEG-dimmed pixel must not cut a line
    runs = ndimage.binary_opening(strict | ndimage.binary_closing(strict, bridge), line) & ~content
    labels, _ = ndimage.label(runs, structure=np.ones((3, 3), bool))
    pieces = []
    for ys, xs in ndimage.find_objects(labels):
        seg = _Segment(xs.start, ys.start, xs.stop, ys.stop)
        length = (seg.x1 - seg.x0) if horizontal else (seg.y1 - seg.y0)
        if seg.thickness(horizontal) <= MAX_LINE and length >= MIN_SIDE:
            pieces.append(seg)
    return _joined(pieces, strict, horizontal)


def _joined(pieces: list[_Segment], green: np.ndarray, horizontal: bool) -> list[_Segment]:
    """Collinear pieces of one line joined where the gap between them is green too (green image content the
    line crosses): a side cut by a green-stained patch is still one side, scored low for its surroundings."""
    if not horizontal:
        flipped = _joined([_Segment(s.y0, s.x0, s.y1, s.x1) for s in pieces], green.T, True)
        return [_Segment(s.y0, s.x0, s.y1, s.x1) for s in flipped]
    joined: list[_Segment] = []
    for seg in sorted(pieces, key=lambda s: (s.y0, s.x0)):
        for i, prev in enumerate(joined):
            if abs(prev.y0 - seg.y0) <= 2 and abs(prev.y1 - seg.y1) <= 2 and seg.x0 >= prev.x1:
                gap = green[min(prev.y0, seg.y0) : max(prev.y1, seg.y1), prev.x1 : seg.x0]
                if gap.shape[1] == 0 or gap.any(axis=0).mean() >= 0.8:
                    joined[i] = _Segment(prev.x0, min(prev.y0, seg.y0), seg.x1, max(prev.y1, seg.y1))
                    break
        else:
            joined.append(seg)
    return joined


def _matching(a: _Segment, b: _Segment, horizontal: bool) -> bool:
    """Two parallel segments that overlap along most of their length: opposite sides of one box (a side
    JPEG broke into pieces still overlaps its opposite side)."""
    if horizontal:
        ends_a, ends_b, gap, span = (a.x0, a.x1), (b.x0, b.x1), b.y0 - a.y1, b.y1 - a.y0
    else:
        ends_a, ends_b, gap, span = (a.y0, a.y1), (b.y0, b.y1), b.x0 - a.x1, b.x1 - a.x0
    overlap = min(ends_a[1], ends_b[1]) - max(ends_a[0], ends_b[0])
    longer = max(ends_a[1] - ends_a[0], ends_b[1] - ends_b[0])
    return gap > 0 and span >= MIN_SIDE and overlap >= MATCH_OVERLAP * longer


def _candidates(h: list[_Segment], v: list[_Segment]) -> list[tuple[tuple[int, int, int, int], int]]:
    """(box, band width) for every pair of matching parallel segments."""
    found = []
    h = sorted(h, key=lambda s: (s.y0, s.x0))
    v = sorted(v, key=lambda s: (s.x0, s.y0))
    for i, a in enumerate(h):
        for b in h[i + 1 :]:
            if _matching(a, b, True):
                width = max(a.thickness(True), b.thickness(True))
                found.append(((min(a.x0, b.x0), a.y0, max(a.x1, b.x1), b.y1), width))
    for i, a in enumerate(v):
        for b in v[i + 1 :]:
            if _matching(a, b, False):
                width = max(a.thickness(False), b.thickness(False))
                found.append(((a.x0, min(a.y0, b.y0), b.x1, max(a.y1, b.y1)), width))
    return found


def _side_coverage(strict: np.ndarray, box: tuple[int, int, int, int], w: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [
        float(strict[y0 : y0 + w, x0:x1].any(axis=0).mean()),
        float(strict[y1 - w : y1, x0:x1].any(axis=0).mean()),
        float(strict[y0:y1, x0 : x0 + w].any(axis=1).mean()),
        float(strict[y0:y1, x1 - w : x1].any(axis=1).mean()),
    ]


def _frame(shape: tuple[int, int], box: tuple[int, int, int, int], outer: int, inner: int) -> np.ndarray:
    """The pixels between the box grown by `outer` and the box shrunk by `inner` (both clipped to the image)."""
    height, width = shape
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, bool)
    mask[max(0, y0 - outer) : min(height, y1 + outer), max(0, x0 - outer) : min(width, x1 + outer)] = True
    if x1 - x0 > 2 * inner and y1 - y0 > 2 * inner:
        mask[max(0, y0 + inner) : y1 - inner, max(0, x0 + inner) : x1 - inner] = False
    return mask


def _separation(loose: np.ndarray, box: tuple[int, int, int, int], w: int) -> float:
    near, far = RING
    outside = _frame(loose.shape, box, far, 0) & ~_frame(loose.shape, box, near, 0)
    inside = _frame(loose.shape, box, 0, w + near) & ~_frame(loose.shape, box, 0, w + far)
    ring = outside | inside
    if not ring.any():
        return 1.0
    return 1.0 - float(loose[ring].mean())


def _band(shape: tuple[int, int], box: tuple[int, int, int, int], w: int) -> np.ndarray:
    return _frame(shape, box, 0, w)


def _side_line(line: np.ndarray, core: np.ndarray, box: tuple[int, int, int, int], side: str) -> tuple[int, int]:
    """(outer edge, line width) of one side, from the profile across it: the share of line-like pixels along
    the side (corners left out) at each offset; the line is the run of offsets around the peak."""
    x0, y0, x1, y1 = box
    horizontal = side in ("top", "bottom")
    lo, hi = (x0, x1) if horizontal else (y0, y1)
    inset = min(MAX_LINE + 2, (hi - lo) // 4)
    edge = {"top": y0, "bottom": y1 - 1, "left": x0, "right": x1 - 1}[side]  # outermost line pixel
    limit = line.shape[0] if horizontal else line.shape[1]
    start, stop = max(0, edge - MAX_LINE), min(limit, edge + MAX_LINE + 1)
    for mask in (core, line):  # the line's own luma where it tells; the colour alone otherwise
        band = mask[start:stop, lo + inset : hi - inset] if horizontal else mask[lo + inset : hi - inset, start:stop].T
        profile = band.mean(axis=1) if band.size else np.zeros(stop - start)
        if profile.max(initial=0.0) >= 0.3:
            break
    peak = int(np.argmax(profile))
    threshold = EDGE_SHARE * profile[peak]
    first = last = peak
    while first > 0 and profile[first - 1] >= threshold:
        first -= 1
    while last < len(profile) - 1 and profile[last + 1] >= threshold:
        last += 1
    outer = start + (first if side in ("top", "left") else last + 1)
    return outer, last - first + 1


def _refined(
    line: np.ndarray, core: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int, int], int]:
    """The box with each side at its line's outer edge, and the line width (the widest side's)."""
    sides = {side: _side_line(line, core, box, side) for side in ("top", "bottom", "left", "right")}
    refined = (sides["left"][0], sides["top"][0], sides["right"][0], sides["bottom"][0])
    return refined, max(width for _, width in sides.values())


def find_green_boxes(pixels: np.ndarray) -> list[FoundBox]:
    """Every green rectangle outline in the image, best first; [] for a gray image or one without any."""
    from scipy import ndimage

    line, core = line_masks(pixels)
    if line.sum() < 2 * MIN_SIDE:
        return []
    content = ndimage.binary_dilation(ndimage.binary_opening(line, np.ones((BLOB, BLOB), bool)), iterations=1)
    loose = greenness(pixels) >= LINE_GREENNESS
    candidates = _candidates(_segments(line, content, True), _segments(line, content, False))
    scored = []
    for rough, _ in candidates:
        box, w = _refined(line, core, rough)
        if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
            continue
        sides = _side_coverage(line, box, w)
        coverage = sum(sides) / 4
        if min(sides) < SIDE_COVERAGE or coverage < MEAN_COVERAGE:
            continue
        scored.append((box, w, coverage))
    # Better-drawn boxes first (then smaller): a candidate whose outline pixels are mostly those of boxes
    # already taken is two stacked boxes read as one.
    scored.sort(key=lambda c: (-round(c[2], 3), (c[0][2] - c[0][0]) * (c[0][3] - c[0][1])))
    taken = np.zeros(line.shape, bool)
    boxes: list[FoundBox] = []
    for box, w, coverage in scored:
        outline = line & _band(line.shape, box, w)
        drawn = int(outline.sum())
        if drawn == 0 or (outline & taken).sum() > 0.5 * drawn:
            continue
        if any(_iou(box, b.bbox) > 0.8 for b in boxes):
            continue
        taken |= outline
        separation = _separation(loose, box, w)
        score = round(coverage * separation**2, 3)  # green all around: not separable from content
        boxes.append(FoundBox(box, int(w), round(coverage, 3), round(separation, 3), score))
    return sorted(boxes, key=lambda b: (-b.score, b.bbox))


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def removal_mask(shape: tuple[int, int], boxes: list[FoundBox], margin: int = CLEAN_MARGIN) -> np.ndarray:
    """The outline bands of the boxes, each widened by `margin` px on both sides."""
    mask = np.zeros(shape, bool)
    for box in boxes:
        mask |= _frame(shape, box.bbox, margin, box.width + margin)
    return mask


def fill_across(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy with the masked pixels interpolated linearly between the nearest unmasked pixels, along the
    row or the column, whichever gap is shorter (across a thin band, never along it)."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return pixels.copy()
    values = pixels.astype(np.float32)
    if values.ndim == 2:
        values = values[..., None]
    rows = np.broadcast_to(np.arange(height)[:, None], mask.shape)
    cols = np.broadcast_to(np.arange(width)[None, :], mask.shape)
    above = np.maximum.accumulate(np.where(mask, -1, rows), axis=0)[ys, xs]
    below = np.minimum.accumulate(np.where(mask, height, rows)[::-1], axis=0)[::-1][ys, xs]
    left = np.maximum.accumulate(np.where(mask, -1, cols), axis=1)[ys, xs]
    right = np.minimum.accumulate(np.where(mask, width, cols)[:, ::-1], axis=1)[:, ::-1][ys, xs]

    def across(lo, hi, pos, size, take):
        lo_ok, hi_ok = lo >= 0, hi < size
        a, b = take(np.clip(lo, 0, size - 1)), take(np.clip(hi, 0, size - 1))
        t = np.where(lo_ok & hi_ok, (pos - lo) / np.maximum(hi - lo, 1), np.where(lo_ok, 0.0, 1.0))[:, None]
        gap = np.where(lo_ok & hi_ok, hi - lo, np.where(lo_ok | hi_ok, 2 * (hi - lo), 4 * (height + width)))
        return a + t * (b - a), gap

    vertical, v_gap = across(above, below, ys, height, lambda r: values[r, xs])
    horizontal, h_gap = across(left, right, xs, width, lambda c: values[ys, c])
    filled = values.copy()
    filled[ys, xs] = np.where((v_gap <= h_gap)[:, None], vertical, horizontal)
    out = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
    return out[..., 0] if pixels.ndim == 2 else out


def fill_biharmonic(pixels: np.ndarray, mask: np.ndarray, boxes: list[FoundBox]) -> np.ndarray:
    """scikit-image's biharmonic inpainting, on a crop around each box (cost grows with the crop)."""
    from skimage.restoration import inpaint_biharmonic

    out = pixels.copy()
    height, width = mask.shape
    pad = CLEAN_MARGIN + 4
    for box in boxes:
        x0, y0, x1, y1 = box.bbox
        ys = slice(max(0, y0 - pad), min(height, y1 + pad))
        xs = slice(max(0, x0 - pad), min(width, x1 + pad))
        crop = out[ys, xs].astype(np.float64) / 255.0
        done = inpaint_biharmonic(crop, mask[ys, xs], channel_axis=-1 if crop.ndim == 3 else None)
        out[ys, xs] = np.clip(np.rint(done * 255.0), 0, 255).astype(np.uint8)
    return out


Fill = Literal["linear", "biharmonic"]


def recover_green_boxes(pixels: np.ndarray, fill: Fill = "linear") -> Recovery:
    """The boxes, and the image with the confident boxes' outlines replaced from their surroundings."""
    boxes = find_green_boxes(pixels)
    confident = [b for b in boxes if b.confident]
    if not confident:
        return Recovery(boxes, pixels, 0, fill, [b for b in boxes if not b.confident])
    mask = removal_mask(pixels.shape[:2], confident)
    clean = fill_biharmonic(pixels, mask, confident) if fill == "biharmonic" else fill_across(pixels, mask)
    return Recovery(boxes, clean, int(mask.sum()), fill, [b for b in boxes if not b.confident])


def regions_of(boxes: list[FoundBox], label: str = LABEL) -> list[records.Region]:
    return [
        records.Region(
            label=label, source=RECOVERED_SOURCE, bbox=tuple(float(v) for v in b.bbox), score=b.score, kind="region"
        )
        for b in boxes
    ]


class GreenBoxOptions(ExpertOptions):
    label: str = LABEL
    min_score: float = Field(0.0, ge=0.0, le=1.0)  # leave out boxes scoring below this


@register_expert
class GreenBoxExpert:
    """The recovery as an expert, for any collection with green boxes burned in. An expert sees the pixels but
    cannot change them, so here the outlines stay in the stored image; the `medtrinity-25m` recipe recovers
    the boxes when it reads the image and stores the clean one."""

    name = "green-box"
    version = VERSION
    Options = GreenBoxOptions

    def __init__(self, label: str = LABEL, min_score: float = 0.0) -> None:
        self.label, self.min_score = label, min_score

    def locate(self, pixels: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[records.Region]:
        check_pixels(pixels, self.name)
        return regions_of([b for b in find_green_boxes(pixels) if b.score >= self.min_score], self.label)
