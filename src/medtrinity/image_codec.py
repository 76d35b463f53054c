"""PNG encoding of stored images and decoding of stored image bytes.

Sources, stages and describers all use these; the module depends on nothing of medtrinity but its errors, so
any layer imports it without importing another.
"""

from __future__ import annotations

import io

import numpy as np

from medtrinity.errors import StageError


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 HxW or HxWx3 pixels (compression level 3: fast, still lossless)."""
    from PIL import Image

    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"encode_png needs uint8 HxW or HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def decode_image_bytes(data: bytes) -> np.ndarray:
    """uint8 HxW (gray) or HxWx3 (RGB) pixels of encoded image bytes (PNG, JPEG, …)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            return np.asarray(img).copy()
    except UnidentifiedImageError as e:
        raise StageError("image bytes are not a recognised image format") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise StageError(f"truncated or corrupt image bytes: {e}") from e
