"""ROI overlays and thumbnails, drawn on a copy of the stored image when a page asks for them.

Masks are translucent fills, boxes are outlines, labels sit at the box's top-left corner; every ROI has
the colour the describer's overlay gives it (`describe/overlay.py`), so "the red region" means one thing.
The stored image bytes are only read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from medtrinity.describe.overlay import outline_colour

MASK_ALPHA = 90  # of 255: the tissue under a mask stays visible
THUMBNAIL_SIDE = 192


@dataclass(frozen=True)
class OverlayOptions:
    hidden: frozenset[int] = frozenset()  # ROI indices not drawn
    masks: bool = True
    boxes: bool = True
    labels: bool = True


def _rgb(image_bytes: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as image:
        image.load()
        # 16-bit and float grayscale would come out white in RGB; map them to 8 bits over their range first.
        if image.mode in ("I", "I;16", "F"):
            pixels = np.asarray(image, dtype=np.float64)
            low, high = float(pixels.min()), float(pixels.max())
            scaled = (pixels - low) / (high - low or 1.0) * 255
            return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")
        return image.convert("RGB")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _mask(roi: dict, height: int, width: int) -> np.ndarray | None:
    if not roi.get("mask") or not roi["mask"].get("counts"):
        return None
    from medtrinity.roi.geometry import rle_to_mask

    mask = rle_to_mask(roi["mask"])
    return mask if mask.shape == (height, width) else None


def line_width(width: int, height: int) -> int:
    """Box outline width: one pixel on small images, thicker on large ones so it shows when scaled down."""
    return max(1, round(max(width, height) / 400))


def render_overlay(image_bytes: bytes, rois: list[dict], options: OverlayOptions = OverlayOptions()) -> bytes:
    """PNG of the image with the ROIs drawn as `options` says; the image at its stored resolution."""
    from PIL import Image, ImageDraw

    base = _rgb(image_bytes)
    width, height = base.size
    layer = np.zeros((height, width, 4), np.uint8)
    for index, roi in enumerate(rois):
        if index in options.hidden or not options.masks:
            continue
        mask = _mask(roi, height, width)
        if mask is not None:
            layer[mask] = (*outline_colour(index)[1], MASK_ALPHA)
    overlay = Image.fromarray(layer, "RGBA")
    draw = ImageDraw.Draw(overlay)
    lw = line_width(width, height)
    font = _font(max(11, round(max(width, height) / 35)))  # about 1/35 of the image, so it reads when scaled
    for index, roi in enumerate(rois):
        if index in options.hidden:
            continue
        colour = outline_colour(index)[1]
        x0, y0, x1, y1 = roi["bbox"]
        if options.boxes and x1 > x0 and y1 > y0:
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(*colour, 255), width=lw)
        if options.labels:
            text = f"{index}: {roi['label']}"
            left, top, right, bottom = draw.textbbox((x0 + lw + 1, y0 + lw), text, font=font)
            draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=(0, 0, 0, 160))
            draw.text((x0 + lw + 1, y0 + lw), text, fill=(*colour, 255), font=font)
    return _png(Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB"))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_thumbnail(image_bytes: bytes, rois: list[dict], side: int = THUMBNAIL_SIDE) -> bytes:
    """PNG at most `side` pixels a side, with each ROI's outline (its mask's edge, or its box)."""
    from PIL import Image

    base = _rgb(image_bytes)
    width, height = base.size
    base.thumbnail((side, side), Image.Resampling.LANCZOS)
    canvas = np.array(base)
    small_h, small_w = canvas.shape[:2]
    for index, roi in enumerate(rois):
        colour = outline_colour(index)[1]
        mask = _mask(roi, height, width)
        if mask is not None and mask.any():
            small = np.asarray(Image.fromarray(mask).resize((small_w, small_h), Image.Resampling.NEAREST))
            if small.any():
                canvas[_edge(small)] = colour
                continue
        x0, y0, x1, y1 = roi["bbox"]
        sx, sy = small_w / width, small_h / height
        box = np.zeros((small_h, small_w), bool)
        bx0, by0 = int(x0 * sx), int(y0 * sy)
        bx1, by1 = max(bx0 + 1, min(small_w, round(x1 * sx))), max(by0 + 1, min(small_h, round(y1 * sy)))
        box[by0:by1, bx0:bx1] = True
        canvas[_edge(box)] = colour
    return _png(Image.fromarray(canvas))


def _edge(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner
