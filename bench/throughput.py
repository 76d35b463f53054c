"""Build throughput next to its floor, in the same run.

The floor is the least any build must do: decode each input image and mask, encode the stored PNG
and write the rows to Parquet. The ratio build/floor says what the stages (ROIs, caption, retrieval,
describer, verification) cost on top of that.

    python bench/throughput.py --n 200 [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.image_mask import make_image_mask_dataset  # noqa: E402  (the tests' generator: both measure the same data)

from medtrinity.pipeline.config import BuildConfig  # noqa: E402
from medtrinity.pipeline.runner import run_build  # noqa: E402


def floor(root: Path, out: Path) -> float:
    started = time.perf_counter()
    rows = []
    for image in sorted((root / "images").glob("*.png")):
        pixels = np.asarray(Image.open(image))
        mask = np.asarray(Image.open(root / "masks" / image.name)) > 127
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=3)
        rows.append({"image": buf.getvalue(), "area": int(mask.sum())})
    pq.write_table(pa.Table.from_pylist(rows), out)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="image+mask pairs (512x512)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        recipe = make_image_mask_dataset(tmp / "data", args.n, size=512)
        floor_s = floor(tmp / "data", tmp / "floor.parquet")
        config = BuildConfig(sources=[f"{recipe}:{tmp / 'data'}"], out=str(tmp / "out"), workers=args.workers)
        started = time.perf_counter()
        manifest = run_build(config, show_progress=False)
        build_s = time.perf_counter() - started
    assert manifest["totals"]["written"] == args.n, manifest["totals"]
    print(f"images: {args.n} (512x512), workers: {args.workers}")
    print(f"floor  (decode + PNG + Parquet): {args.n / floor_s:8.1f} img/s")
    print(f"build  (all stages)            : {args.n / build_s:8.1f} img/s")
    print(f"ratio  build / floor           : {floor_s / build_s:8.3f}")


if __name__ == "__main__":
    main()
