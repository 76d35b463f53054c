"""The local executor: shards in this process (`--workers 1`) or on a process pool.

Images are CPU work and the GIL rules out threads, so workers are processes ('spawn', safe with any
library's threads). At most 2×workers shards are in flight, so memory stays flat however many items
the sources list. Per-item progress comes back through a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.shard import run_shard
from medtrinity.sources.base import SourceItem

_progress_queue = None


def _init_worker(queue) -> None:
    global _progress_queue
    _progress_queue = queue
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A coordinator killed with SIGKILL cannot stop its pool: a worker whose parent is gone ends itself."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _run_shard_in_worker(index: int, items: list[SourceItem], config: BuildConfig) -> dict:
    return run_shard(index, items, config, progress=_progress_queue.put)


def run_local(
    shards: Iterable[tuple[int, list[SourceItem]]], config: BuildConfig, progress: Callable[[int], None]
) -> None:
    if config.workers == 1:
        for index, items in shards:
            run_shard(index, items, config, progress)
        return

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    drain = threading.Thread(target=_drain, args=(queue, progress), daemon=True)
    drain.start()
    try:
        with ProcessPoolExecutor(config.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
            pending = set()
            for index, items in shards:
                pending.add(pool.submit(_run_shard_in_worker, index, items, config))
                if len(pending) >= 2 * config.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
            for future in pending:
                future.result()
    finally:
        queue.put(None)
        drain.join(timeout=5)


def _drain(queue, progress: Callable[[int], None]) -> None:
    while (n := queue.get()) is not None:
        progress(n)
