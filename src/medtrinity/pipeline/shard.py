"""Run one shard through the stages: every item ends written or quarantined, never lost.

This is the unit of work every executor (in-process, process pool, Ray) runs; it writes its own shard,
so only counts travel back to the coordinator.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from medtrinity.describe.server_errors import ServerStop
from medtrinity.errors import StageError, UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.stages import build_stages
from medtrinity.pipeline.store import ROWS_PER_GROUP, DataWriter, ShardStore
from medtrinity.pipeline.stream import ShardStream, quarantine_row
from medtrinity.records import SCHEMA, sample_to_row
from medtrinity.sources.base import SourceItem

log = logging.getLogger("medtrinity")
_STAGES_BY_CONFIG: dict[str, list] = {}
# Crash testing: the process SIGKILLs itself after this many items, mid-shard (tests/pipeline/test_resume.py).
_KILL_AFTER_ITEMS = int(os.environ.get("MEDTRINITY_FAULT_KILL_AFTER_ITEMS", "0"))
_items_done = 0


# Settings no stage is built with: a change of one (the shard size chosen at start) reuses the stages.
_NOT_FOR_STAGES = {"shard_size", "resume", "overwrite", "retry_transient", "limit"}


def stages_for(config: BuildConfig) -> list:
    """Stages are built once per process (they hold the index and the describer), with this worker's share of
    --concurrency."""
    worker = config.model_copy(update={"concurrency": config.worker_concurrency()})
    key = json.dumps(worker.model_dump(exclude=_NOT_FOR_STAGES), sort_keys=True)
    if key not in _STAGES_BY_CONFIG:
        _STAGES_BY_CONFIG[key] = build_stages(worker)
    return _STAGES_BY_CONFIG[key]


# At most this many records are in a shard at once (stream.py): memory stays bounded by the window, not
# the shard, while a batch-aware stage (a model client) gets many records at a time.
ITEMS_PER_BATCH = 32


def batch_size_for(stages: list) -> int:
    """The window: ITEMS_PER_BATCH, or more when a stage asks for it (a model client with many requests in
    flight keeps twice its bound in the window, so that it never waits for the CPU stages to fill it)."""
    return max([ITEMS_PER_BATCH, *(getattr(s, "batch_size", None) or 0 for s in stages)])


def describer_usage(stages: list) -> dict[str, int] | None:
    """Running usage totals of the stages that keep them (the describe stage of a model backend)."""
    for stage in stages:
        usage = stage.usage() if hasattr(stage, "usage") else None
        if usage is not None:
            return usage
    return None


def run_stage(stage, records: list, errors_log: Path | None = None) -> list:
    """The stage's output for each record, or the exception that record failed with (never raises)."""
    if hasattr(stage, "process_batch"):
        try:
            return stage.process_batch(records)
        except UserError:
            raise  # e.g. a model server refusing the key: the run stops, as it would in-process
        except Exception as err:  # a failing batch stage must not lose the run: its records are quarantined
            if not isinstance(err, StageError):
                _log_unexpected(errors_log, records[0] if records else None, stage.name)
            return [err] * len(records)
    outputs = []
    for record in records:
        try:
            outputs.append(stage(record))
        except StageError as err:
            outputs.append(err)
        except Exception as err:  # a bug or a library failure: keep the run going, keep the evidence
            _log_unexpected(errors_log, record, stage.name)
            outputs.append(err)
    return outputs


def _log_unexpected(errors_log: Path | None, record, stage_name: str) -> None:
    if errors_log is None or record is None:
        return
    file = getattr(record, "file", None) or getattr(getattr(record, "origin", None), "file", "?")
    with errors_log.open("a") as fh:
        fh.write(f"--- {record.source} {file} stage={stage_name}\n{traceback.format_exc()}\n")


def failure_reason(err: BaseException) -> str:
    return str(err) if isinstance(err, StageError) else f"unexpected {type(err).__name__}: {err}"


def process_batch(
    items: list[SourceItem], stages: list, errors_log: Path | None = None
) -> tuple[list[dict], list[dict]]:
    """(rows, quarantine rows) for a batch of items, stage by stage; every item ends in exactly one of them, in
    item order. (A shard streams its items instead (stream.py), with the same outcome per item.)"""
    live = [(item, item) for item in items]
    quarantined = []
    for stage in stages:
        outputs = run_stage(stage, [record for _, record in live], errors_log)
        survivors = []
        for (item, _), out in zip(live, outputs, strict=True):
            if isinstance(out, BaseException):
                quarantined.append(quarantine_row(item, stage.name, out, failure_reason))
            else:
                survivors.append((item, out))
        live = survivors
    rows = [sample_to_row(record) for _, record in live]
    order = {item.id: i for i, item in enumerate(items)}
    return rows, sorted(quarantined, key=lambda q: order[q["id"]])


def run_shard(
    index: int,
    items: list[SourceItem],
    config: BuildConfig,
    progress: Callable[[int], None] | None = None,
    stages: list | None = None,
) -> dict:
    """Process shard `index` and write it. `stages`: the stages to use instead of this process's own (the Ray
    engine hands in stages whose model-backed ones run in its model actors)."""
    store = ShardStore(config.out)
    if config.retry_transient and store.is_done(index):
        return _retry_transient(index, items, config, store, progress, stages)
    data = store.data_writer(index)
    try:
        rows, quarantined, counts, usage = _process(index, items, config, store, progress, stages, data)
    except BaseException:
        data.discard()  # the shard stays unfinished; --resume redoes it from scratch
        raise
    store.write_shard(index, data, quarantined, counts, extra=_with_redacted_counts(usage, rows.redacted))
    return {"shard": index, "written": len(rows), "quarantined": len(quarantined)}


def with_redacted(extra: dict | None, rows: list[dict]) -> dict | None:
    """The marker's extras plus, per source, the written images whose burned-in text was blacked out."""
    return _with_redacted_counts(extra, _redacted_by_source(rows))


def _redacted_by_source(rows: list[dict]) -> Counter:
    return Counter(row["source"] for row in rows if row["origin"].get("redacted"))


def _with_redacted_counts(extra: dict | None, redacted: Counter) -> dict | None:
    return {**(extra or {}), "redacted": dict(redacted)} if redacted else extra


class _ShardRows:
    """The shard's written rows, in order, turned into Arrow a row group at a time and handed to the shard's
    data writer as they come (or, without one, kept as Arrow tables), with the redaction counts the marker
    needs. So a worker's memory does not grow with the shard size."""

    def __init__(self, sink: DataWriter | None = None) -> None:
        self.sink = sink
        self.chunks: list = []
        self.pending: list[dict] = []
        self.redacted: Counter = Counter()
        self.count = 0

    def append(self, row: dict) -> None:
        self.pending.append(row)
        self.count += 1
        if len(self.pending) >= ROWS_PER_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.redacted.update(_redacted_by_source(self.pending))
            table = pa.Table.from_pylist(self.pending, schema=SCHEMA)
            self.pending = []
            if self.sink is not None:
                self.sink.write(table)
            else:
                self.chunks.append(table)

    def to_pylist(self) -> list[dict]:
        """The rows kept (without a sink)."""
        self.flush()
        return [row for chunk in self.chunks for row in chunk.to_pylist()]

    def __len__(self) -> int:
        return self.count


def _process(
    index: int,
    items: list[SourceItem],
    config: BuildConfig,
    store: ShardStore,
    progress: Callable[[int], None] | None,
    stages: list | None = None,
    sink: DataWriter | None = None,
) -> tuple[_ShardRows, list[dict], dict, dict | None]:
    """(rows, quarantine rows, per-source counts, {"describer_usage": …} or None) for the items, in item order;
    the rows go to `sink` as they finish when one is given."""
    stages = stages_for(config) if stages is None else stages
    rows, quarantined = _ShardRows(sink), []
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"seen": 0, "written": 0, "quarantined": 0})
    usage_before = describer_usage(stages)  # stages live for the whole process: this shard's share is a difference
    stream = ShardStream(stages, run_stage, window=batch_size_for(stages), errors_log=store.out / "errors.log")
    try:
        for item, record, failure in stream.run(items):
            counts[item.source]["seen"] += 1
            if failure is None:
                rows.append(sample_to_row(record))
                counts[item.source]["written"] += 1
            else:
                quarantined.append(quarantine_row(item, *failure, failure_reason))
                counts[item.source]["quarantined"] += 1
            if progress:
                progress(1)
            _count_items_for_fault_injection(1)
    except ServerStop as stop:  # a model server gone or unfit: this shard stays unfinished for --resume
        raise stop.during_build(index) from None
    rows.flush()
    usage_after = describer_usage(stages)
    usage = None
    if usage_before is not None and usage_after is not None:
        usage = {"describer_usage": {k: usage_after[k] - usage_before.get(k, 0) for k in usage_after}}
    return rows, quarantined, dict(counts), usage


def _retry_transient(
    index: int,
    items: list[SourceItem],
    config: BuildConfig,
    store: ShardStore,
    progress: Callable[[int], None] | None,
    stages: list | None = None,
) -> dict:
    """A finished shard whose quarantine holds transient failures: those items go through the stages again and
    the shard is rewritten with the kept records and the new outcomes, in item order, as a first run would have
    written it. The old shard stays finished until the new one is complete; from there the marker goes first,
    so a kill in between leaves a shard that --resume redoes from scratch."""
    retry = store.transient_ids(index)
    again = [item for item in items if item.id in retry]
    if progress and len(items) > len(again):
        progress(len(items) - len(again))
    new_rows, new_bad, _, usage = _process(index, again, config, store, progress, stages)
    order = {item.id: i for i, item in enumerate(items)}
    rows = sorted(store.shard_rows(index) + new_rows.to_pylist(), key=lambda r: order[r["id"]])
    kept_bad = [q for q in store.shard_rows(index, "quarantine") if q["id"] not in retry]
    quarantined = sorted(kept_bad + new_bad, key=lambda q: order[q["id"]])
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"seen": 0, "written": 0, "quarantined": 0})
    for item in items:
        counts[item.source]["seen"] += 1
    for row in rows:
        counts[row["source"]]["written"] += 1
    for bad in quarantined:
        counts[bad["source"]]["quarantined"] += 1
    before = store.marker(index).get("describer_usage")
    if before and usage:  # the shard's usage: the first run's and this one's
        usage = {
            "describer_usage": {
                k: before.get(k, 0) + usage["describer_usage"].get(k, 0)
                for k in before.keys() | usage["describer_usage"].keys()
            }
        }
    elif before:
        usage = {"describer_usage": before}
    store.unfinish(index)
    store.write_shard(index, rows, quarantined, dict(counts), extra=with_redacted(usage, rows))
    return {"shard": index, "written": len(rows), "quarantined": len(quarantined), "retried": len(again)}


def _count_items_for_fault_injection(n: int) -> None:
    global _items_done
    _items_done += n
    if _KILL_AFTER_ITEMS and _items_done >= _KILL_AFTER_ITEMS:
        os.kill(os.getpid(), signal.SIGKILL)
