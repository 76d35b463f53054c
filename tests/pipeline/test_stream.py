"""A shard streams its records: CPU stages run while earlier records wait for a model, up to the window, with
the records and quarantine of the stage-by-stage order; --concurrency bounds the requests of the whole build;
the default shard size shrinks on a small input and a resume keeps the size its build started with."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fixtures import model_servers
from fixtures.build import read_rows
from fixtures.chat_server import ChatServer, Scripted, completion

from medtrinity.errors import StageError, UserError
from medtrinity.pipeline.config import BuildConfig, default_shard_size
from medtrinity.pipeline.runner import run_build
from medtrinity.pipeline.shard import process_batch, run_stage
from medtrinity.pipeline.stream import ShardStream


class Item:
    def __init__(self, i: int) -> None:
        self.id, self.source, self.file = f"i{i:02d}", "toy", f"{i:02d}.png"
        self.value = i


class Read:
    """A CPU stage: records when each item passed; item 3 is unreadable."""

    name = "read"

    def __init__(self, log: list) -> None:
        self.log = log

    def __call__(self, item):
        self.log.append(("read", item.value, time.monotonic()))
        if item.value == 3:
            raise StageError("image file 03.png is missing")
        return item


class SlowModel:
    """A batch stage waiting on a server: each batch answers after `delay`; item 5 is refused by the server."""

    name = "describe"
    concurrent_batches = True

    def __init__(self, log: list, delay: float) -> None:
        self.log, self.delay = log, delay
        self.in_flight = self.most = 0
        self.lock = threading.Lock()

    def process_batch(self, records):
        with self.lock:
            self.in_flight += len(records)
            self.most = max(self.most, self.in_flight)
        self.log.append(("sent", [r.value for r in records], time.monotonic()))
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= len(records)
        return [StageError("the server refused this request") if r.value == 5 else r for r in records]


class Encode:
    name = "encode"

    def __call__(self, record):
        return record


def test_cpu_stages_run_while_records_wait_for_the_model_and_records_leave_in_item_order():
    log: list = []
    model = SlowModel(log, delay=0.3)
    stages = [Read(log), model, Encode()]
    items = [Item(i) for i in range(24)]
    out = list(ShardStream(stages, run_stage, window=12).run(items))
    assert [item.value for item, _, _ in out] == list(range(24))
    failures = {item.value: (stage, str(err)) for item, _, failure in out if failure for stage, err in [failure]}
    assert failures == {3: ("read", "image file 03.png is missing"), 5: ("describe", "the server refused this request")}
    first_answer = log[[e[0] for e in log].index("sent")][2] + 0.3
    read_before = [value for kind, value, at in log if kind == "read" and at < first_answer]
    assert len(read_before) == 12  # the window filled while the first request was out: overlap, bounded
    assert model.most > 1 and model.most <= 12  # many requests in flight, never more than the window


def test_a_stop_of_the_whole_run_in_a_batch_reaches_the_shard():
    class Refusing:
        name, concurrent_batches = "describe", True

        def process_batch(self, records):
            raise UserError("the server refused the API key")

    with pytest.raises(UserError, match="API key"):
        list(ShardStream([Refusing()], run_stage, window=4).run([Item(i) for i in range(6)]))


def test_process_batch_and_the_stream_agree_on_a_failing_batch_stage(tmp_path):
    class Broken:
        name = "locate"

        def process_batch(self, records):
            raise RuntimeError("model crashed")

    items = [Item(i) for i in range(3)]
    _, bad = process_batch(items, [Broken()], tmp_path / "errors.log")
    streamed = list(ShardStream([Broken()], run_stage, window=2, errors_log=tmp_path / "errors.log").run(items))
    assert [(item.id, failure[0], str(failure[1])) for item, _, failure in streamed] == [
        (q["id"], q["stage"], "model crashed") for q in bad
    ]


def test_the_default_shard_size_gives_every_worker_several_shards():
    assert default_shard_size(2000, 2) == 250
    assert default_shard_size(100_000, 4) == 1000
    assert default_shard_size(12, 2) == 2
    assert default_shard_size(21, 1) == 1000  # one worker: one shard, as before


def test_a_resume_keeps_the_shard_size_its_build_chose_whatever_workers_it_gets(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    first = run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(out), workers=2), show_progress=False)
    assert first["config"]["shard_size"] == 2  # 12 images, 2 workers: 6 shards
    assert json.loads((out / "_progress" / "run.json").read_text())["shard_size"] == 2
    assert len(first["shards"]["data"]) == 6
    (out / "_progress" / "part-00004.json").unlink()  # as if the run had stopped before this shard
    again = run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(out), resume=True), show_progress=False)
    assert again["config"]["shard_size"] == 2 and again["totals"] == first["totals"]
    with pytest.raises(UserError, match="--shard-size 2 -> 5"):
        run_build(
            BuildConfig(sources=[f"{recipe}:{root}"], out=str(out), resume=True, shard_size=5), show_progress=False
        )


def test_concurrency_bounds_the_requests_of_the_whole_build_across_workers(tmp_path):
    from fixtures.image_mask import make_image_mask_dataset

    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, 24)
    arrivals: list[float] = []

    def slow(body, headers):  # runs under the server's lock; the delay is served outside it
        if body["max_tokens"] != 1:  # not the preflight's probes
            arrivals.append(time.monotonic())
        return Scripted(body=completion(model_servers.model_answer(body)), delay=0.3)

    with ChatServer(slow, models=["m"]) as server:
        config = BuildConfig(
            sources=[f"{recipe}:{root}"],
            out=str(tmp_path / "out"),
            describer="openai",
            model="m",
            base_url=server.url,
            concurrency=4,
            workers=2,
            on_contradiction="keep",
        )
        manifest = run_build(config, show_progress=False)
    # requests on the server at once: those that arrived within one answer time of each other
    most = max(sum(1 for other in arrivals if at - 0.29 < other <= at) for at in arrivals)
    assert manifest["totals"]["seen"] == 24
    assert len(arrivals) == 24
    assert 3 <= most <= 4  # two workers holding two each: the server never saw more than 4
    assert len(read_rows(tmp_path / "out")) + manifest["totals"]["quarantined"] == 24
    with pytest.raises(Exception, match="--concurrency 2 is the bound for the whole build"):
        BuildConfig(sources=[f"{recipe}:{root}"], out="x", describer="openai", model="m", concurrency=2, workers=4)
