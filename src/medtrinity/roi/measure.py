"""Intensity and texture of an ROI against its surroundings: the numbers the grounded describer puts in words.

"Inside" is the ROI mask. "Around" is a ring of pixels outside the mask within `ring_width` pixels of it
(Euclidean distance), clipped to the image. The default ring width is max(MIN_RING_WIDTH,
RING_WIDTH_FRACTION * sqrt(ROI pixels)): for a compact ROI a quarter of sqrt(area) makes the ring about as
large as the ROI itself, so both sides are measured on similar sample sizes, whatever the ROI's size.

Intensities are measured on the gray image (`to_gray`) in the pixels' own scale: the stage pixels are
uint8, so 0-255. When the ROI leaves fewer than MIN_SAMPLE_PIXELS around it (e.g. it covers the image),
`has_surroundings` is False, the around statistics, `contrast` and `edge_sharpness` are NaN, and
`brightness_word` / `margin_word` return None: there is nothing to compare with.

A description quotes these numbers rounded (`read_texture`): its words are derived from the rounded numbers
it prints, so a reader (or a test) can re-derive every word from the sentence alone. Regions too small to
measure (fewer than MIN_TEXTURE_PIXELS, or a ring under MIN_RING_PIXELS) are not put into words.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from medtrinity.errors import StageError
from medtrinity.records import ROI
from medtrinity.roi.geometry import bbox_of_mask, rle_to_mask

# Ring around the ROI.
MIN_RING_WIDTH = 5
RING_WIDTH_FRACTION = 0.25
MIN_SAMPLE_PIXELS = 9  # fewest pixels a ring (or an ROI core) needs to be measured
# Margin: gradient magnitude of the image smoothed with this sigma (px), so pixel noise is not read as edge;
# the "boundary band" is every pixel within BOUNDARY_HALF_WIDTH px of the mask contour, on either side,
# which tolerates a hand-drawn contour one or two pixels off the true edge.
GRADIENT_SIGMA = 1.0
BOUNDARY_HALF_WIDTH = 2.0
# Classification thresholds used by the describer.
CONTRAST_THRESHOLD = 0.5  # |contrast| in pooled standard deviations (a "medium" effect size)
MIN_BRIGHTNESS_DIFFERENCE = 5.0  # gray levels (of 255): below this a difference is not visible
HETEROGENEITY_THRESHOLD = 0.15  # coefficient of variation above which the ROI is heterogeneous
HETEROGENEITY_LEVEL_FLOOR = 16.0  # gray levels: keeps the ratio finite in near-black images
SHARP_MARGIN_RATIO = 2.5  # edge_sharpness at or above which the margin is sharp

# What a description puts into words: an ROI of fewer pixels is not described at all (a 1-3 pixel region has no
# texture), and a ring of fewer pixels is too small a sample to call the ROI brighter or darker than it.
MIN_TEXTURE_PIXELS = 64
MIN_RING_PIXELS = 64
# Quoted precision: means and levels as integers, contrast and edge ratio to 0.1, heterogeneity to 0.01.
# Dark margin: flat dark pixels (gray <= this) connected to the image border — air around a body, the screen
# around an ultrasound sector. A colour overlay (Doppler): pixels whose channels differ by >= COLOUR_CHROMA.
DARK_MARGIN_LEVEL = 10
COLOUR_CHROMA = 60

LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's "L" conversion


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """float32 HxW intensities: gray as is, RGB(A) as BT.601 luminance (alpha ignored)."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        rgb = array[:, :, :3].astype(np.float32)
        return (rgb @ np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)).astype(np.float32)
    raise StageError(f"image must be HxW gray or HxWx3 RGB to be measured, got shape {array.shape}")


@dataclass
class RegionStats:
    """What `measure_region` found (intensities on the pixels' scale, 0-255 for the stage's uint8 images).

    contrast: (mean_inside - mean_around) / max(sqrt((std_inside² + std_around²) / 2), 1) — an effect
        size in pooled standard deviations; NaN without surroundings.
    heterogeneity: std of the ROI core / max(mean_inside, mean_around, HETEROGENEITY_LEVEL_FLOOR) — a
        coefficient of variation against the brighter of the ROI and its surroundings, so noise inside a
        dark ROI (a cyst in bright tissue) is not read as texture. The core is the mask less its boundary
        band (unless that leaves < MIN_SAMPLE_PIXELS), so a blurred margin's ramp is not read as texture.
    edge_sharpness: mean gradient magnitude on the boundary band / mean gradient magnitude over the rest of
        inside + around (floored at 1 gray level per pixel). The rest excludes the band so the ratio does
        not depend on how much of a small ROI the band covers: ~1 means no edge stands out at the contour,
        well above 1 a sharp margin; a blurred margin spreads its gradient off the band and scores low.
        NaN without surroundings.
    """

    mean_inside: float
    mean_around: float
    std_inside: float
    std_around: float
    contrast: float
    heterogeneity: float
    edge_sharpness: float
    pixels_inside: int
    pixels_around: int
    has_surroundings: bool
    std_core: float = float("nan")  # std of the core that `heterogeneity` divides
    reference_level: float = float("nan")  # the level it divides by


def default_ring_width(pixels_inside: int) -> int:
    return max(MIN_RING_WIDTH, round(RING_WIDTH_FRACTION * math.sqrt(pixels_inside)))


def _crop_around(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = bbox_of_mask(mask)
    height, width = mask.shape
    return (
        slice(max(y0 - margin, 0), min(y1 + margin, height)),
        slice(max(x0 - margin, 0), min(x1 + margin, width)),
    )


def _edge_sharpness(gray: np.ndarray, region: np.ndarray, band: np.ndarray) -> float:
    from scipy import ndimage

    gradient = ndimage.gaussian_gradient_magnitude(gray.astype(np.float64), GRADIENT_SIGMA)
    rest = region & ~band
    reference = gradient[rest] if rest.any() else gradient[region]  # tiny ROI: the whole region
    return float(gradient[band].mean() / max(float(reference.mean()), 1.0))


def measure_region(pixels: np.ndarray, mask: np.ndarray, ring_width: int | None = None) -> RegionStats:
    """Intensity, contrast, texture and margin of the ROI `mask` in `pixels` (see the module docstring)."""
    from scipy import ndimage

    gray = to_gray(pixels)
    inside_full = np.asarray(mask).astype(bool)
    if inside_full.ndim != 2 or inside_full.shape != gray.shape:
        shown = "x".join(str(n) for n in inside_full.shape[::-1])
        raise StageError(f"ROI mask is {shown} but image is {gray.shape[1]}x{gray.shape[0]}")
    pixels_inside = int(inside_full.sum())
    if pixels_inside == 0:
        raise StageError("ROI mask is empty: nothing to measure")
    width = default_ring_width(pixels_inside) if ring_width is None else int(ring_width)
    if width < 1:
        raise ValueError(f"ring_width must be at least 1 pixel, got {ring_width}")

    # Work on a crop: the ring and the smoothed gradient only reach this far from the mask.
    rows, cols = _crop_around(inside_full, width + math.ceil(4 * GRADIENT_SIGMA) + 2)
    gray, inside = gray[rows, cols], inside_full[rows, cols]
    if inside.all():  # the ROI fills the image: no contour, no ring (EDT of an all-True array is meaningless)
        around = band = np.zeros_like(inside)
        core = inside
    else:
        distance_in = ndimage.distance_transform_edt(inside)  # mask pixel -> nearest pixel outside
        distance_out = ndimage.distance_transform_edt(~inside)  # outside pixel -> nearest mask pixel
        around = ~inside & (distance_out <= width)
        band = (inside & (distance_in <= BOUNDARY_HALF_WIDTH)) | (around & (distance_out <= BOUNDARY_HALF_WIDTH))
        core = inside & (distance_in > BOUNDARY_HALF_WIDTH)
        if int(core.sum()) < MIN_SAMPLE_PIXELS:
            core = inside

    values_in = gray[inside].astype(np.float64)
    values_around = gray[around].astype(np.float64)
    mean_in, std_in = float(values_in.mean()), float(values_in.std())
    # Texture is read on the core: a blurred margin's ramp is a margin property, not internal texture.
    std_core = float(gray[core].astype(np.float64).std())
    pixels_around = int(values_around.size)
    has_surroundings = pixels_around >= MIN_SAMPLE_PIXELS
    nan = float("nan")
    if has_surroundings:
        mean_around, std_around = float(values_around.mean()), float(values_around.std())
        pooled = math.sqrt((std_in**2 + std_around**2) / 2)
        contrast = (mean_in - mean_around) / max(pooled, 1.0)
        level = max(mean_in, mean_around, HETEROGENEITY_LEVEL_FLOOR)
        edge = _edge_sharpness(gray, inside | around, band)
    else:
        mean_around = std_around = contrast = edge = nan
        level = max(mean_in, HETEROGENEITY_LEVEL_FLOOR)
    return RegionStats(
        mean_inside=mean_in,
        mean_around=mean_around,
        std_inside=std_in,
        std_around=std_around,
        contrast=contrast,
        heterogeneity=std_core / level,
        edge_sharpness=edge,
        pixels_inside=pixels_inside,
        pixels_around=pixels_around,
        has_surroundings=has_surroundings,
        std_core=std_core,
        reference_level=level,
    )


def mask_for_roi(roi: ROI, height: int, width: int) -> np.ndarray:
    """Bool HxW mask of an ROI: its RLE decoded, or its box filled when it has no mask."""
    if roi.mask is not None:
        decoded = rle_to_mask(roi.mask)
        if decoded.shape != (height, width):
            raise StageError(
                f"mask of ROI {roi.label!r} is {decoded.shape[1]}x{decoded.shape[0]} but image is {width}x{height}"
            )
        return decoded
    x0, y0, x1, y1 = (int(v) for v in roi.bbox)
    filled = np.zeros((height, width), dtype=bool)
    filled[max(y0, 0) : max(min(y1, height), 0), max(x0, 0) : max(min(x1, width), 0)] = True
    return filled


# ---------------------------------------------------------------- words
def brightness_word(stats: RegionStats) -> str | None:
    """ "brighter" / "darker" than the surroundings, "similar", or None when there are no surroundings.

    A difference counts only when it is both a medium effect (|contrast| >= CONTRAST_THRESHOLD) and visible
    (|mean difference| >= MIN_BRIGHTNESS_DIFFERENCE gray levels).
    """
    if not stats.has_surroundings:
        return None
    return brightness_from(stats.mean_inside, stats.mean_around, stats.contrast)


def brightness_from(mean_inside: float, mean_around: float, contrast: float) -> str:
    difference = mean_inside - mean_around
    if abs(contrast) < CONTRAST_THRESHOLD or abs(difference) < MIN_BRIGHTNESS_DIFFERENCE:
        return "similar"
    return "brighter" if difference > 0 else "darker"


def homogeneity_word(stats: RegionStats) -> str:
    """ "heterogeneous" when heterogeneity >= HETEROGENEITY_THRESHOLD, else "homogeneous"."""
    return homogeneity_from(stats.heterogeneity)


def homogeneity_from(heterogeneity: float) -> str:
    return "heterogeneous" if heterogeneity >= HETEROGENEITY_THRESHOLD else "homogeneous"


def margin_word(stats: RegionStats) -> str | None:
    """ "sharp" when edge_sharpness >= SHARP_MARGIN_RATIO, else "ill-defined"; None without surroundings."""
    if not stats.has_surroundings:
        return None
    return margin_from(stats.edge_sharpness)


def margin_from(edge_sharpness: float) -> str:
    return "sharp" if edge_sharpness >= SHARP_MARGIN_RATIO else "ill-defined"


# ---------------------------------------------------------------- what a description quotes
@dataclass(frozen=True)
class TextureReading:
    """The numbers a description prints, rounded as printed, and the words derived from those printed numbers.

    The comparison with the surroundings (mean_around, contrast, brightness, edge_sharpness, margin) is None
    when the ring has fewer than MIN_RING_PIXELS pixels.
    """

    pixels_inside: int
    pixels_around: int
    mean_inside: int
    std_core: int
    reference_level: int
    heterogeneity: float
    homogeneity: str
    mean_around: int | None = None
    contrast: float | None = None
    brightness: str | None = None
    edge_sharpness: float | None = None
    margin: str | None = None

    @property
    def compared(self) -> bool:
        return self.brightness is not None


def read_texture(stats: RegionStats) -> TextureReading | None:
    """What a description may say of `stats`; None when the ROI is under MIN_TEXTURE_PIXELS (not described)."""
    if stats.pixels_inside < MIN_TEXTURE_PIXELS:
        return None
    heterogeneity = round(stats.heterogeneity, 2)
    reading = TextureReading(
        pixels_inside=stats.pixels_inside,
        pixels_around=stats.pixels_around,
        mean_inside=round(stats.mean_inside),
        std_core=round(stats.std_core),
        reference_level=round(stats.reference_level),
        heterogeneity=heterogeneity,
        homogeneity=homogeneity_from(heterogeneity),
    )
    if not stats.has_surroundings or stats.pixels_around < MIN_RING_PIXELS:
        return reading
    mean_around, contrast, edge = round(stats.mean_around), round(stats.contrast, 1), round(stats.edge_sharpness, 1)
    return dataclasses.replace(
        reading,
        mean_around=mean_around,
        contrast=contrast,
        brightness=brightness_from(reading.mean_inside, mean_around, contrast),
        edge_sharpness=edge,
        margin=margin_from(edge),
    )


# ---------------------------------------------------------------- pixels that are not tissue
def ring_mask(mask: np.ndarray, ring_width: int | None = None) -> np.ndarray:
    """The ring `measure_region` compares an ROI with (bool HxW)."""
    from scipy import ndimage

    inside = np.asarray(mask).astype(bool)
    width = default_ring_width(int(inside.sum())) if ring_width is None else int(ring_width)
    if inside.all():
        return np.zeros_like(inside)
    return ~inside & (ndimage.distance_transform_edt(~inside) <= width)


def dark_margin(pixels: np.ndarray) -> np.ndarray:
    """Dark pixels (gray <= DARK_MARGIN_LEVEL) connected to the image border: what lies outside the imaged body.

    Air around a head or a limb, the black screen around an ultrasound sector. An anechoic cyst inside tissue
    is dark too, but the tissue around it keeps it off the border.
    """
    from scipy import ndimage

    black = to_gray(pixels) <= DARK_MARGIN_LEVEL
    labelled, _ = ndimage.label(black, structure=np.ones((3, 3), dtype=bool))
    border = np.unique(np.concatenate([labelled[0], labelled[-1], labelled[:, 0], labelled[:, -1]]))
    return np.isin(labelled, border[border > 0])


def colour_overlay(pixels: np.ndarray) -> np.ndarray:
    """Strongly coloured pixels (max - min channel >= COLOUR_CHROMA): a Doppler or annotation overlay on gray."""
    array = np.asarray(pixels)
    if array.ndim != 3 or array.shape[2] < 3:
        return np.zeros(array.shape[:2], dtype=bool)
    rgb = array[:, :, :3].astype(np.int16)
    return (rgb.max(axis=2) - rgb.min(axis=2)) >= COLOUR_CHROMA
