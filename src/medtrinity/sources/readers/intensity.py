"""Intensity rules: how stored values become the 8-bit pixels of a record, and the words that name the rule.

Every reader uses these, so one rule gives the same pixels and the same `intensity` text whatever the
format: CT windows in HU (presets or "L<level>/W<width>"), the 0.5-99.5 percentile range for values
without a window, and colour lookup tables reduced to 8 bits.
"""

from __future__ import annotations

import re

import numpy as np

from medtrinity.errors import UserError

PERCENTILE_LOW, PERCENTILE_HIGH = 0.5, 99.5
PERCENTILE_RULE = "percentile 0.5-99.5 to 8-bit"

# CT windows in Hounsfield units: (label, level, width).
WINDOW_PRESETS: dict[str, tuple[str, float, float]] = {
    "soft-tissue": ("soft tissue", 40, 400),
    "lung": ("lung", -600, 1500),
    "bone": ("bone", 400, 1800),
    "brain": ("brain", 40, 80),
    "mediastinum": ("mediastinum", 50, 350),
}
# Default CT window by BodyPartExamined; everything else (chest included) gets soft tissue, because a
# lung window hides the mediastinum and most findings the ROI stage looks for. Ask for "lung" explicitly.
_CT_WINDOW_BY_BODY_PART = {"HEAD": "brain", "BRAIN": "brain", "SKULL": "brain"}
_CUSTOM_WINDOW = re.compile(r"^L(-?\d+(?:\.\d+)?)/W(\d+(?:\.\d+)?)$")


def format_number(value: float) -> str:
    """A number as the intensity texts write it (40, -600, 0.5)."""
    return f"{value:g}"


def resolve_window(window: str) -> tuple[str, float, float]:
    """(label, level, width) of a preset name or a custom "L<level>/W<width>"; UserError if neither."""
    if window in WINDOW_PRESETS:
        return WINDOW_PRESETS[window]
    custom = _CUSTOM_WINDOW.match(window)
    if custom:
        return "custom", float(custom.group(1)), float(custom.group(2))
    raise UserError(f"unknown window {window!r}: use one of {', '.join(WINDOW_PRESETS)} or L<level>/W<width>")


def default_ct_window(body_part: str) -> tuple[str, float, float]:
    """The CT window used when none is asked for, by upper-case BodyPartExamined."""
    return WINDOW_PRESETS[_CT_WINDOW_BY_BODY_PART.get(body_part, "soft-tissue")]


def ct_window_rule(label: str, level: float, width: float) -> str:
    return f"CT window {label} (L{format_number(level)} W{format_number(width)}) HU"


def window_to_uint8(values: np.ndarray, level: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Linear window [level - width/2, level + width/2] -> 0..255 (clipped, rounded);
    function "SIGMOID" uses DICOM's sigmoid VOI function instead."""
    x = values.astype(np.float64)
    if function.upper() == "SIGMOID":
        scaled = 1.0 / (1.0 + np.exp(-4.0 * (x - level) / width))
    else:
        scaled = (x - (level - width / 2.0)) / width
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def range_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """[low, high] -> 0..255 linearly (clipped, rounded); a constant image (high <= low) becomes 0."""
    x = values.astype(np.float64)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((x - low) / (high - low), 0.0, 1.0)
    return np.rint(np.nan_to_num(scaled, nan=0.0) * 255.0).astype(np.uint8)


def percentile_range(values: np.ndarray) -> tuple[float, float]:
    """The 0.5th and 99.5th percentiles of the finite values ((0, 0) when there are none)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(finite, [PERCENTILE_LOW, PERCENTILE_HIGH])
    return float(low), float(high)


def percentile_to_uint8(values: np.ndarray) -> np.ndarray:
    """The 0.5th..99.5th percentile of all values (channels together) -> 0..255."""
    return range_to_uint8(values, *percentile_range(values))


def to_uint8(values: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """8-bit values as they are; bool as 0/255; anything else by percentile (one range for all channels)."""
    if values.dtype == np.uint8:
        return values, f"8-bit {what} as stored"
    if values.dtype == bool:
        return values.astype(np.uint8) * 255, f"1-bit {what} as 0/255"
    depth = f"{values.dtype.itemsize * 8}-bit" + (" float" if values.dtype.kind == "f" else "")
    return percentile_to_uint8(values), f"{depth} {what} {PERCENTILE_RULE}"


def with_alpha(values: np.ndarray, alpha: np.ndarray, alpha_max: float, what: str) -> tuple[np.ndarray, str]:
    """Drop an opaque alpha, otherwise composite on black; then make 8-bit."""
    if alpha.min() >= alpha_max:
        pixels, rule = to_uint8(values, what)
        return pixels, f"{rule} (opaque alpha dropped)"
    pixels, rule = to_uint8(_composite_on_black(values, alpha, alpha_max), what)
    return pixels, f"alpha composited on black; {rule}"


def _composite_on_black(values: np.ndarray, alpha: np.ndarray, alpha_max: float) -> np.ndarray:
    """Premultiply by alpha (transparent -> black), keeping the dtype."""
    weight = alpha.astype(np.float64) / alpha_max
    if values.ndim == 3:
        weight = weight[..., None]
    out = values.astype(np.float64) * weight
    return np.rint(out).astype(values.dtype) if values.dtype.kind in "iub" else out.astype(values.dtype)


def lut_to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Colours looked up in a palette (DICOM PALETTE COLOR, TIFF colormap): 16-bit entries keep their high byte."""
    return (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8)
