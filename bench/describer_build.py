"""A whole build with `--describer openai` against a server in its own process that answers after exactly L.

N generated ultrasound images with masks (the tests' generator) are built three ways in one run:
- against the same kind of server answering at once: the model-free rate R_cpu (every stage, the client's
  own work and the server's, without the model's latency);
- against a server answering every request after exactly L seconds, at --concurrency C for each C: the
  measured rate, next to the ideal min(R_cpu, C / L) — what a build whose CPU stages and requests overlap
  perfectly would reach.
The server is a separate Python process (asyncio, HTTP/1.1 keep-alive), so its CPU time is its own: it is
printed beside each run, as a share of one core. Rates are records per second of the build itself (the
manifest's elapsed_seconds less its engine_seconds: the shards, without start-up and the server preflight);
each run writes a fresh folder, so the request cache never answers. `--on-contradiction keep`: the answer
is the same for every record, and repairs would add requests the ideal does not count.

    .venv/bin/python bench/describer_build.py                       # N 2000, L 0.2 s, C 32 128 512
    .venv/bin/python bench/describer_build.py --n 500 --concurrency 32 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.image_mask import make_image_mask_dataset  # the tests' generator
from raw_http import json_response, read_request

MODEL = "bench-vlm"
IMAGE_TOKENS = 64  # what a vision encoder adds per image: the preflight checks that images reach the model
ANSWER = json.dumps(
    {
        "modality": "This is a breast ultrasound image.",
        "structures": "The image shows breast tissue with a well-circumscribed hypoechoic region.",
        "roi": "The hypoechoic mass lies in the marked region.",
        "texture": "The mass is darker than the surrounding parenchyma, with a fairly uniform interior.",
        "local_global": "The mass occupies a small part of the field of view.",
        "description": "Breast ultrasound image showing a hypoechoic mass in the marked region.",
    }
)


# ---------------------------------------------------------------- the server (run with --serve)
def _prompt_tokens(body: bytes) -> int:
    """What a vision server counts: text at ~4 characters a token, plus IMAGE_TOKENS for an image (not its
    base64). Found in the raw bytes, so the server spends no time parsing the JSON."""
    start = body.find(b"data:image/")
    if start < 0:
        return len(body) // 4
    end = body.find(b'"', start)
    return (len(body) - (end - start)) // 4 + IMAGE_TOKENS


async def _serve_connection(reader, writer, latency: float) -> None:
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}).encode()
    try:
        while True:
            header, body = await read_request(reader)
            if header.startswith(b"GET"):
                writer.write(json_response(models))
                continue
            await asyncio.sleep(latency)
            reply = {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": _prompt_tokens(body), "completion_tokens": 96},
            }
            writer.write(json_response(json.dumps(reply).encode()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(latency: float) -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: _serve_connection(r, w, latency), "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class ServerProcess:
    """`--serve` in a child process; its CPU seconds read from /proc."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--latency", str(latency)], stdout=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/v1"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------- the builds
def build_rate(
    source: str, out: Path, server: ServerProcess, concurrency: int, workers: int, limit: int | None = None
) -> tuple[float, float]:
    """(records per second of the build, the server's CPU use as a share of one core meanwhile)."""
    from medtrinity.pipeline.config import BuildConfig
    from medtrinity.pipeline.runner import run_build

    config = BuildConfig(
        sources=[source],
        out=str(out),
        describer="openai",
        model=MODEL,
        base_url=server.url,
        concurrency=concurrency,
        workers=workers,
        on_contradiction="keep",
        limit=limit,
    )
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    manifest = run_build(config, show_progress=False)
    wall = time.monotonic() - started
    totals = manifest["totals"]
    if totals["written"] != totals["seen"]:
        raise SystemExit(f"the build quarantined records: {totals}; see {out}/quarantine")
    rate = totals["seen"] / (manifest["elapsed_seconds"] - manifest["engine_seconds"])
    return rate, (server.cpu_seconds() - cpu_before) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency L in seconds (default 0.2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--workers", type=int, default=1, help="build workers (default 1)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        recipe = make_image_mask_dataset(root, args.n, size=args.size)
        source = f"{recipe}:{root}"
        instant, slow = ServerProcess(0.0), ServerProcess(args.latency)
        try:
            # A first build pays the imports and the stages' set-up; without this warm-up R_cpu would carry
            # them and understate the ideal (measured/ideal above 1).
            build_rate(source, Path(tmp) / "warm-up", instant, max(args.concurrency), args.workers, limit=64)
            r_cpu, cpu = build_rate(source, Path(tmp) / "instant", instant, max(args.concurrency), args.workers)
            print(
                f"{args.n} images of {args.size}x{args.size}, --workers {args.workers}, server latency "
                f"{args.latency * 1000:.0f} ms, its own process"
            )
            print(f"R_cpu (server answering at once): {r_cpu:.1f} records/s (server CPU {cpu:.0%} of a core)")
            print(f"{'C':>5} {'C/L':>8} {'ideal':>8} {'measured':>9} {'ratio':>6} {'server CPU':>11}")
            for concurrency in args.concurrency:
                rate, cpu = build_rate(source, Path(tmp) / f"c{concurrency}", slow, concurrency, args.workers)
                ideal = min(r_cpu, concurrency / args.latency)
                print(
                    f"{concurrency:>5} {concurrency / args.latency:>8.0f} {ideal:>8.1f} {rate:>9.1f} "
                    f"{rate / ideal:>6.2f} {cpu:>10.0%}"
                )
        finally:
            instant.stop()
            slow.stop()


if __name__ == "__main__":
    main()
