"""Raster images through Pillow: PNG, JPEG, BMP, GIF, WebP, and whatever else Pillow recognises.

Pillow is also the fallback reader: a file no reader recognises comes here, and Pillow's own sniffing
either reads it or says the format is unrecognised.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import (
    ImageData,
    Reader,
    check_frame,
    check_pixel_count,
    refuse_window,
)
from medtrinity.sources.readers.intensity import to_uint8, with_alpha
from medtrinity.sources.readers.registry import register_reader

if TYPE_CHECKING:
    from PIL import Image as PILImage

_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_RGB_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


@register_reader
class RasterReader(Reader):
    name = "raster"
    suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
    priority = 90

    def sniff(self, head: bytes) -> bool:
        return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")

    def read(self, path, frame=None, slice_index=None, axis=None, window=None) -> ImageData:
        refuse_window(window)
        with open_raster(path, frame) as img:
            pixels, rule = _raster_pixels(img, path)
            return ImageData(pixels=pixels, intensity=rule, n_frames=int(getattr(img, "n_frames", 1)))

    def read_mask_values(self, path, frame=None, slice_index=None, axis=None) -> np.ndarray:
        with open_raster(path, frame) as img:
            return _raster_mask_values(img)


def open_raster(path: Path, frame: int | None) -> PILImage.Image:
    """The decoded Pillow image (frame `frame`), with format errors and bombs turned into StageError."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # MAX_IMAGE_PIXELS, checked before decoding, is the one limit: Pillow's warning below it is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError as e:
            raise StageError("not a readable image (unrecognised format)") from e
        except Image.DecompressionBombError as e:
            raise StageError(f"refused as a decompression bomb: {e}") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise StageError(f"truncated or corrupt image: {e}") from e
        try:
            _load_frame(img, frame)
        except BaseException:
            img.close()
            raise
    return img


def _load_frame(img: PILImage.Image, frame: int | None) -> None:
    from PIL import Image

    check_pixel_count(*img.size)
    n_frames = int(getattr(img, "n_frames", 1))
    if frame is not None:
        check_frame(frame, n_frames)
    try:
        if frame:
            img.seek(frame)
        img.load()
    except Image.DecompressionBombError as e:
        raise StageError(f"refused as a decompression bomb: {e}") from e
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, struct.error …
        raise StageError(f"truncated or corrupt {img.format or 'image'}: {e}") from e


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from the PNG header (IHDR), which Pillow hides for 16-bit RGB."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) == 26 and head[12:16] == b"IHDR" else None


def _raster_pixels(img: PILImage.Image, path: Path) -> tuple[np.ndarray, str]:
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")).copy(), "1-bit gray as 0/255"
    if mode == "L":
        return np.asarray(img).copy(), "8-bit gray as stored"
    if mode == "RGB":
        if img.format == "PNG" and _png_bit_depth(path) == 16:
            return np.asarray(img).copy(), "16-bit RGB PNG reduced to 8-bit by Pillow (high byte)"
        return np.asarray(img).copy(), "8-bit RGB as stored"
    if mode in ("P", "PA"):
        rgba = np.asarray(img.convert("RGBA"))
        pixels, rule = with_alpha(rgba[..., :3], rgba[..., 3], 255, "RGB")
        return pixels, f"palette converted to RGB; {rule}"
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return with_alpha(la[..., 0], la[..., 1], 255, "gray")
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        return with_alpha(rgba[..., :3], rgba[..., 3], 255, "RGB")
    if mode == "RGBX":
        return np.asarray(img.convert("RGB")).copy(), "8-bit RGB as stored"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB")).copy(), f"{mode} converted to RGB"
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(img)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("="))
        return to_uint8(values, "gray")
    raise StageError(f"unsupported image mode {mode} ({img.format})")


def _raster_mask_values(img: PILImage.Image) -> np.ndarray:
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("L", "P", "I", "F") or mode.startswith("I;16"):
        return np.asarray(img)  # palette masks: the indices are the labels
    if mode in ("LA", "La", "PA"):
        return np.asarray(img)[..., 0]
    if mode in _RGB_MODES:
        return np.asarray(img.convert("RGB")).max(axis=2)
    raise StageError(f"unsupported mask mode {mode} ({img.format})")
