"""Distinct synthetic scans and the altered copies a leaked benchmark image turns into.

A phantom is a gray field with a body outline and a few organs and lesions (ellipses of their own
intensity, size and place), smoothed and with noise: images that look alike as medical images do (same
layout, same kind of content) but are different images. The copies are what happens to an image on its way
into another collection: resized, re-encoded as JPEG at quality 75, cropped by up to 5 %, brightened.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage


def phantom(seed: int, size: int = 192) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.full((size, size), 20.0)
    body = ((xx - 0.5) / rng.uniform(0.35, 0.48)) ** 2 + ((yy - 0.5) / rng.uniform(0.3, 0.45)) ** 2 <= 1
    image[body] = rng.uniform(70, 110)
    # tissue texture at the scale of organs: what makes two scans of the same kind differ
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), size / 24)
    image[body] += (texture / texture.std() * 18)[body]
    for _ in range(rng.integers(5, 12)):
        cx, cy = rng.uniform(0.2, 0.8, 2)
        rx, ry = rng.uniform(0.04, 0.2, 2)
        angle = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        image[(u / rx) ** 2 + (v / ry) ** 2 <= 1] = rng.uniform(30, 230)
    image = ndimage.gaussian_filter(image, rng.uniform(0.8, 2.0)) + rng.normal(0, 4, image.shape)
    return image.clip(0, 255).astype(np.uint8)


def resized(pixels: np.ndarray, scale: float = 0.6) -> np.ndarray:
    h, w = pixels.shape[:2]
    return np.asarray(Image.fromarray(pixels).resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR))


def jpeg(pixels: np.ndarray, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def cropped(pixels: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """`fraction` of the width and of the height cut off, half on each side."""
    h, w = pixels.shape[:2]
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return pixels[dy : h - dy, dx : w - dx].copy()


def shifted(pixels: np.ndarray, offset: int = 25, gain: float = 1.1) -> np.ndarray:
    return (pixels.astype(np.float64) * gain + offset).clip(0, 255).astype(np.uint8)
