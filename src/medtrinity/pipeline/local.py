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


def _init_worker(queue) -> None:
    global _progress_queue
    _progress_queue = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # where blocking it at spawn is not available
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A coordinator killed with SIGKILL cannot stop its pool: a worker whose parent is gone ends itself."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _run_shard_in_worker(index: int, items: list[SourceItem], config: BuildConfig) -> dict:
    return run_shard(index, items, config, progress=_progress_queue.put)


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
    """`with LocalEngine(config) as engine: engine.run(shards, progress)`."""

    def __init__(self, config: BuildConfig) -> None:
        self.config = config

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def run(self, shards: Iterable[tuple[int, list[SourceItem]]], progress: Callable[[int], None]) -> None:
        run_local(shards, self.config, progress)


def run_local(
    shards: Iterable[tuple[int, list[SourceItem]]], config: BuildConfig, progress: Callable[[int], None]
) -> None:
    if config.workers == 1:
        for index, items in shards:
            run_shard(index, items, config, progress)
        return

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    finished = threading.Event()
    drain = threading.Thread(target=_drain, args=(queue, progress, finished), daemon=True)
    drain.start()
    pool = ProcessPoolExecutor(config.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,))
    try:
        pending = set()
        for index, items in shards:
            with _sigint_blocked():  # submit starts a worker process when fewer than `workers` run
                pending.add(pool.submit(_run_shard_in_worker, index, items, config))
            if len(pending) >= 2 * config.workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        for future in pending:
            future.result()
    except BaseException:
        _stop_now(pool)
        queue.cancel_join_thread()  # a killed worker may leave the queue's pipe half written
        raise
    else:
        pool.shutdown(wait=True)
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
