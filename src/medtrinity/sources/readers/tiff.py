"""TIFF through tifffile (8/16/32-bit, float, gray/RGB/palette/CMYK, extra samples, pages as frames).

Pillow decodes a page instead where tifffile lacks the codec (LZW, JPEG … need imagecodecs) or the
photometric is not handled here (YCbCr, CIELab); the intensity text then says "(decoded by Pillow)".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import (
    ImageData,
    Reader,
    check_frame,
    check_pixel_count,
    refuse_window,
)
from medtrinity.sources.readers.intensity import lut_to_uint8, to_uint8, with_alpha
from medtrinity.sources.readers.raster import RasterReader
from medtrinity.sources.readers.registry import register_reader

_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders


@register_reader
class TiffReader(Reader):
    name = "tiff"
    suffixes = (".tif", ".tiff")
    priority = 30

    def sniff(self, head: bytes) -> bool:
        return head[:4] in _MAGIC

    def read(self, path, frame=None, slice_index=None, axis=None, window=None) -> ImageData:
        refuse_window(window)
        page = _tiff_page(path, frame)
        if page is None:
            image = RasterReader().read(path, frame)
            image.intensity = f"{image.intensity} (decoded by Pillow)"
            return image
        pixels, rule = _tiff_pixels(page)
        return ImageData(pixels=pixels, intensity=rule, n_frames=page.n_frames)

    def read_mask_values(self, path, frame=None, slice_index=None, axis=None) -> np.ndarray:
        page = _tiff_page(path, frame)
        if page is None:
            return RasterReader().read_mask_values(path, frame)
        values = page.values
        return values if values.ndim == 2 else values[..., : min(3, values.shape[2])].max(axis=2)


@dataclass
class _TiffPage:
    values: np.ndarray  # HxW or HxWxS (samples last)
    photometric: int
    extrasamples: tuple[int, ...]
    colormap: np.ndarray | None
    n_frames: int


def _tiff_page(path: Path, frame: int | None) -> _TiffPage | None:
    """The page's values and tags, or None where Pillow should decode the page instead:
    tifffile lacks the codec (it needs imagecodecs for LZW, JPEG, …) or the photometric is not handled here."""
    import tifffile
    from tifffile import PHOTOMETRIC

    handled = (
        PHOTOMETRIC.MINISBLACK,
        PHOTOMETRIC.MINISWHITE,
        PHOTOMETRIC.RGB,
        PHOTOMETRIC.PALETTE,
        PHOTOMETRIC.SEPARATED,
    )
    try:
        with tifffile.TiffFile(path) as tif:
            n_frames = len(tif.pages)
            index = 0 if frame is None else frame
            check_frame(index, n_frames)
            page = tif.pages[index]
            check_pixel_count(int(page.imagewidth), int(page.imagelength))
            if page.photometric not in handled:
                return None  # YCbCr, CIELab, …
            try:
                values = page.asarray()
            except ValueError as e:
                if "imagecodecs" in str(e):
                    return None
                raise
            axes = page.axes
            tags = (int(page.photometric), tuple(int(e) for e in page.extrasamples or ()), page.colormap)
    except StageError:
        raise
    except Exception as e:  # tifffile raises TiffFileError, ValueError, OSError, struct.error …
        raise StageError(f"truncated or corrupt TIFF: {e}") from e
    if "S" in axes:
        values = np.moveaxis(values, axes.index("S"), -1)
    if values.ndim not in (2, 3):
        raise StageError(f"unsupported TIFF page layout {axes} {values.shape}")
    return _TiffPage(values, *tags, n_frames=n_frames)


def _tiff_pixels(page: _TiffPage) -> tuple[np.ndarray, str]:
    from tifffile import PHOTOMETRIC

    values, photometric = page.values, page.photometric
    if photometric == PHOTOMETRIC.PALETTE and values.ndim == 2:
        return lut_to_uint8(np.moveaxis(page.colormap[:, values], 0, -1)), "palette converted to RGB"
    if photometric == PHOTOMETRIC.SEPARATED and values.ndim == 3 and values.shape[2] >= 4:
        from PIL import Image

        cmyk = to_uint8(values[..., :4], "CMYK")[0]
        return np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB")).copy(), "CMYK converted to RGB"
    if values.ndim == 2:
        pixels, rule = to_uint8(values, "gray")
    else:
        pixels, rule = _tiff_samples(values, page)
    if photometric == PHOTOMETRIC.MINISWHITE:
        return 255 - pixels, f"{rule}; MINISWHITE inverted"
    return pixels, rule


def _tiff_samples(values: np.ndarray, page: _TiffPage) -> tuple[np.ndarray, str]:
    """HxWxS: RGB(+extras) or multi-channel. Extra sample 1/2 (associated/unassociated alpha) is alpha."""
    from tifffile import PHOTOMETRIC

    n = values.shape[2]
    colour = 3 if page.photometric == PHOTOMETRIC.RGB or n >= 3 else 1
    extras = page.extrasamples
    has_alpha = n > colour and bool(extras) and extras[0] in (1, 2)
    base = values[..., :colour] if colour == 3 else values[..., 0]
    what = "RGB" if colour == 3 else "gray"
    if has_alpha:
        alpha_max = float(np.iinfo(values.dtype).max) if values.dtype.kind in "iu" else 1.0
        pixels, rule = with_alpha(base, values[..., colour], alpha_max, what)
    else:
        pixels, rule = to_uint8(base, what)
    if n - colour - int(has_alpha):
        used = "samples 0-2" if colour == 3 else "sample 0"
        rule = f"{rule}; {used} of {n} used"
    return pixels, rule
