"""Green-box recovery (roi/experts/green_box.py): images/s on one CPU core, and what the two fills cost.

    python bench/green_box.py [--images 240]

The images are the test set of tests/fixtures/green_boxes.py: the demo's real medical images and generated
textures with 0-3 green outlines (1-4 px, PNG and JPEG 75-95), plus green-dominant images without a box.
Reports finding alone, finding + linear fill (the default) and finding + biharmonic inpainting, with recall and
precision at IoU >= 0.9 so a faster variant cannot hide a worse one.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 (after the thread limits above)
import sys  # noqa: E402 (after the thread limits above)
import time  # noqa: E402 (after the thread limits above)
from pathlib import Path  # noqa: E402 (after the thread limits above)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test set's generator


def main() -> None:
    from fixtures.build import box_iou
    from fixtures.green_boxes import boxed_images

    from medtrinity.roi.experts.green_box import find_green_boxes, recover_green_boxes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    args = parser.parse_args()
    images = boxed_images(args.images)
    pixels = sum(i.pixels.shape[0] * i.pixels.shape[1] for i in images) / len(images)
    print(f"{len(images)} images, mean {pixels / 1e3:.0f} kpx, {sum(len(i.boxes) for i in images)} boxes")

    tp = fp = fn = 0
    for image in images:
        found = [b.bbox for b in find_green_boxes(image.pixels) if b.confident]
        hits = sum(any(box_iou(t, f) >= 0.9 for f in found) for t in image.boxes)
        tp, fn, fp = tp + hits, fn + len(image.boxes) - hits, fp + len(found) - hits
    print(f"recall {tp / (tp + fn):.3f}  precision {tp / max(1, tp + fp):.3f}  (IoU >= 0.9)")

    runs = {
        "find only": lambda p: find_green_boxes(p),
        "find + linear fill": lambda p: recover_green_boxes(p, "linear"),
        "find + biharmonic fill": lambda p: recover_green_boxes(p, "biharmonic"),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        for image in images:
            run(image.pixels)
        elapsed = time.perf_counter() - start
        print(f"{name:24s} {len(images) / elapsed:8.1f} images/s")


if __name__ == "__main__":
    main()
