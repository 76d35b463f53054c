"""The local executor: shards in this process (`--workers 1`) or on a process pool.

Images are CPU work and the GIL rules out threads, so workers are processes ('spawn', safe with any
library's threads). At most 2×workers shards are in flight, so memory stays flat however many items
the sources list. Per-item progress comes back through a queue.

Ctrl-C goes to the whole process group, but only the coordinator acts on it: workers are started with
SIGINT blocked (a worker would take it as a failed task and go on to the next shard). The coordinator
cancels the queued shards and ends the workers at once; a shard a worker was writing has no marker yet, so
`--resume` redoes it, exactly as after a kill.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.shard import run_shard
from medtrinity.sources.base import SourceItem

_progress_queue = None
_started_together = None  # a Barrier of the pool's workers: each warm-up task waits there, so each runs in its own


def _init_worker(queue, barrier) -> None:
    global _progress_queue, _started_together
    _progress_queue, _started_together = queue, barrier
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # where blocking it at spawn is not available
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A coordinator killed with SIGKILL cannot stop its pool: a worker whose parent is gone ends itself."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _warm_up(config: BuildConfig) -> None:
    """Build this worker's stages (the index, the describer) before the first shard."""
    from medtrinity.pipeline.shard import stages_for

    stages_for(config)
    _started_together.wait(timeout=WARM_UP_TIMEOUT_S)


def _run_shard_in_worker(index: int, items: list[SourceItem], config: BuildConfig) -> dict:
    return run_shard(index, items, config, progress=_progress_queue.put)


WARM_UP_TIMEOUT_S = 600.0  # a worker that never starts (no memory left) ends the build instead of hanging it


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Workers spawned in here start with SIGINT blocked, so a Ctrl-C during their start-up cannot reach them
    either. The coordinator gets a Ctrl-C that came meanwhile as soon as the block is lifted."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class LocalEngine:
    """`with LocalEngine(config) as engine: engine.run(shards, progress)`. With several workers the pool starts on
    enter, each worker with its stages built, so a build's rate (manifest: elapsed less engine_seconds) is the
    shards' alone, as with one worker, whose stages the runner has built already."""

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "LocalEngine":
        if self.config.workers == 1:
            return self
        ctx = mp.get_context("spawn")
        self.queue = ctx.Queue()
        barrier = ctx.Barrier(self.config.workers)
        self.pool = ProcessPoolExecutor(
            self.config.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.queue, barrier)
        )
        try:
            with _sigint_blocked():  # each submit starts a worker process while fewer than `workers` run
                warming = [self.pool.submit(_warm_up, self.config) for _ in range(self.config.workers)]
            for future in warming:
                future.result()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            if exc[0] is None:
                self.pool.shutdown(wait=True)
            else:
                self._stop()
            self.pool = None

    def _stop(self) -> None:
        _stop_now(self.pool)
        self.queue.cancel_join_thread()  # a killed worker may leave the queue's pipe half written

    def run(self, shards: Iterable[tuple[int, list[SourceItem]]], progress: Callable[[int], None]) -> None:
        if self.pool is None:
            for index, items in shards:
                run_shard(index, items, self.config, progress)
            return
        run_on_pool(self.pool, self.queue, shards, self.config, progress)


def run_on_pool(
    pool: ProcessPoolExecutor,
    queue,
    shards: Iterable[tuple[int, list[SourceItem]]],
    config: BuildConfig,
    progress: Callable[[int], None],
) -> None:
    """The shards on the pool, at most 2×workers in flight; per-item progress comes back through `queue`."""
    finished = threading.Event()
    drain = threading.Thread(target=_drain, args=(queue, progress, finished), daemon=True)
    drain.start()
    try:
        pending = set()
        for index, items in shards:
            with _sigint_blocked():  # were a worker ever started here, it would start with SIGINT blocked too
                pending.add(pool.submit(_run_shard_in_worker, index, items, config))
            if len(pending) >= 2 * config.workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        for future in pending:
            future.result()
    finally:
        finished.set()
        drain.join(timeout=2)


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued shards and end the running ones: their markers are not written, so resume redoes them."""
    # The pool has no public way to end running tasks before Python 3.14 (terminate_workers).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 2.0
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(timeout=1.0)


def _drain(queue, progress: Callable[[int], None], finished: threading.Event) -> None:
    # Polls instead of waiting for a sentinel: after an interrupt nothing may ever arrive.
    while True:
        try:
            progress(queue.get(timeout=0.1))
        except queue_module.Empty:
            if finished.is_set():
                return
