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
from collections import defaultdict
from pathlib import Path
from typing import Callable

from medtrinity.errors import StageError, UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.stages import build_stages
from medtrinity.pipeline.store import ShardStore
from medtrinity.records import sample_to_row
from medtrinity.sources.base import SourceItem

log = logging.getLogger("medtrinity")
_STAGES_BY_CONFIG: dict[str, list] = {}
# Crash testing: the process SIGKILLs itself after this many items, mid-shard (tests/pipeline/test_resume.py).
_KILL_AFTER_ITEMS = int(os.environ.get("MEDTRINITY_FAULT_KILL_AFTER_ITEMS", "0"))
_items_done = 0


def stages_for(config: BuildConfig) -> list:
    """Stages are built once per process (they hold the index and the describer)."""
    key = json.dumps(config.model_dump(), sort_keys=True)
    if key not in _STAGES_BY_CONFIG:
        _STAGES_BY_CONFIG[key] = build_stages(config)
    return _STAGES_BY_CONFIG[key]


# Items go through the stages in small batches: a batch-aware stage (e.g. a model client) can work on
# all of them at once, while memory stays bounded by the batch, not the shard.
ITEMS_PER_BATCH = 32


def batch_size_for(stages: list) -> int:
    """ITEMS_PER_BATCH, or more when a stage asks for it (a model client with many requests in flight)."""
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


def process_batch(items: list[SourceItem], stages: list, errors_log: Path | None = None) -> tuple[list[dict], list[dict]]:
    """(rows, quarantine rows) for a batch of items; every item ends in exactly one of them, in item order."""
    live = [(item, item) for item in items]
    quarantined = []
    for stage in stages:
        outputs = run_stage(stage, [record for _, record in live], errors_log)
        survivors = []
        for (item, _), out in zip(live, outputs, strict=True):
            if isinstance(out, BaseException):
                quarantined.append({"id": item.id, "source": item.source, "file": item.file, "stage": stage.name,
                                    "reason": failure_reason(out)})
            else:
                survivors.append((item, out))
        live = survivors
    rows = [sample_to_row(record) for _, record in live]
    order = {item.id: i for i, item in enumerate(items)}
    return rows, sorted(quarantined, key=lambda q: order[q["id"]])


def run_shard(
    index: int, items: list[SourceItem], config: BuildConfig, progress: Callable[[int], None] | None = None
) -> dict:
    store = ShardStore(config.out)
    stages = stages_for(config)
    rows, quarantined = [], []
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"seen": 0, "written": 0, "quarantined": 0})
    usage_before = describer_usage(stages)  # stages live for the whole process: this shard's share is a difference
    per_batch = batch_size_for(stages)
    for start in range(0, len(items), per_batch):
        batch = items[start : start + per_batch]
        batch_rows, batch_bad = process_batch(batch, stages, store.out / "errors.log")
        rows += batch_rows
        quarantined += batch_bad
        for item in batch:
            counts[item.source]["seen"] += 1
        for row in batch_rows:
            counts[row["source"]]["written"] += 1
        for bad in batch_bad:
            counts[bad["source"]]["quarantined"] += 1
        if progress:
            progress(len(batch))
        _count_items_for_fault_injection(len(batch))
    usage_after = describer_usage(stages)
    extra = None
    if usage_before is not None and usage_after is not None:
        extra = {"describer_usage": {k: usage_after[k] - usage_before.get(k, 0) for k in usage_after}}
    store.write_shard(index, rows, quarantined, dict(counts), extra=extra)
    return {"shard": index, "written": len(rows), "quarantined": len(quarantined)}


def _count_items_for_fault_injection(n: int) -> None:
    global _items_done
    _items_done += n
    if _KILL_AFTER_ITEMS and _items_done >= _KILL_AFTER_ITEMS:
        os.kill(os.getpid(), signal.SIGKILL)
