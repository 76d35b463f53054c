"""Fallback expert: the imaged body or object — not air, collimator or screen margins, text or overlay graphics.

What "the imaged region" is depends on how the image was made, so the modality picks one of three strategies:

- body (radiographs, CT, MRI, PET, nuclear medicine, anything else): uniform bands at the frame's edges
  (collimator shutters, letterboxing) are set aside; the air is a plateau at one end of the grey scale (dark,
  or bright on an inverted film); the body is everything clearly past the air, dim muscle and the skin's soft
  tissue included, holes filled;
- sector (ultrasound): the scan is where the echo is (speckle, or texture at another grey than the flat screen
  margin, whatever that grey); coloured panels and graphics, flat grey bars and bright marks standing on the
  margin (burned-in text) are not; the convex hull of the large pieces is the sector, so anechoic areas
  (bladder, heart chambers) and colour Doppler inside it stay in;
- field (endoscopy, dermoscopy, fundus, microscopy, histopathology): the lit field of view inside a black
  vignette, as its convex hull (a dark lumen at the field's edge stays in).

When that region fills the frame (a crop inside the body, a scan saved without its screen), the expert looks
for an object on a plain background instead, and gives nothing when none stands out.
"""

from __future__ import annotations

import numpy as np

from medtrinity.roi.experts import ops
from medtrinity.roi.experts.base import ClassicalExpert, Finding, register_expert

MIN_FRACTION = 0.005  # smaller than this is a speck, not "the main object"
MAX_FRACTION = 0.98  # larger than this is the whole frame: no object stands out
PART_MIN = 0.02  # sector and field: pieces smaller than this share of the frame are text or graphics, not the scan
KEEP_RATIO = 0.5  # parts at least half the largest one's size are kept too (two legs, a dual-view ultrasound)
# body
AIR_LEVEL = 0.2  # air (direct exposure, or outside the patient) sits within this of black (or of white, inverted)
MIN_AIR = 0.05  # ... and covers at least this share of the field (a few saturated pixels are not air)
AIR_NOISE_WIDTHS = 6  # the body starts this many noise widths above the air's grey ...
AIR_STEP = 0.02  # ... and at least this far above it ...
SOFT_TISSUE_STEP = 0.25  # ... but no further than this share of the way to Otsu's threshold
BAND_FLAT = 0.02  # an edge row/column whose grey varies less than this along it, and ...
BAND_SAME = 0.05  # ... within this of the outermost line's grey, is a margin band (collimator, letterbox)
OBJECT_BORDER_SHARE = 0.9  # an object "on a plain background": the background class owns this much of the border
# sector
SPECKLE_STD = 0.012  # local grey standard deviation above which a pixel has echo texture (flat margins are ~0)
GREY_CHROMA = 0.06  # channel spread below which a pixel is grey (echo), above which it is graphics or Doppler
MARGIN_STEP = 0.015  # smoothed grey this far from the margin's is part of the scan (dim far field included)
FLAT_STD = 0.003  # below this a window is flat: a screen element, not echo
TEXT_CONTRAST = 0.25  # a text mark is at least this much brighter than the margin, ...
TEXT_RING_SHARE = 0.7  # ... at least this share of the pixels around it are margin (within MARGIN_LIKE of its grey)
MARGIN_LIKE = 0.06
TEXT_MARK_MAX = 0.005  # ... and it is at most this share of the frame (a character, a tick, a symbol)
TEXTURE_WINDOW = 5  # pixels a side of the window the texture is measured in: small, so it does not bridge gaps
# field
LIT_LEVEL = 0.1  # brightest channel above this: inside the field of view, not the black vignette

FAMILIES = {
    "ultrasound": "sector",
    "endoscopy": "field",
    "dermoscopy": "field",
    "fundus": "field",
    "microscopy": "field",
    "histopathology": "field",
}


def opening_radius(shape: tuple[int, ...]) -> int:
    """Text strokes and thin lines are about 1/128 of the frame at working scale: an opening this size removes them."""
    return max(1, min(shape[:2]) // 128)


def open_mask(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_opening(mask, iterations=opening_radius(mask.shape))


def major_parts(mask: np.ndarray) -> list[np.ndarray]:
    """The largest component and every other at least KEEP_RATIO of its size."""
    labelled, count = ops.label_components(mask)
    if count == 0:
        return []
    sizes = np.bincount(labelled.ravel())[1:]
    return [labelled == index + 1 for index in np.flatnonzero(sizes >= KEEP_RATIO * sizes.max())]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every gap that does not reach the frame's edge filled (one labelling: faster than SciPy's
    iterative binary_fill_holes on large masks)."""
    labelled, count = ops.label_components(~mask)
    if count == 0:
        return mask.astype(bool)
    outside = np.zeros(count + 1, dtype=bool)
    outside[np.concatenate([labelled[0], labelled[-1], labelled[:, 0], labelled[:, -1]])] = True
    outside[0] = False
    return ~outside[labelled]


def border_share(mask: np.ndarray) -> float:
    """Fraction of the frame's edge pixels inside the mask."""
    return float(np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]).mean())


def separability(values: np.ndarray, threshold: float) -> float:
    """Otsu's effectiveness measure: between-class variance / total variance, in [0, 1]."""
    total = float(values.var())
    if total == 0:
        return 0.0
    upper = values > threshold
    weight = float(upper.mean())
    if weight in (0.0, 1.0):
        return 0.0
    between = weight * (1 - weight) * (float(values[upper].mean()) - float(values[~upper].mean())) ** 2
    return between / total


# ---------------------------------------------------------------- object on a plain background
def object_on_background(gray: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The Otsu class that is not the background, where one class owns nearly all the frame's edge."""
    threshold = ops.otsu(gray)
    if threshold is None:
        return None
    bright = gray > threshold
    share = border_share(bright)
    if OBJECT_BORDER_SHARE > share > 1 - OBJECT_BORDER_SHARE:
        return None  # both classes reach the edge: a texture or a crop, no object on a background
    candidate = open_mask(bright if share < 0.5 else ~bright)
    mask = fill_holes(ops.largest_component(candidate))
    return mask, separability(gray, threshold)


# ---------------------------------------------------------------- body: radiographs, CT, MRI, PET, NM …
def margin_bands(gray: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the field inside uniform edge bands (collimator shutters, letterboxing)."""

    def depth(lines: np.ndarray) -> int:  # lines[0] is the outermost row or column
        means, spreads = lines.mean(axis=1), lines.std(axis=1)
        same = (spreads < BAND_FLAT) & (np.abs(means - means[0]) < BAND_SAME)
        return len(lines) if same.all() else int(np.argmin(same))

    top, bottom = depth(gray), depth(gray[::-1])
    left, right = depth(gray.T), depth(gray.T[::-1])
    height, width = gray.shape
    if top + bottom >= height - 8 or left + right >= width - 8:
        return 0, height, 0, width  # nothing but bands: a blank frame, let the threshold find nothing
    return top, height - bottom, left, width - right


def air_cut(values: np.ndarray, threshold: float) -> tuple[float, float]:
    """(air grey, body threshold) for an image whose air is dark: the air is the peak of the class below
    Otsu's threshold; the body starts a few noise widths above it (at least AIR_STEP), but no further than
    SOFT_TISSUE_STEP of the way to Otsu's threshold, so dim muscle and the skin's soft tissue count."""
    dark = values[values <= threshold]
    level = float(np.argmax(np.bincount(np.round(dark * 255).astype(np.int64)))) / 255
    below = dark[dark <= level]
    noise = float(np.sqrt(np.mean((below - level) ** 2))) if below.size else 0.0
    return level, level + min(max(AIR_NOISE_WIDTHS * noise, AIR_STEP), SOFT_TISSUE_STEP * (threshold - level))


def body_region(image: np.ndarray) -> tuple[np.ndarray, float] | None:
    gray = ops.to_gray(image)
    top, bottom, left, right = margin_bands(gray)  # unsmoothed: smoothing would blur the bands' inner edge in
    field = ops.smooth(gray, 1.0)[top:bottom, left:right]
    threshold = ops.otsu(field)
    if threshold is None:
        return None
    # Air is a class at an end of the grey scale: dark on a usual display, bright on an inverted film.
    views = {False: (field, threshold), True: (1.0 - field, 1.0 - threshold)}
    cuts = {inverted: air_cut(values, cut) for inverted, (values, cut) in views.items()}
    candidates = [
        inverted
        for inverted, (level, cut) in cuts.items()
        if level <= AIR_LEVEL and float(np.mean(views[inverted][0] <= cut)) >= MIN_AIR
    ]
    if not candidates:
        return None
    # Black and white plateaus both present: the air is the larger (a flat bone or a saturated implant is smaller).
    inverted = max(candidates, key=lambda side: float(np.mean(views[side][0] <= cuts[side][1])))
    body = np.zeros(gray.shape, dtype=bool)
    body[top:bottom, left:right] = open_mask(views[inverted][0] > cuts[inverted][1])
    parts = major_parts(body)
    mask = fill_holes(np.logical_or.reduce(parts)) if parts else body
    return mask, separability(field, threshold)


# ---------------------------------------------------------------- sector: ultrasound
def chroma(image: np.ndarray) -> np.ndarray:
    """Spread between the colour channels in [0, 1]: 0 for grey pixels."""
    if image.ndim == 2:
        return np.zeros(image.shape, dtype=np.float64)
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]  # elementwise: faster than max(axis=2)
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    return spread / 255.0


def local_std(gray: np.ndarray, size: int) -> np.ndarray:
    from scipy import ndimage

    mean = ndimage.uniform_filter(gray, size)
    return np.sqrt(np.clip(ndimage.uniform_filter(gray * gray, size) - mean * mean, 0, None))


def hull_of_parts(mask: np.ndarray) -> np.ndarray:
    """The convex hull of the mask's parts of at least PART_MIN of the frame (empty when there are none).

    One hull over all of them: the echo of a sector is often in pieces (near field, deep tissue) with an
    anechoic gap between them, and a fan or a field of view is convex.
    """
    parts = ops.drop_small(mask, max(1, int(PART_MIN * mask.size)))
    return convex_hull(parts) if parts.any() else parts


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The filled convex hull of the mask's pixel centres, drawn row by row (skimage's convex_hull_image and
    draw.polygon test every pixel against the polygon: ten times slower at this size)."""
    from scipy import ndimage
    from scipy.spatial import ConvexHull, QhullError

    points = np.argwhere(mask & ~ndimage.binary_erosion(mask)).astype(np.float64)
    try:
        corners = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # fewer than three points, or all on one line: nothing to fill in
        return mask.astype(bool)
    y0, x0 = corners[:, 0], corners[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    rows = np.arange(mask.shape[0], dtype=np.float64)[:, None]
    # Where each sloped edge crosses each row; horizontal edges add nothing their neighbours' ends do not.
    crosses = (rows >= np.minimum(y0, y1)) & (rows <= np.maximum(y0, y1)) & (y0 != y1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
    left = np.ceil(np.where(crosses, x, np.inf).min(axis=1) - 1e-6)
    right = np.floor(np.where(crosses, x, -np.inf).max(axis=1) + 1e-6)
    cols = np.arange(mask.shape[1])[None, :]
    return ((cols >= left[:, None]) & (cols <= right[:, None])) | mask


def text_marks(gray: np.ndarray, margin: float) -> np.ndarray:
    """Small bright marks standing on the margin's grey: burned-in characters, ticks and symbols.

    Speckle is bright next to more speckle; a character is bright next to the plain margin all round.
    """
    from scipy import ndimage

    labelled, count = ops.label_components(gray > margin + TEXT_CONTRAST)
    if count == 0:
        return np.zeros(gray.shape, dtype=bool)
    near = ndimage.grey_dilation(labelled, size=5)  # the label of a mark within two pixels
    ring = (near > 0) & (labelled == 0)
    plain = np.abs(gray[ring] - margin) < MARGIN_LIKE
    share = np.bincount(near[ring], weights=plain, minlength=count + 1) / np.maximum(
        np.bincount(near[ring], minlength=count + 1), 1
    )
    small = np.bincount(labelled.ravel(), minlength=count + 1) <= TEXT_MARK_MAX * gray.size
    is_text = (share >= TEXT_RING_SHARE) & small
    is_text[0] = False
    return is_text[labelled]


def sector_region(image: np.ndarray) -> tuple[np.ndarray, float] | None:
    from scipy import ndimage

    gray = ops.to_gray(image)
    texture = local_std(gray, TEXTURE_WINDOW)
    # A pixel whose window reaches a coloured one (a screen panel, graphics, Doppler) has borrowed texture.
    graphics = ndimage.maximum_filter(chroma(image) >= GREY_CHROMA, TEXTURE_WINDOW)
    # The screen margin is flat at one grey (black, or a dark grey); the scan has speckle, or at least some
    # texture at another grey (a dim far field); flat grey bars and panels are neither.
    edges = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    edge_grey = ~np.concatenate([graphics[0], graphics[-1], graphics[:, 0], graphics[:, -1]])
    margin = float(np.median(np.round(edges[edge_grey] * 255))) / 255 if edge_grey.any() else 0.0
    differs = np.abs(ops.smooth(gray, 1.0) - margin) > MARGIN_STEP
    text = ndimage.maximum_filter(text_marks(gray, margin), TEXTURE_WINDOW)  # with the texture it lends around
    echo = open_mask(((texture > SPECKLE_STD) | (differs & (texture > FLAT_STD))) & ~graphics & ~text)
    sector = hull_of_parts(echo)
    if not sector.any():
        return None
    return sector, ops.contrast_score(texture, sector, ~sector)


# ---------------------------------------------------------------- field: photographs
def field_region(image: np.ndarray) -> tuple[np.ndarray, float] | None:
    brightest = image if image.ndim == 2 else np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])
    brightest = ops.smooth(brightest.astype(np.float64) / 255.0, 1.0)
    field = hull_of_parts(open_mask(brightest > LIT_LEVEL))
    if not field.any():
        return None
    return field, ops.contrast_score(brightest, field, ~field)


STRATEGIES = {"body": body_region, "sector": sector_region, "field": field_region}


@register_expert
class ForegroundExpert(ClassicalExpert):
    name = "foreground"
    version = "2.0"

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        strategy = STRATEGIES[FAMILIES.get((modality or "").strip().lower(), "body")]
        found = strategy(image)
        if found is None or found[0].mean() > MAX_FRACTION:
            # The imaged region fills the frame: an object within it, if one stands out.
            found = object_on_background(ops.smooth(ops.to_gray(image), 1.0))
        if found is None or not MIN_FRACTION <= found[0].mean() <= MAX_FRACTION:
            return []
        mask, score = found
        return [(mask, "foreground", score)]
