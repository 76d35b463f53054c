"""How the `openai` describer paces and ends its requests: AIMD on timeouts and 429s, and a build that stops
cleanly when the server dies half-way (finished shards kept, `--resume` continues)."""

from __future__ import annotations

import threading

import pyarrow.parquet as pq
import pytest
from fixtures import model_servers
from fixtures.chat_server import ChatServer, Scripted, completion
from fixtures.image_mask import make_image_mask_dataset
from fixtures.model_servers import nodule_sample

from medtrinity.describe.base import get_describer
from medtrinity.describe.concurrency import AdaptiveLimit
from medtrinity.describe.server_errors import ServerGone
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build


def busy_then_free(first_answer: Scripted, busy_requests: int):
    """A server whose first `busy_requests` requests meet a full queue, then answers at once."""
    calls = []

    def script(body, headers):
        calls.append(1)
        if len(calls) <= busy_requests:
            return first_answer
        return Scripted(body=completion(model_servers.model_answer(body)))

    return script


@pytest.mark.parametrize(
    "busy",
    [
        Scripted(body=completion("{}"), delay=0.8),  # answers after the client's timeout
        # after a moment, so that the four requests are all on the wire (one window) before the first 429
        Scripted(
            status=429, body={"error": {"message": "Rate limit reached"}}, headers={"Retry-After": "0"}, delay=0.2
        ),
    ],
)
def test_timeouts_and_429s_halve_the_requests_in_flight_once_per_window(busy):
    with ChatServer(busy_then_free(busy, 4)) as server:
        describer = get_describer(
            "openai", model="m", base_url=server.url, concurrency=4, timeout=0.4, backoff=0.01, max_attempts=3
        )
        results = describer.describe_batch([nodule_sample(i) for i in range(4)])
        assert len(server.requests) == 8
    assert all(not isinstance(r, BaseException) for r in results), results
    # four congestion signals from one window of requests: one halving (4 -> 2), not four (4 -> 1)
    assert describer.lowest_in_flight == 2 and describer.usage.retries == 4


def test_the_in_flight_limit_grows_back_by_one_per_window_up_to_the_bound():
    gate = AdaptiveLimit(8)
    gate.congested(0)
    gate.congested(0)  # the same window: ignored
    assert gate.limit == 4.0
    for _ in range(4):
        gate.answered()
    assert 4.8 < gate.limit < 5.0  # about one more after one window of four answers
    for _ in range(100):
        gate.answered()
    assert gate.limit == 8.0  # never above --concurrency


def test_the_default_timeout_allows_a_slow_local_server():
    describer = get_describer("openai", model="m", base_url="http://127.0.0.1:1/v1")
    assert describer.timeout == 600.0 and BuildConfig(sources=["demo:."], out="x").request_timeout == 600.0


def test_a_server_dying_mid_build_stops_it_cleanly_and_resume_continues(tmp_path):
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, 12)
    behaviour = model_servers.llama_server()
    build_requests = []
    dead = threading.Event()

    def dies_after_the_first_shard(body, headers):
        if body["max_tokens"] != 1:
            build_requests.append(body)
        if len(build_requests) > 4 and not dead.is_set():  # shard 0 is answered; the server process dies
            dead.set()
            threading.Thread(target=first.stop).start()
        if dead.is_set():
            return Scripted(
                status=503, body={"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
            )
        return behaviour(body, headers)

    first = ChatServer(dies_after_the_first_shard, models=behaviour.models)
    config = {
        "sources": [f"{recipe}:{root}"],
        "out": str(tmp_path / "out"),
        "describer": "openai",
        "model": "tiny.gguf",
        "base_url": first.url,
        "shard_size": 4,
        "request_timeout": 5,
        "retry_backoff": 0.01,
        "max_attempts": 3,
    }
    with first, pytest.raises(ServerGone) as caught:
        run_build(BuildConfig(**config), show_progress=False)
    message = str(caught.value)
    assert message.startswith(
        f"the model server at {first.url} stopped answering: 3 requests in a row could not "
        f"connect (connection to {first.url} failed (ConnectError)); start it again. "
    )
    assert message.endswith(
        "The build stopped at shard 1: finished shards are kept; rerun with --resume once the server is fixed"
    )
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "_progress").glob("part-*.json")) == ["part-00000.json"]
    assert sorted(p.name for p in (out / "data").glob("*.parquet")) == ["part-00000.parquet"]
    kept = pq.read_table(out / "data" / "part-00000.parquet").to_pylist()

    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    with ChatServer(behaviour, models=behaviour.models, port=port) as again:
        manifest = run_build(BuildConfig(**config, resume=True), show_progress=False)
        resumed = [r for r in again.requests if r["max_tokens"] != 1]
    assert manifest["totals"] == {"seen": 12, "written": 12, "quarantined": 0}
    assert len(resumed) == 8  # shards 1 and 2 only; shard 0 was kept
    assert pq.read_table(out / "data" / "part-00000.parquet").to_pylist() == kept
