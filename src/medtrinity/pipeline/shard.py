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

from medtrinity.errors import StageError
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


def process_item(item: SourceItem, stages: list, errors_log: Path | None = None) -> tuple[dict | None, dict | None]:
    """(row, None) when the item passes every stage, else (None, quarantine row)."""
    record, stage_name = item, "read"
    try:
        for stage in stages:
            stage_name = stage.name
            record = stage(record)
        return sample_to_row(record), None
    except StageError as err:
        reason = str(err)
    except Exception as err:  # a bug or a library failure: keep the run going, keep the evidence
        reason = f"unexpected {type(err).__name__}: {err}"
        if errors_log is not None:
            with errors_log.open("a") as fh:
                fh.write(f"--- {item.source} {item.file} stage={stage_name}\n{traceback.format_exc()}\n")
    return None, {"id": item.id, "source": item.source, "file": item.file, "stage": stage_name, "reason": reason}


def run_shard(
    index: int, items: list[SourceItem], config: BuildConfig, progress: Callable[[int], None] | None = None
) -> dict:
    store = ShardStore(config.out)
    stages = stages_for(config)
    rows, quarantined = [], []
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"seen": 0, "written": 0, "quarantined": 0})
    for item in items:
        row, bad = process_item(item, stages, store.out / "errors.log")
        counts[item.source]["seen"] += 1
        if row is not None:
            rows.append(row)
            counts[item.source]["written"] += 1
        else:
            quarantined.append(bad)
            counts[item.source]["quarantined"] += 1
        if progress:
            progress(1)
        _count_item_for_fault_injection()
    store.write_shard(index, rows, quarantined, dict(counts))
    return {"shard": index, "written": len(rows), "quarantined": len(quarantined)}


def _count_item_for_fault_injection() -> None:
    global _items_done
    _items_done += 1
    if _KILL_AFTER_ITEMS and _items_done >= _KILL_AFTER_ITEMS:
        os.kill(os.getpid(), signal.SIGKILL)
