"""How a build scales with workers and with the input, for `--engine local` and `--engine ray`.

1. Rate: N generated images (default 2000) built with --workers 1 and --workers 2 at the default shard size
   (which shrinks on a small input so that every worker gets shards); the ratio 2 workers / 1 worker.
2. Memory: the peak resident memory of the whole build (the command, its workers, and for Ray its own
   processes: every process descended from the command, summed, sampled every 0.1 s) at 1k and at 20k
   images, with --workers 2; the ratio 20k / 1k says whether memory stays flat as the input grows.
Each build is the `medtrinity build` command in a process of its own, writing a fresh folder; rates are
records per second of the build itself: the manifest's elapsed_seconds less its engine_seconds (starting
and stopping Ray, about 5 s here, paid once per build however large; printed beside the rates).
3. `--stage-costs`: the numbers docs/SCALE.md plans from: CPU seconds per image in each stage, per modality
   (the demo's real images: CT, MRI, ultrasound, X-ray, nuclear medicine, fundus, histopathology, microscopy;
   each record run --repeat times, single-threaded process CPU time), the bytes each stored record takes,
   and the model tokens the three-level prompt of the `openai` describer costs per record (its text at ~4
   characters a token, and the answer the grounded describer writes for it as a stand-in for the model's).

    .venv/bin/python bench/scale.py                              # both engines, 2000 images, 1k vs 20k
    .venv/bin/python bench/scale.py --engines local --rss-n 1000 5000
    .venv/bin/python bench/scale.py --stage-costs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.image_mask import make_image_mask_dataset  # the tests' generator
from fixtures.build import build_command

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    """Bytes resident in `root` and every process descended from it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def build(source: str, out: Path, engine: str, workers: int) -> tuple[float, float, float]:
    """(records per second, peak resident MiB of the build's process tree, seconds starting and stopping the
    engine: Ray's start-up, not counted in the rate)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = build_command(source, out, "--engine", engine, "--workers", str(workers))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)
    finally:  # the bench stopped: the build goes with it
        if process.poll() is None:
            process.kill()
    if process.returncode != 0:
        raise SystemExit(f"build failed: {process.stderr.read()}")
    manifest = json.loads((out / "manifest.json").read_text())
    engine_seconds = manifest["engine_seconds"]
    rate = manifest["totals"]["seen"] / (manifest["elapsed_seconds"] - engine_seconds)
    return rate, peak / 2**20, engine_seconds


def mean(values: list) -> float:
    return sum(values) / len(values)


def stage_costs(repeat: int) -> None:
    import io
    from collections import defaultdict

    import pyarrow as pa
    import pyarrow.parquet as pq

    from medtrinity.describe.prompting import SYSTEM_PROMPT, render_prompt
    from medtrinity.pipeline.config import BuildConfig, SourceSpec
    from medtrinity.pipeline.runner import iter_items, open_sources
    from medtrinity.pipeline.shard import stages_for
    from medtrinity.pipeline.store import parquet_write_options
    from medtrinity.records import SCHEMA, sample_to_row

    config = BuildConfig(sources=[SourceSpec(recipe="demo", path=".")], out=tempfile.mkdtemp())
    stages = stages_for(config)
    items = list(iter_items(open_sources(config), None))
    cpu: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    count: dict[str, int] = defaultdict(int)
    record_bytes, prompt_chars, answer_chars = [], [], []
    for item in items:
        for _ in range(repeat):
            record = item
            for stage in stages:
                started = time.process_time()
                record = stage(record)
                cpu[getattr(record, "modality", None) or "?"][stage.name] += time.process_time() - started
            count[record.modality] += 1
        row = sample_to_row(record)
        sink = io.BytesIO()
        table = pa.Table.from_pylist([row], schema=SCHEMA)
        pq.write_table(table, sink, **parquet_write_options(SCHEMA))  # as the store writes it
        record_bytes.append(len(sink.getvalue()))
        prompt_chars.append(len(SYSTEM_PROMPT) + len(render_prompt(record)))
        answer_chars.append(sum(len(v) for v in vars(record.attributes).values()) + len(record.description))
    names = [stage.name for stage in stages]
    print(f"CPU ms per image and stage ({len(items)} demo images x {repeat}, one core):")
    print(f"{'modality':<22}" + "".join(f"{n[:9]:>10}" for n in names) + f"{'total':>10}")
    for modality in sorted(cpu):
        per = {n: cpu[modality][n] / count[modality] * 1000 for n in names}
        print(f"{modality:<22}" + "".join(f"{per[n]:>10.1f}" for n in names) + f"{sum(per.values()):>10.1f}")
    everything = {n: sum(cpu[m][n] for m in cpu) / sum(count.values()) * 1000 for n in names}
    print(
        f"{'all (mean)':<22}" + "".join(f"{everything[n]:>10.1f}" for n in names) + f"{sum(everything.values()):>10.1f}"
    )
    print(
        f"stored record: {mean(record_bytes) / 1024:.0f} KiB mean (Parquet as the store writes it, one row; "
        f"{min(record_bytes) / 1024:.0f}-{max(record_bytes) / 1024:.0f} KiB)"
    )
    print(
        f"three-level prompt: {mean(prompt_chars):.0f} characters of text (~{mean(prompt_chars) / 4:.0f} tokens) "
        f"+ the image; answer ~{mean(answer_chars):.0f} characters (~{mean(answer_chars) / 4:.0f} tokens)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images for the rate (default 2000)")
    parser.add_argument(
        "--rss-n",
        type=int,
        nargs=2,
        default=[1000, 20000],
        dest="rss_n",
        help="the two input sizes compared for memory (default 1000 20000)",
    )
    parser.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument(
        "--stage-costs",
        action="store_true",
        dest="stage_costs",
        help="only the per-stage CPU cost, record bytes and prompt tokens (see above)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each demo record for --stage-costs")
    args = parser.parse_args()
    if args.stage_costs:
        stage_costs(args.repeat)
        return

    with tempfile.TemporaryDirectory() as tmp:
        sizes = sorted({args.n, *args.rss_n})
        sources = {}
        for n in sizes:
            root = Path(tmp) / f"images-{n}"
            sources[n] = f"{make_image_mask_dataset(root, n, size=args.size)}:{root}"
        print(f"images of {args.size}x{args.size}, {os.cpu_count()} cores, default shard size")
        for engine in args.engines:
            one, _, start_one = build(sources[args.n], Path(tmp) / f"{engine}-w1", engine, 1)
            two, _, start_two = build(sources[args.n], Path(tmp) / f"{engine}-w2", engine, 2)
            print(
                f"{engine:>5}: {args.n} images, 1 worker {one:.1f}/s, 2 workers {two:.1f}/s: ratio {two / one:.2f} "
                f"(engine start and stop, not counted: {start_one:.1f} s and {start_two:.1f} s)"
            )
            small, large = args.rss_n
            _, rss_small, _ = build(sources[small], Path(tmp) / f"{engine}-rss-{small}", engine, 2)
            _, rss_large, _ = build(sources[large], Path(tmp) / f"{engine}-rss-{large}", engine, 2)
            print(
                f"{engine:>5}: peak RSS (all processes, 2 workers) {small} images {rss_small:.0f} MiB, "
                f"{large} images {rss_large:.0f} MiB: ratio {rss_large / rss_small:.2f}"
            )


if __name__ == "__main__":
    main()
