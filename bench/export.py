"""Export throughput next to its floor, in the same run.

The floor is the least any export of the same data must do: read the build's Parquet shards (every column,
in the same batches) and write the same bytes the export wrote, as the same number of files. The ratio
floor/export says what QA generation, JSON, tar and COCO bookkeeping cost on top of that.

    python bench/export.py --n 300 [--size 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.image_mask import make_image_mask_dataset

from medtrinity.export.build_reader import Build
from medtrinity.export.run import FORMATS, ExportOptions, export_build
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build


def floor(build: Path, written: dict[str, bytes], out: Path) -> float:
    """Seconds to read every row of the build and write `written` (relative path -> bytes) under `out`."""
    started = time.perf_counter()
    rows = sum(len(batch) for batch in Build(build).batches())
    for name, data in written.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert rows
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="image+mask pairs in the build")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each export; the fastest counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        recipe = make_image_mask_dataset(tmp / "data", args.n, size=args.size)
        build = tmp / "build"
        run_build(BuildConfig(sources=[f"{recipe}:{tmp / 'data'}"], out=str(build)), show_progress=False)
        print(f"records: {args.n} ({args.size}x{args.size}, one ROI each)")
        print(f"{'format':<12}{'export rec/s':>14}{'floor rec/s':>14}{'floor/export':>14}{'MB written':>12}")
        for export_format in FORMATS:
            out = tmp / f"out-{export_format}"
            export_s = floor_s = float("inf")
            for attempt in range(args.repeat):  # the best of a few: the first pays for imports and a cold cache
                started = time.perf_counter()
                summary = export_build(export_format, build, out, ExportOptions(overwrite=True))
                export_s = min(export_s, time.perf_counter() - started)
                written = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
                floor_s = min(floor_s, floor(build, written, tmp / f"floor-{export_format}-{attempt}"))
            records = sum(summary.written.values())
            megabytes = sum(len(b) for b in written.values()) / 1e6
            print(
                f"{export_format:<12}{records / export_s:>14.1f}{records / floor_s:>14.1f}"
                f"{floor_s / export_s:>14.3f}{megabytes:>12.1f}"
            )


if __name__ == "__main__":
    main()
