"""The image a model backend sends: the stored JPEG bytes when they can go as they are, else an encoded copy.

A JPEG read as stored (the pixels are exactly its decoded bytes) goes out as those bytes — a PNG of the same
pixels is several times larger. `max_side` resizes only what is sent (longest side at most that many
pixels; 0 = full size): vision encoders downsample large images anyway, so full size costs upload and
tokens for nothing. The stored image and the record never change.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from medtrinity.image_codec import encode_png
from medtrinity.records import Sample, image_extension

JPEG_QUALITY = 90  # a resized JPEG is re-encoded at this quality (the original's is unknown)


@dataclass(frozen=True)
class ImagePayload:
    data: bytes
    mime: str  # image/jpeg or image/png
    width: int
    height: int

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.data).decode("ascii")


def stored_jpeg(sample: Sample) -> bytes | None:
    """The file's own JPEG bytes when the sample's pixels are that file decoded as stored, else None."""
    item = sample.item
    path = getattr(item, "path", None)
    if (
        path is None
        or getattr(item, "frame", None) is not None
        or path.suffix.lower() not in (".jpg", ".jpeg")
        or not (sample.origin.intensity or "").endswith("as stored")
        or sample.origin.redacted
    ):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if image_extension(data) == "jpg" else None


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side` (0: unchanged), aspect kept."""
    longest = max(width, height)
    if not max_side or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(pixels: np.ndarray, size: tuple[int, int], jpeg: bool) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if jpeg:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def image_payload(sample: Sample, max_side: int = 0, overlay: bool = False) -> ImagePayload:
    """What to send for `sample`: its stored JPEG as is, or its pixels (ROIs outlined if `overlay`) encoded,
    resized to fit `max_side`. JPEG in, JPEG out; anything else (and every overlay) as lossless PNG."""
    pixels = sample.pixels
    height, width = pixels.shape[:2]
    size = fitted_size(width, height, max_side)
    jpeg = stored_jpeg(sample)
    if jpeg is not None and not overlay and size == (width, height):
        return ImagePayload(jpeg, "image/jpeg", width, height)
    if overlay and sample.rois:
        from medtrinity.describe.overlay import draw_overlay

        pixels = draw_overlay(pixels, sample.rois)  # a copy; the stored image is untouched
    as_jpeg = jpeg is not None and not overlay
    if not as_jpeg and not overlay and size == (width, height):
        if sample.image_bytes is None:  # exactly the PNG the encode stage stores: made once, kept for it
            sample.image_bytes = encode_png(pixels)
        if image_extension(sample.image_bytes) == "png":  # (a record read back may hold its stored JPEG)
            return ImagePayload(sample.image_bytes, "image/png", *size)
    return ImagePayload(_encode(pixels, size, as_jpeg), "image/jpeg" if as_jpeg else "image/png", *size)
