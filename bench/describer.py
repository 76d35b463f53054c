"""Throughput of the `openai` describer against a local server with a fixed latency.

A chat-completions server on 127.0.0.1 answers every request after exactly LATENCY seconds (asyncio, so
it never limits concurrency itself). The describer sends N requests at concurrency C; the ideal rate is
C / LATENCY, and the ratio measured / ideal shows the client's own overhead (prompt rendering, image
encoding, HTTP, parsing). No cache, so every record is a real request.

It also prints the bytes one request carries for a real fundus photograph stored as a JPEG (scikit-image's
retina, 1411x1411): as a full-size PNG data URL (the client before issue 17), as the stored JPEG bytes, and
as the JPEG resized to the default --max-image-side of 1024.

    .venv/bin/python bench/describer.py                 # concurrency 8, 32, 128; 200 ms latency
    .venv/bin/python bench/describer.py --latency 0.5 --concurrency 16 64 --waves 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from medtrinity.describe.base import get_describer
from raw_http import json_response, read_request
from medtrinity.records import ROI, Origin, Position, Sample

ANSWER = json.dumps(
    {
        "modality": "This is a CT image.",
        "structures": "The liver.",
        "roi": "One lesion.",
        "texture": "Hypodense.",
        "local_global": "Small relative to the organ.",
        "description": "A CT image of the liver with one lesion.",
    }
)


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float, body_sizes: list[int]
) -> None:
    reply = json.dumps(
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 500, "completion_tokens": 60},
        }
    ).encode()
    try:
        while True:
            _, body = await read_request(reader)
            body_sizes.append(len(body))
            await asyncio.sleep(latency)
            writer.write(json_response(reply))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class FixedLatencyServer:
    """A minimal HTTP/1.1 keep-alive server on its own event loop thread."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.body_sizes: list[int] = []  # bytes of each request body received
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(
                asyncio.start_server(
                    lambda r, w: _serve_connection(r, w, latency, self.body_sizes), "127.0.0.1", 0, backlog=1024
                )
            )
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def make_samples(n: int, size: int = 256) -> list[Sample]:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        pixels = rng.integers(0, 255, (size, size), dtype=np.uint8)
        roi = ROI(
            bbox=[40, 50, 90, 110],
            label="lesion",
            source="annotation",
            position=Position("left", "top"),
            area_ratio=4.6,
        )
        samples.append(
            Sample(
                id=f"b{i}",
                source="bench",
                origin=Origin(file=f"b{i}.png"),
                modality="CT",
                organ="liver",
                width=size,
                height=size,
                pixels=pixels,
                rois=[roi],
                coarse_caption="CT image of the liver showing a lesion.",
            )
        )
    return samples


def measure(url: str, concurrency: int, waves: int, latency: float) -> dict:
    describer = get_describer("openai", model="bench", base_url=url, concurrency=concurrency, timeout=60)
    samples = make_samples(concurrency * waves)
    describer.describe_batch(samples[: min(8, len(samples))])  # warm up imports and the server
    started = time.perf_counter()
    results = describer.describe_batch(samples)
    elapsed = time.perf_counter() - started
    failed = sum(isinstance(r, BaseException) for r in results)
    rate = len(samples) / elapsed
    ideal = concurrency / latency
    return {
        "concurrency": concurrency,
        "requests": len(samples),
        "failed": failed,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(rate, 1),
        "ideal_per_s": round(ideal, 1),
        "ratio": round(rate / ideal, 3),
    }


def fundus_sample(folder: Path, stored_as_jpeg: bool) -> Sample:
    """scikit-image's retina photograph (1411x1411 RGB), stored as a JPEG file; `stored_as_jpeg` False: a sample
    the client can only encode from its pixels (as it did for every image before issue 17)."""
    from PIL import Image
    from skimage import data

    path = folder / "retina.jpg"
    if not path.exists():
        Image.fromarray(data.retina()).save(path, quality=90)
    pixels = np.asarray(Image.open(path))
    roi = ROI(
        bbox=[600, 500, 800, 700],
        label="optic disc",
        source="annotation",
        position=Position("center", "middle"),
        area_ratio=2.0,
    )
    return Sample(
        id="retina",
        source="bench",
        origin=Origin(file="retina.jpg", intensity="8-bit RGB as stored"),
        modality="Fundus photography",
        organ="eye",
        width=pixels.shape[1],
        height=pixels.shape[0],
        pixels=pixels,
        rois=[roi],
        item=SimpleNamespace(path=path, frame=None) if stored_as_jpeg else None,
    )


def bytes_per_request(server: FixedLatencyServer) -> list[tuple[str, int]]:
    """Request body bytes for one fundus JPEG, sent the old way and the new ways."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cases = [
            ("full-size PNG (before)", False, 0),
            ("stored JPEG, --max-image-side 0", True, 0),
            ("stored JPEG resized, --max-image-side 1024", True, 1024),
        ]
        for label, stored, side in cases:
            describer = get_describer("openai", model="bench", base_url=server.url, max_image_side=side, timeout=60)
            before = len(server.body_sizes)
            describer.describe_batch([fundus_sample(Path(folder), stored)])
            rows.append((label, sum(server.body_sizes[before:])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency in seconds (default 0.2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--waves", type=int, default=5, help="requests per run = concurrency × waves (default 5)")
    args = parser.parse_args()
    server = FixedLatencyServer(args.latency)
    try:
        print(f"{'concurrency':>11} {'requests':>8} {'req/s':>8} {'ideal':>8} {'ratio':>6}")
        for concurrency in args.concurrency:
            row = measure(server.url, concurrency, args.waves, args.latency)
            print(
                f"{row['concurrency']:>11} {row['requests']:>8} {row['requests_per_s']:>8} "
                f"{row['ideal_per_s']:>8} {row['ratio']:>6}" + (f"  ({row['failed']} failed)" if row["failed"] else "")
            )
        print("\nbytes per request, a 1411x1411 fundus photograph stored as JPEG:")
        for label, size in bytes_per_request(server):
            print(f"  {label:<44} {size:>10,}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
