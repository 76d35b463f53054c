"""Text burned into the pixels (site names, patient names and IDs, dates, times): found and blacked out.

Ultrasound, secondary-capture and many radiograph images carry the annotation the scanner drew: light,
high-contrast glyphs in rows, usually in the margins and corners. The detector finds them without OCR:

1. Strokes: a white top-hat (each channel minus its grey opening by a square wider than any stroke) keeps
   only thin bright structures; hysteresis (a strong seed, grown to a weak level) keeps a glyph whole with its
   antialiased rim. Each colour channel is searched on its own: white text on skin stands out in blue, yellow
   text on mucosa in green.
2. Glyphs: shapes as tall as text (4–40 px) that are neither solid blocks nor streaks; a wide shape counts as
   as many letters as its rows cross strokes (small text merges its letters).
3. Lines: glyphs of similar height that overlap vertically, linked left to right across gaps up to 1.3
   glyph heights; a line needs three glyphs' worth, a shared baseline or top, strong dense strokes and no
   strokes in the bands just above and below it (speckle, vessel walls and flow signal fail one of these).
4. A line grows over the fainter glyphs that continue its row (text running onto bright anatomy), and lines
   and fragments ("ID" beside "85-2092-9") on one row a word space or two apart are joined.
5. In a colour image a coloured line must be of one colour: colour-flow (Doppler) signal, which runs through
   a colour scale blob by blob, is not text.

Only boxes leave this module: the text itself is never read, so it cannot reach a record, a log or a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_GLYPH_HEIGHT = 4
MAX_GLYPH_HEIGHT = 40
STROKE_OPENING = 11  # px: wider than the thickest stroke of a 24 px bold font, narrower than anatomy
STRONG_CONTRAST = 70  # top-hat level that seeds a stroke (of 255)
WEAK_CONTRAST = 35  # top-hat level a seeded stroke extends to (antialiased edges)
MIN_GLYPHS_PER_LINE = 3
LINK_GAP = 1.3  # glyphs this many heights apart or closer are neighbours on a line (a colon between digits)
LINE_CONTRAST = 60  # mean top-hat of a line's strokes: drawn text stands far out of its background
STROKE_DENSITY = 0.12  # share of a line's box that is strong stroke
AROUND_DENSITY = 0.1  # share of the bands above and below a line that may be strong stroke
COLOUR_SPREAD = 0.05  # chromaticity (r, g, b over their sum) a glyph's brightest pixel may differ by
SAME_COLOUR_SHARE = 0.5  # share of a coloured line's glyphs that must be of its median colour
CHROMATIC = 60  # max − min channel from which a stroke colour counts as a colour, not white or grey
ROW_GAP = 2.5  # two lines on one row this many line heights apart or closer are one line (word spaces, tabs)
REDACTION_MARGIN = 2  # px added on every side of a line's box


@dataclass(frozen=True)
class TextLine:
    """One line of burned-in text: its box [x0, y0, x1, y1] (x1/y1 exclusive) and how many glyphs it holds."""

    box: tuple[int, int, int, int]
    glyphs: int
    # False for a fragment: one or two glyphs ("ID", "A") that are text only beside a line on their row
    complete: bool = True


def stroke_contrast(plane: np.ndarray) -> np.ndarray:
    """How far each pixel stands above its neighbourhood once structures thinner than STROKE_OPENING are opened
    away (a white top-hat): strokes of light text score their contrast, broad anatomy scores 0."""
    from scipy import ndimage

    return plane.astype(np.int16) - ndimage.grey_opening(plane, size=(STROKE_OPENING, STROKE_OPENING))


def channels(pixels: np.ndarray) -> list[np.ndarray]:
    """The planes text is looked for in, one at a time: the gray image, or each colour channel of a colour
    image (white text on skin stands out in blue, yellow text on mucosa in green, both on gray in all)."""
    if pixels.ndim == 2:
        return [pixels]
    planes = [np.ascontiguousarray(pixels[..., c]) for c in range(3)]
    if np.array_equal(planes[0], planes[1]) and np.array_equal(planes[1], planes[2]):
        return planes[:1]  # gray stored as RGB
    return planes


def find_text_lines(pixels: np.ndarray) -> list[TextLine]:
    """The lines of burned-in text in an 8-bit gray (HxW) or RGB (HxWx3) image, top to bottom."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    planes = channels(pixels)
    found = [_lines_in_plane(plane) for plane in planes]
    lines: list[TextLine] = []
    for plane, plane_lines in zip(planes, found, strict=True):
        for line in plane_lines:
            # A coloured line must be of one colour (colour flow is not).
            if len(planes) == 3 and not _one_colour(pixels, plane, line.box):
                continue
            lines.append(line)
    return _merge_overlapping(lines)


def _one_colour(pixels: np.ndarray, plane: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Text is drawn in one colour: the brightest pixel of every glyph has the same chromaticity. Colour-flow
    signal runs through a colour scale (red to yellow, dark to light blue), blob by blob, and fails."""
    from scipy import ndimage

    x0, y0, x1, y1 = box
    region = pixels[y0:y1, x0:x1].astype(np.int32)
    labels, n = ndimage.label(stroke_contrast(plane[y0:y1, x0:x1]) >= STRONG_CONTRAST, structure=np.ones((3, 3)))
    if n < 2:
        return True
    brightness = region.sum(axis=2)
    peaks = ndimage.maximum_position(brightness, labels, np.arange(1, n + 1))
    colours = np.array([region[y, x] for y, x in peaks], float)
    if np.median(colours.max(axis=1) - colours.min(axis=1)) < CHROMATIC:
        return True  # white or grey text: its colour is not in question
    shade = colours / np.maximum(1, colours.sum(axis=1, keepdims=True))  # chromaticity
    off = np.abs(shade - np.median(shade, axis=0)).max(axis=1)
    return bool(np.mean(off <= COLOUR_SPREAD) >= SAME_COLOUR_SHARE)


def _lines_in_plane(plane: np.ndarray) -> list[TextLine]:
    from scipy import ndimage

    tophat = stroke_contrast(plane)
    strong = tophat >= STRONG_CONTRAST
    if not strong.any():
        return []
    labels, n = ndimage.label(tophat >= WEAK_CONTRAST, structure=np.ones((3, 3), bool))
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(labels[strong])] = True
    seeded[0] = False
    shapes = _glyphs(labels, tophat)  # every glyph-sized shape, faint ones included
    glyphs = [g for g in shapes if seeded[g.label]]
    if not glyphs:
        return []
    is_glyph = np.zeros(n + 1, bool)
    is_glyph[[g.label for g in glyphs]] = True
    lines = _lines(glyphs, tophat, labels, is_glyph, strong)
    return [_extend_along_row(line, shapes) for line in lines]


def _extend_along_row(line: TextLine, shapes: list[_Glyph]) -> TextLine:
    """A line grown over the faint glyphs that continue it on its row: where text runs over bright anatomy
    or next to the edge of its box its contrast drops, but it is still the same line."""
    x0, y0, x1, y1 = line.box
    height = y1 - y0
    row = [
        g
        for g in shapes
        if 0.5 * height <= g.height <= 1.3 * height and min(g.y1, y1) - max(g.y0, y0) >= 0.6 * g.height
    ]
    grown = True
    while grown:
        grown = False
        for g in row:
            if g.x1 <= x0 and x0 - g.x1 <= ROW_GAP * height or g.x0 >= x1 and g.x0 - x1 <= ROW_GAP * height:
                x0, x1 = min(x0, g.x0), max(x1, g.x1)
                y0, y1 = min(y0, g.y0), max(y1, g.y1)
                grown = True
    return TextLine((x0, y0, x1, y1), line.glyphs, line.complete)


@dataclass
class _Glyph:
    x0: int
    y0: int
    x1: int
    y1: int
    area: int
    contrast: float  # mean top-hat over the stroke pixels
    label: int
    glyphs: int  # letters merged into this one shape (small text touches), from its vertical strokes

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def _glyphs(labels: np.ndarray, tophat: np.ndarray) -> list[_Glyph]:
    from scipy import ndimage

    areas = np.bincount(labels.ravel())
    sums = np.bincount(labels.ravel(), weights=tophat.ravel().astype(np.float64))
    glyphs = []
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        if where is None:
            continue
        y0, y1, x0, x1 = where[0].start, where[0].stop, where[1].start, where[1].stop
        height, width, area = y1 - y0, x1 - x0, int(areas[index])
        if not MIN_GLYPH_HEIGHT <= height <= MAX_GLYPH_HEIGHT:
            continue
        fill = area / (height * width)
        if fill > 0.85 and width > 0.5 * height:  # a solid block or dot, not a stroke
            continue
        strokes = _stroke_count(labels[where] == index) if width > 1.2 * height else 1
        if strokes < 0.4 * width / (0.7 * height):  # a streak (a tissue interface, an edge), not merged letters
            continue
        glyphs.append(_Glyph(x0, y0, x1, y1, area, float(sums[index] / area), index, strokes))
    return glyphs


def _lines(
    glyphs: list[_Glyph], tophat: np.ndarray, labels: np.ndarray, is_glyph: np.ndarray, strong: np.ndarray
) -> list[TextLine]:
    if len(glyphs) < 1:
        return []
    glyphs.sort(key=lambda g: g.x0)
    parent = list(range(len(glyphs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    x0 = np.array([g.x0 for g in glyphs])
    for i, a in enumerate(glyphs):
        # candidates start before a's right end plus the largest allowed gap
        j_end = np.searchsorted(x0, a.x1 + MAX_GLYPH_HEIGHT, side="right")
        for j in range(i + 1, j_end):
            b = glyphs[j]
            small, large = sorted((a.height, b.height))
            if large > 1.8 * small:
                continue
            overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap < 0.5 * small:
                continue
            gap = b.x0 - a.x1
            if gap > LINK_GAP * large:
                continue
            parent[root(j)] = root(i)
    groups: dict[int, list[_Glyph]] = {}
    for i, glyph in enumerate(glyphs):
        groups.setdefault(root(i), []).append(glyph)
    rows = [members for members in groups.values() if sum(g.glyphs for g in members) >= 2 and _aligned(members)]
    # Strokes near a line that are not themselves on a row of glyphs: speckle, vessel walls, flow signal.
    # (The line above or below in a block of text is on a row of its own and does not count.)
    on_rows = np.zeros(labels.max() + 1, bool)
    on_rows[[g.label for members in rows for g in members]] = True
    stray = is_glyph[labels] & ~on_rows[labels] & strong
    lines = []
    for members in rows:
        line = _as_line(members, tophat, stray)
        if line is not None:
            lines.append(line)
    return lines


def _aligned(members: list[_Glyph]) -> bool:
    """Most of the tallest glyphs share a baseline or a top (within a fifth of a glyph height)."""
    heights = np.array([g.height for g in members])
    tall = [g for g in members if g.height >= 0.7 * heights.max()]
    tolerance = max(1.5, 0.2 * float(np.median(heights)))
    bottoms, tops = np.array([g.y1 for g in tall]), np.array([g.y0 for g in tall])
    aligned = max(
        np.mean(np.abs(bottoms - np.median(bottoms)) <= tolerance), np.mean(np.abs(tops - np.median(tops)) <= tolerance)
    )
    return aligned >= 0.5


def _stroke_count(mask: np.ndarray) -> int:
    """Letters in a shape wider than a letter: small text merges its letters into one stroke blob, some row of
    which still crosses a stroke or two per letter; a streak or a blob crosses one or two."""
    rows = mask.astype(np.int8)
    runs = int(((np.diff(rows, axis=1) == 1).sum(axis=1) + rows[:, 0]).max())
    return max(1, round(runs / 1.5))


def _as_line(members: list[_Glyph], tophat: np.ndarray, stray: np.ndarray) -> TextLine | None:
    count = sum(g.glyphs for g in members)
    complete = count >= MIN_GLYPHS_PER_LINE and (len(members) > 1 or count >= 4)
    if count < 2:
        return None
    x0, y0 = min(g.x0 for g in members), min(g.y0 for g in members)
    x1, y1 = max(g.x1 for g in members), max(g.y1 for g in members)
    features = _line_features(members, tophat, stray, (x0, y0, x1, y1))
    if features["contrast"] < LINE_CONTRAST or features["inside_strong"] < STROKE_DENSITY:
        return None
    if features["around_strong"] > AROUND_DENSITY:
        return None
    return TextLine(box=(x0, y0, x1, y1), glyphs=count, complete=complete)


def _line_features(
    members: list[_Glyph], tophat: np.ndarray, stray: np.ndarray, box: tuple[int, int, int, int]
) -> dict:
    """How text-like a row of glyphs is: text strokes are strong (high mean top-hat), dense in their box, and
    the bands just above and below a line are free of strokes; speckle and vessel walls fail one of these."""
    x0, y0, x1, y1 = box
    band = max(2, (y1 - y0) // 2)
    inside = tophat[y0:y1, x0:x1]
    around = np.concatenate([stray[max(0, y0 - band) : y0, x0:x1].ravel(), stray[y1 : y1 + band, x0:x1].ravel()])
    areas = np.array([g.area for g in members], float)
    return {
        "contrast": float(np.average([g.contrast for g in members], weights=areas)),
        "inside_strong": float((inside >= STRONG_CONTRAST).mean()),
        "around_strong": float(around.mean()) if around.size else 0.0,
    }


def _merge_overlapping(lines: list[TextLine]) -> list[TextLine]:
    """Lines (from any channel) that sit on one row a word space or two apart ("SMITH," and "JOHN", "ID" and
    "85-2092-9"), as one; fragments that joined no complete line are dropped."""
    merged = sorted(lines, key=lambda t: (t.box[0], t.box[1]))
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if _same_row(a.box, b.box):
                    glyphs = a.glyphs + b.glyphs
                    merged[i] = TextLine(
                        _union(a.box, b.box), glyphs, a.complete or b.complete or glyphs >= MIN_GLYPHS_PER_LINE
                    )
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return sorted((line for line in merged if line.complete), key=lambda t: (t.box[1], t.box[0]))


def _same_row(a, b) -> bool:
    ha, hb = a[3] - a[1], b[3] - b[1]
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(a[2], b[2])
    return overlap >= 0.6 * min(ha, hb) and max(ha, hb) <= 1.6 * min(ha, hb) and gap <= ROW_GAP * min(ha, hb)


def _union(a, b) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def redaction_boxes(lines: list[TextLine], width: int, height: int) -> list[list[int]]:
    """Each line's box grown by a margin (a fifth of its height, at least REDACTION_MARGIN px: the antialiased
    rim and a faint first or last letter) and clipped to the image: what is blacked out."""
    boxes = []
    for x0, y0, x1, y1 in (line.box for line in lines):
        margin = max(REDACTION_MARGIN, round(0.2 * (y1 - y0)))
        boxes.append([max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)])
    return boxes


def redact(pixels: np.ndarray, boxes: list[list[int]]) -> np.ndarray:
    """A copy of the image with every box filled black."""
    out = np.array(pixels, copy=True)
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = 0
    return out


# DICOM modalities whose images are screen captures or carry the scanner's annotation in the pixels:
# ultrasound, secondary capture, external-camera photography, other.
TEXT_BEARING_MODALITIES = frozenset({"US", "SC", "XC", "OT"})


def dicom_expects_text(path) -> bool:
    """A DICOM file that says its pixels carry text (BurnedInAnnotation YES) or whose modality usually does.
    Any other file, or one whose header cannot be read, is False (the read stage has already judged it)."""
    from pathlib import Path

    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if head[128:132] != b"DICM" and path.suffix.lower() not in (".dcm", ".dicom"):
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, force=True, specific_tags=["Modality", "BurnedInAnnotation"]
        )
    except Exception:  # noqa: BLE001 - a header pydicom cannot parse: the file was read some other way
        return False
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"
    return burned or str(ds.get("Modality", "") or "").strip().upper() in TEXT_BEARING_MODALITIES
