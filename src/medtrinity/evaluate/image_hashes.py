"""Perceptual hashes of an image's stored pixels: pHash and dHash (the `imagehash` library), 64 bits each.

pHash (the sign of the 32x32 DCT's 8x8 low frequencies against their median) survives resizing, JPEG
re-encoding, a small crop and a brightness or contrast change; dHash (the sign of horizontal gradients on a
9x8 thumbnail) is a second, independent view, so two unrelated images of the same kind (two chest
radiographs) rarely come out close in both. Hashes are kept as Python ints for the index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BITS = 64


@dataclass(frozen=True)
class ImageHash:
    phash: int
    dhash: int


def _as_int(bits: np.ndarray) -> int:
    value = 0
    for bit in bits.flatten():
        value = (value << 1) | int(bit)
    return value


def hash_pixels(pixels: np.ndarray) -> ImageHash:
    """The two hashes of uint8 HxW or HxWx3 pixels."""
    import imagehash
    from PIL import Image

    image = Image.fromarray(pixels)
    return ImageHash(_as_int(imagehash.phash(image).hash), _as_int(imagehash.dhash(image).hash))


def hash_image_bytes(data: bytes) -> ImageHash:
    from medtrinity.image_codec import decode_image_bytes

    return hash_pixels(decode_image_bytes(data))


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()
