"""Throughput of each built-in ROI expert: images/s at 512x512 on one CPU core (a benchmark, not a test).

    python bench/experts.py [--seconds 2.0]

Each expert runs on a 512x512 image of its own kind: the bundled real images where one exists (pydicom's
chest radiograph, scikit-image's retina, IHC and cell), a synthetic one otherwise.
"""

from __future__ import annotations

import os

# one core: no BLAS/OpenMP threads, and the process pinned to a single CPU
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SIDE = 512


def resized(image: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    shape = (SIDE, SIDE) + image.shape[2:]
    return np.clip(resize(image, shape, preserve_range=True, anti_aliasing=True), 0, 255).astype(np.uint8)


def ellipse(centre_xy: tuple[float, float], radii_xy: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    return (cols - centre_xy[0]) ** 2 / radii_xy[0] ** 2 + (rows - centre_xy[1]) ** 2 / radii_xy[1] ** 2 <= 1


def to_uint8(values: np.ndarray, seed: int = 0, noise: float = 0.03) -> np.ndarray:
    noisy = values + np.random.default_rng(seed).normal(0, noise, values.shape)
    return (np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def chest_radiograph() -> np.ndarray:
    import pydicom
    from pydicom.data import get_testdata_file

    values = pydicom.dcmread(get_testdata_file("RG1_UNCI.dcm")).pixel_array.astype(np.float64)
    low, high = np.percentile(values, [0.5, 99.5])
    return resized((1.0 - np.clip((values - low) / (high - low), 0, 1)) * 255)  # MONOCHROME1: invert


def skin() -> np.ndarray:
    image = np.empty((SIDE, SIDE, 3))
    image[:] = (0.85, 0.65, 0.55)
    image[ellipse((270, 250), (120, 95))] = (0.5, 0.32, 0.22)
    return to_uint8(image)


def ct_slice() -> np.ndarray:
    image = np.zeros((SIDE, SIDE))
    image[ellipse((256, 240), (224, 160))] = 0.55
    image[ellipse((160, 224), (68, 100)) | ellipse((352, 224), (68, 100))] = 0.03
    image[ellipse((256, 344), (26, 26))] = 1.0
    return to_uint8(image)


def head_mri() -> np.ndarray:
    image = np.full((SIDE, SIDE), 0.04)
    image[ellipse((256, 256), (184, 224))] = 0.7
    image[ellipse((256, 256), (172, 212))] = 0.15
    image[ellipse((256, 256), (160, 200))] = 0.45
    image[ellipse((300, 200), (18, 16))] = 0.85
    return to_uint8(image)


def ultrasound() -> np.ndarray:
    rng = np.random.default_rng(0)
    echo = np.where(ellipse((260, 280), (76, 52)), 0.12, 0.45)
    return (np.clip(echo * rng.rayleigh(1.0, (SIDE, SIDE)) / 1.25, 0, 1) * 255).astype(np.uint8)


def workloads() -> dict[str, np.ndarray]:
    import skimage.data

    return {
        "chest-xray-lungs": chest_radiograph(),
        "skin-lesion": skin(),
        "fundus-disc": resized(skimage.data.retina()),
        "tissue": resized(skimage.data.immunohistochemistry()),
        "cells": resized(skimage.data.cell()),
        "ct-body": ct_slice(),
        "mri-head": head_mri(),
        "focal-region": ultrasound(),
        "foreground": ct_slice(),
    }


MODALITY = {
    "chest-xray-lungs": ("X-Ray", "chest"),
    "skin-lesion": ("Dermoscopy", None),
    "fundus-disc": ("Fundus", None),
    "tissue": ("Histopathology", None),
    "cells": ("Microscopy", None),
    "ct-body": ("CT", "chest"),
    "mri-head": ("MRI", "brain"),
    "focal-region": ("Ultrasound", None),
    "foreground": ("Other", None),
}


def measure(name: str, image: np.ndarray, seconds: float) -> tuple[float, float, int]:
    """(images/s, ms/image, regions found) over at least `seconds` of repeated runs after one warm-up."""
    from medtrinity.roi.experts import get_expert

    expert = get_expert(name)
    modality, organ = MODALITY[name]
    regions = len(expert.locate(image, modality, organ, []))  # warm-up: imports, caches
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 3:
        expert.locate(image, modality, organ, [])
        runs += 1
    return runs / elapsed, 1000 * elapsed / runs, regions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per expert")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"{'expert':<18} {'images/s':>9} {'ms/image':>9} {'regions':>8}   ({SIDE}x{SIDE}, one core)")
    for name, image in workloads().items():
        rate, ms, regions = measure(name, image, args.seconds)
        print(f"{name:<18} {rate:>9.1f} {ms:>9.1f} {regions:>8}")


if __name__ == "__main__":
    main()
