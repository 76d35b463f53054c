"""One shard (pipeline/shard.py) in-process: every item ends in exactly one of data or quarantine, in item order,
with counts, describer usage, progress in batches, a stopped server and a transient retry.

The stages here are small stand-ins with the stage protocol (a `name`, called per record or given the batch),
so that which record fails where, and how, is certain; tests/pipeline/test_build.py runs the real stages."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from medtrinity.describe.server_errors import ServerGone
from medtrinity.errors import StageError, TransientError, UserError
from medtrinity.pipeline import shard
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.store import ShardStore
from medtrinity.records import Origin, Sample
from medtrinity.sources.base import SourceItem

PNG = b"\x89PNG\r\n\x1a\n"


def items(n: int, source: str = "toy", start: int = 0) -> list[SourceItem]:
    return [
        SourceItem(source=source, root="/data/toy", file=f"images/case{i:03d}.png") for i in range(start, start + n)
    ]


def file_of(record) -> str:
    return record.file if isinstance(record, SourceItem) else record.origin.file


class Encode:
    """The last stage: the record as a Sample with its image bytes (a redacted one for the files named)."""

    name = "encode"

    def __init__(self, redacted: tuple[str, ...] = ()) -> None:
        self.redacted = redacted

    def __call__(self, item: SourceItem) -> Sample:
        origin = Origin(file=item.file, redacted=[[0, 0, 2, 2]] if item.file in self.redacted else None)
        sample = Sample(id=item.id, source=item.source, origin=origin, modality="CT", width=4, height=4)
        sample.image_bytes = PNG
        return sample


class Failing:
    """A per-record stage that raises the given exception for the files named and passes the others on."""

    def __init__(self, name: str, errors: dict[str, BaseException]) -> None:
        self.name, self.errors, self.seen = name, errors, []

    def __call__(self, record):
        self.seen.append(file_of(record))
        if file_of(record) in self.errors:
            raise self.errors[file_of(record)]
        return record


class Batch:
    """A stage given the whole batch (as a model client is), keeping usage totals across shards."""

    name = "describe"

    def __init__(
        self, batch_size: int | None = None, error: BaseException | None = None, transient: tuple[str, ...] = ()
    ) -> None:
        self.batch_size, self.error, self.transient = batch_size, error, transient
        self.batches: list[list[str]] = []
        self.requests = 0

    def process_batch(self, records: list) -> list:
        self.batches.append([file_of(r) for r in records])
        if self.error is not None:
            raise self.error
        self.requests += len(records)
        return [TransientError("model server unreachable") if file_of(r) in self.transient else r for r in records]

    def usage(self) -> dict[str, int]:
        return {"requests": self.requests, "cache_hits": 0}


def config(out: Path, **kw) -> BuildConfig:
    """The build config of a shard run, with its output folder made as the runner makes it."""
    ShardStore(out).prepare({"sources": [{"recipe": "toy", "path": "/data/toy"}]}, resume=True, overwrite=False)
    return BuildConfig(sources=["toy:/data/toy"], out=str(out), **kw)


@pytest.fixture
def use_stages(monkeypatch):
    """Run shards with the given stage list instead of the ones built from the config."""

    def use(stages: list) -> list:
        monkeypatch.setattr(shard, "stages_for", lambda config: stages)
        return stages

    return use


# ---------------------------------------------------------------- one batch
def test_every_item_ends_written_or_quarantined_in_item_order(tmp_path):
    log = tmp_path / "errors.log"
    read = Failing("read", {"images/case003.png": StageError("image file is empty")})
    describe = Failing(
        "describe",
        {
            "images/case001.png": TransientError("model server unreachable (timeout)"),
            "images/case002.png": ValueError("could not convert 'x' to float"),
        },
    )
    rows, bad = shard.process_batch(items(5), [read, describe, Encode()], log)

    assert [r["origin"]["file"] for r in rows] == ["images/case000.png", "images/case004.png"]
    assert [r["id"] for r in rows] == [items(5)[0].id, items(5)[4].id]
    assert bad == [
        {
            "id": items(5)[1].id,
            "source": "toy",
            "file": "images/case001.png",
            "stage": "describe",
            "reason": "model server unreachable (timeout)",
            "transient": True,
        },
        {
            "id": items(5)[2].id,
            "source": "toy",
            "file": "images/case002.png",
            "stage": "describe",
            "reason": "unexpected ValueError: could not convert 'x' to float",
            "transient": False,
        },
        {
            "id": items(5)[3].id,
            "source": "toy",
            "file": "images/case003.png",
            "stage": "read",
            "reason": "image file is empty",
            "transient": False,
        },
    ]
    assert describe.seen == ["images/case000.png", "images/case001.png", "images/case002.png", "images/case004.png"]
    # Only the unexpected failure leaves a traceback, headed by the source, file and stage.
    text = log.read_text()
    assert text.startswith("--- toy images/case002.png stage=describe\nTraceback (most recent call last):\n")
    assert text.count("--- ") == 1 and "ValueError: could not convert 'x' to float" in text


def test_an_unexpected_failure_of_a_sample_is_logged_under_its_origin_file(tmp_path):
    log = tmp_path / "errors.log"
    broken = Failing("verify", {"images/case000.png": KeyError("rois")})
    rows, bad = shard.process_batch(items(1), [Encode(), broken], log)
    assert rows == [] and bad[0]["reason"] == "unexpected KeyError: 'rois'" and bad[0]["stage"] == "verify"
    assert log.read_text().startswith("--- toy images/case000.png stage=verify\n")


def test_without_an_errors_log_nothing_is_written(tmp_path):
    broken = Failing("read", {"images/case000.png": RuntimeError("boom")})
    assert shard.run_stage(broken, items(1), None)[0].args == ("boom",)
    batch = Batch(error=RuntimeError("boom"))
    assert [type(e) for e in shard.run_stage(batch, items(2), None)] == [RuntimeError, RuntimeError]
    assert list(tmp_path.iterdir()) == []


def test_a_failing_batch_stage_quarantines_its_batch_and_logs_only_the_unexpected(tmp_path):
    log = tmp_path / "errors.log"
    refused = Batch(error=StageError("the model refused the image"))
    outputs = shard.run_stage(refused, items(3), log)
    assert [str(o) for o in outputs] == ["the model refused the image"] * 3
    assert not log.exists()
    broken = Batch(error=AttributeError("'int' object has no attribute 'strip'"))
    outputs = shard.run_stage(broken, items(2), log)
    assert [type(o) for o in outputs] == [AttributeError, AttributeError]
    assert log.read_text().startswith("--- toy images/case000.png stage=describe\n")
    assert shard.run_stage(Batch(error=RuntimeError("x")), [], log) == []


def test_a_user_error_of_a_batch_stage_stops_the_run():
    with pytest.raises(UserError, match="^the server refused the API key$"):
        shard.run_stage(Batch(error=UserError("the server refused the API key")), items(2))


def test_failure_reasons():
    assert shard.failure_reason(StageError("mask file masks/a.png is missing")) == "mask file masks/a.png is missing"
    assert shard.failure_reason(TransientError("timeout")) == "timeout"
    assert (
        shard.failure_reason(ZeroDivisionError("division by zero")) == "unexpected ZeroDivisionError: division by zero"
    )


# ---------------------------------------------------------------- what a shard is made of
def test_batch_size_is_at_least_32_or_what_a_stage_asks_for():
    assert shard.ITEMS_PER_BATCH == 32
    assert shard.batch_size_for([Encode()]) == 32
    assert shard.batch_size_for([Batch(batch_size=None), Encode()]) == 32
    assert shard.batch_size_for([Batch(batch_size=8)]) == 32
    assert shard.batch_size_for([Batch(batch_size=33), Batch(batch_size=100)]) == 100


def test_describer_usage_is_the_first_stage_that_keeps_it():
    class NoUsageYet:
        name = "caption"

        def usage(self):
            return None

    batch = Batch()
    batch.requests = 7
    assert shard.describer_usage([Encode(), NoUsageYet(), batch]) == {"requests": 7, "cache_hits": 0}
    assert shard.describer_usage([Encode(), NoUsageYet()]) is None


def test_redacted_images_are_counted_per_source_in_the_marker_extras():
    rows = [
        {"source": "a", "origin": {"redacted": [[0, 0, 1, 1]]}},
        {"source": "a", "origin": {"redacted": None}},
        {"source": "b", "origin": {"redacted": [[1, 1, 2, 2]]}},
        {"source": "a", "origin": {"redacted": [[2]]}},
    ]
    assert shard.with_redacted(None, rows) == {"redacted": {"a": 2, "b": 1}}
    usage = {"describer_usage": {"requests": 1}}
    assert shard.with_redacted(usage, rows) == {"describer_usage": {"requests": 1}, "redacted": {"a": 2, "b": 1}}
    assert shard.with_redacted(usage, rows[1:2]) is usage
    assert shard.with_redacted(None, []) is None


def test_stages_are_built_once_per_config(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(shard, "_STAGES_BY_CONFIG", {})
    monkeypatch.setattr(shard, "build_stages", lambda config: built.append(config.top_k) or [f"stages {config.top_k}"])
    first = shard.stages_for(config(tmp_path))
    assert shard.stages_for(config(tmp_path)) is first
    assert shard.stages_for(config(tmp_path, shard_size=7, limit=3)) is first  # settings no stage is built with
    assert shard.stages_for(config(tmp_path, top_k=0)) == ["stages 0"]
    assert built == [3, 0]


# ---------------------------------------------------------------- a whole shard
def test_a_shard_writes_its_files_counts_and_usage_with_progress_per_item(tmp_path, use_stages):
    batch = Batch(batch_size=None)
    batch.requests = 40  # an earlier shard of this process: only this shard's share goes into its marker
    use_stages(
        [
            Failing("read", {"images/case005.png": StageError("image file is empty")}),
            batch,
            Encode(redacted=("images/case001.png",)),
        ]
    )
    work = items(60) + items(10, source="other", start=60)
    progress: list[int] = []
    result = shard.run_shard(4, work, config(tmp_path / "out"), progress.append)

    assert result == {"shard": 4, "written": 69, "quarantined": 1}
    assert sum(progress) == 70 and set(progress) == {1}
    # The model stage got every record that passed read (case005 did not), in groups no larger than the window.
    assert sorted(f for b in batch.batches for f in b) == [i.file for i in work if i.file != "images/case005.png"]
    assert max(len(b) for b in batch.batches) <= shard.ITEMS_PER_BATCH
    store = ShardStore(tmp_path / "out")
    assert store.marker(4) == {
        "shard": 4,
        "written": 69,
        "quarantined": 1,
        "sources": {
            "toy": {"seen": 60, "written": 59, "quarantined": 1},
            "other": {"seen": 10, "written": 10, "quarantined": 0},
        },
        "describer_usage": {"requests": 69, "cache_hits": 0},
        "redacted": {"toy": 1},
    }
    assert [r["origin"]["file"] for r in store.shard_rows(4)] == [
        i.file for i in work if i.file != "images/case005.png"
    ]
    assert [q["file"] for q in store.shard_rows(4, "quarantine")] == ["images/case005.png"]


def test_a_shard_without_a_model_stage_has_no_usage_in_its_marker(tmp_path, use_stages):
    use_stages([Encode()])
    assert shard.run_shard(0, items(3), config(tmp_path / "out")) == {"shard": 0, "written": 3, "quarantined": 0}
    assert ShardStore(tmp_path / "out").marker(0) == {
        "shard": 0,
        "written": 3,
        "quarantined": 0,
        "sources": {"toy": {"seen": 3, "written": 3, "quarantined": 0}},
    }


def test_a_server_gone_mid_shard_stops_the_build_and_leaves_the_shard_unfinished(tmp_path, use_stages):
    use_stages([Batch(error=ServerGone("the model server at http://127.0.0.1:9/v1 stopped answering")), Encode()])
    with pytest.raises(ServerGone) as stopped:
        shard.run_shard(2, items(3), config(tmp_path / "out"))
    assert str(stopped.value) == (
        "the model server at http://127.0.0.1:9/v1 stopped answering. The build stopped at "
        "shard 2: finished shards are kept; rerun with --resume once the server is fixed"
    )
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__
    assert ShardStore(tmp_path / "out").is_done(2) is False
    assert not (tmp_path / "out" / "data" / "part-00002.parquet").exists()


# ---------------------------------------------------------------- --retry-transient
def test_retry_transient_redoes_only_the_transient_items_and_rewrites_the_shard_in_item_order(tmp_path, use_stages):
    out = tmp_path / "out"
    work = items(4) + items(2, source="other", start=4)
    first = Batch(transient=("images/case001.png", "images/case004.png"))
    first.requests = 10
    use_stages([Failing("read", {"images/case002.png": StageError("image file is empty")}), first, Encode()])
    assert shard.run_shard(0, work, config(out)) == {"shard": 0, "written": 3, "quarantined": 3}
    store = ShardStore(out)
    assert store.transient_ids(0) == {work[1].id, work[4].id}
    assert store.marker(0)["describer_usage"] == {"requests": 5, "cache_hits": 0}

    again = Batch(transient=("images/case004.png",))  # case001 passes now, case004 is still unreachable
    read = Failing("read", {"images/case002.png": StageError("image file is empty")})
    use_stages([read, again, Encode(redacted=("images/case001.png",))])
    progress: list[int] = []
    result = shard.run_shard(0, work, config(out, retry_transient=True, resume=True), progress.append)

    assert result == {"shard": 0, "written": 4, "quarantined": 2, "retried": 2}
    assert read.seen == ["images/case001.png", "images/case004.png"]
    assert progress[0] == 4 and sum(progress) == 6  # the kept records at once, then the retried ones
    assert [r["origin"]["file"] for r in store.shard_rows(0)] == [
        "images/case000.png",
        "images/case001.png",
        "images/case003.png",
        "images/case005.png",
    ]
    assert [(q["file"], q["transient"]) for q in store.shard_rows(0, "quarantine")] == [
        ("images/case002.png", False),
        ("images/case004.png", True),
    ]
    assert store.marker(0) == {
        "shard": 0,
        "written": 4,
        "quarantined": 2,
        "sources": {
            "toy": {"seen": 4, "written": 3, "quarantined": 1},
            "other": {"seen": 2, "written": 1, "quarantined": 1},
        },
        "describer_usage": {"requests": 7, "cache_hits": 0},  # 5 in the first run, 2 in the retry
        "redacted": {"toy": 1},
    }


def test_retry_transient_keeps_the_first_runs_usage_when_the_retry_has_none(tmp_path, use_stages):
    out = tmp_path / "out"
    use_stages([Batch(transient=("images/case000.png",)), Encode()])
    shard.run_shard(0, items(2), config(out))
    use_stages([Encode()])  # e.g. the record passes from the request cache without a model stage
    shard.run_shard(0, items(2), config(out, retry_transient=True, resume=True))
    marker = ShardStore(out).marker(0)
    assert marker["describer_usage"] == {"requests": 2, "cache_hits": 0}
    assert (marker["written"], marker["quarantined"]) == (2, 0)


def test_retry_transient_sums_usage_keys_of_either_run(tmp_path, use_stages):
    out = tmp_path / "out"
    use_stages([Batch(transient=("images/case000.png",)), Encode()])
    shard.run_shard(0, items(2), config(out))

    class MoreUsage(Batch):
        def usage(self):
            return {"requests": self.requests, "retries": 3 * self.requests}

    use_stages([MoreUsage(), Encode()])
    shard.run_shard(0, items(2), config(out, retry_transient=True, resume=True))
    assert ShardStore(out).marker(0)["describer_usage"] == {"requests": 3, "cache_hits": 0, "retries": 3}


def test_a_finished_shard_without_retry_transient_is_computed_again(tmp_path, use_stages):
    out = tmp_path / "out"
    use_stages([Batch(transient=("images/case000.png",)), Encode()])
    shard.run_shard(0, items(2), config(out))
    batch = use_stages([Batch(), Encode()])[0]
    assert shard.run_shard(0, items(2), config(out)) == {"shard": 0, "written": 2, "quarantined": 0}
    assert batch.batches == [["images/case000.png", "images/case001.png"]]


# ---------------------------------------------------------------- crash testing
def test_fault_injection_kills_the_process_once_the_item_count_is_reached(monkeypatch):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: counts 3 items (alive), then 2 more (killed at 5)
        os.close(read_end)
        shard._KILL_AFTER_ITEMS, shard._items_done = 5, 0
        shard._count_items_for_fault_injection(3)
        os.write(write_end, b"alive after 3")
        shard._count_items_for_fault_injection(2)
        os.write(write_end, b"; alive after 5")
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    said = os.read(read_end, 100)
    os.close(read_end)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert said == b"alive after 3"
    monkeypatch.setattr(shard, "_KILL_AFTER_ITEMS", 0)  # off (the default): counting never kills
    shard._count_items_for_fault_injection(10_000)


# ---------------------------------------------------------------- more edges
def test_stages_given_to_run_shard_are_used_for_the_shard_and_its_retry(tmp_path):
    out = tmp_path / "out"
    first = Batch(transient=("images/case000.png",))
    assert shard.run_shard(0, items(3), config(out), stages=[first, Encode()]) == {
        "shard": 0,
        "written": 2,
        "quarantined": 1,
    }
    again = Batch()
    assert shard.run_shard(0, items(3), config(out, retry_transient=True, resume=True), stages=[again, Encode()]) == {
        "shard": 0,
        "written": 3,
        "quarantined": 0,
        "retried": 1,
    }
    assert again.batches == [["images/case000.png"]]


def test_a_shard_of_real_items_runs_the_stages_its_config_builds(toy_dataset, tmp_path):
    from medtrinity.sources.base import load_recipe, open_source

    recipe, root = toy_dataset
    work = list(open_source(load_recipe(str(recipe)), root).items())[:2]
    out = tmp_path / "out"
    ShardStore(out).prepare({}, resume=False, overwrite=False)
    built = BuildConfig(sources=[f"{recipe}:{root}"], out=str(out))
    assert shard.run_shard(0, work, built) == {"shard": 0, "written": 2, "quarantined": 0}
    assert [r["origin"]["file"] for r in ShardStore(out).shard_rows(0)] == ["images/case000.png", "images/case001.png"]


def test_a_shard_logs_unexpected_failures_to_errors_log_and_counts_every_quarantined_item(tmp_path, use_stages):
    use_stages([Failing("read", {f"images/case00{i}.png": ValueError("bad header") for i in (0, 2, 3)}), Encode()])
    shard.run_shard(0, items(4), config(tmp_path / "out"))
    marker = ShardStore(tmp_path / "out").marker(0)
    assert marker["sources"] == {"toy": {"seen": 4, "written": 1, "quarantined": 3}}
    log = (tmp_path / "out" / "errors.log").read_text()
    assert log.count("--- toy images/case00") == 3 and log.startswith("--- toy images/case000.png stage=read\n")


def test_a_retry_of_a_shard_whose_items_were_all_transient(tmp_path, use_stages):
    out = tmp_path / "out"
    use_stages([Batch(transient=("images/case000.png", "images/case001.png")), Encode()])
    shard.run_shard(0, items(2), config(out))
    use_stages([Batch(transient=("images/case000.png", "images/case001.png")), Encode()])
    progress: list[int] = []
    result = shard.run_shard(0, items(2), config(out, retry_transient=True, resume=True), progress.append)
    assert result == {"shard": 0, "written": 0, "quarantined": 2, "retried": 2}
    assert 0 not in progress and sum(progress) == 2  # nothing was kept, so no "kept" step
    assert ShardStore(out).marker(0)["sources"] == {"toy": {"seen": 2, "written": 0, "quarantined": 2}}


def test_a_server_gone_during_a_retry_names_the_shard(tmp_path, use_stages):
    out = tmp_path / "out"
    use_stages([Batch(transient=("images/case000.png",)), Encode()])
    shard.run_shard(5, items(2), config(out))
    use_stages([Batch(error=ServerGone("the model server stopped answering")), Encode()])
    with pytest.raises(ServerGone, match="The build stopped at shard 5: finished shards are kept"):
        shard.run_shard(5, items(2), config(out, retry_transient=True, resume=True))
    assert ShardStore(out).is_done(5) is True  # the first run's shard stays finished


def test_usage_keys_that_appear_during_the_shard_count_from_zero(tmp_path, use_stages):
    class Growing(Batch):
        def usage(self):
            return {"requests": self.requests, **({"retries": 2} if self.requests else {})}

    use_stages([Growing(), Encode()])
    shard.run_shard(0, items(3), config(tmp_path / "out"))
    assert ShardStore(tmp_path / "out").marker(0)["describer_usage"] == {"requests": 3, "retries": 2}


def test_each_worker_builds_its_stages_with_its_share_of_the_concurrency(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(shard, "_STAGES_BY_CONFIG", {})
    monkeypatch.setattr(shard, "build_stages", lambda config: built.append(config.concurrency) or [])
    shard.stages_for(config(tmp_path, workers=4, concurrency=32))
    assert built == [8]


def test_a_stage_that_loses_records_is_a_bug_that_stops_the_batch():
    class Lossy:
        name = "describe"

        def process_batch(self, records):
            return records[:-1]

    with pytest.raises(ValueError, match="shorter"):
        shard.process_batch(items(3), [Lossy(), Encode()])
