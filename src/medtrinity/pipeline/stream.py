"""Items through the stages as a stream: CPU stages run here while earlier records wait for a model.

A window of at most `window` records is in the shard at once (bounded memory, whatever the shard size).
Each record runs the per-record stages in this thread until it reaches a batch stage (a model client, a
repairing verifier, a model actor); there it joins a group, and a full group — or any waiting group when
nothing else can move — is handed to a helper thread while this thread reads and prepares the next records.
A batch stage whose work is safe to run side by side (`concurrent_batches`: the `openai` client, whose
batches share one event loop and one `--concurrency` bound; a Ray actor pool) gets many groups at once, so
up to its bound of requests are in flight across the whole shard; any other batch stage (a local model)
gets one group at a time, on one thread. Records leave in item order, each written or quarantined exactly
as `process_batch` would have: the stage code is the same, only when it runs changes.

Helper threads are daemons: a Ctrl-C or a stopped server never waits for a batch still in flight.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from medtrinity.errors import TransientError

GROUP_FOR_ONE_AT_A_TIME = 32  # records per call of a batch stage that runs one call at a time (a local model)
MAX_GROUP = 16  # records per call of a concurrent batch stage: small, so a group rarely waits to fill


class _Slot:
    """One item's way through the stages."""

    __slots__ = ("failure", "finished", "item", "position", "record")

    def __init__(self, item) -> None:
        self.item, self.record, self.position = item, item, 0
        self.failure: tuple[str, BaseException] | None = None  # (stage name, the error) once quarantined
        self.finished = False


class _Helpers:
    """Daemon threads running batch calls; started when needed, up to `most`."""

    def __init__(self, most: int, results: queue.Queue) -> None:
        self.most, self.results = most, results
        self.tasks: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.busy = 0
        self._lock = threading.Lock()

    def idle(self) -> bool:
        return self.busy < self.most

    def submit(self, key, call: Callable[[], list]) -> None:
        with self._lock:
            self.busy += 1
            if self.busy > len(self.threads) and len(self.threads) < self.most:
                thread = threading.Thread(target=self._work, daemon=True, name="medtrinity-batch")
                self.threads.append(thread)
                thread.start()
        self.tasks.put((key, call))

    def _work(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            key, call = task
            try:
                outcome = call()
            except BaseException as err:  # noqa: BLE001 - handed to the stream's thread, which decides
                outcome = err
            with self._lock:
                self.busy -= 1
            self.results.put((key, outcome))

    def close(self) -> None:
        for _ in self.threads:
            self.tasks.put(None)


def is_concurrent(stage) -> bool:
    """Whether several batches of this stage may run at once (its work waits on a server or a remote actor)."""
    own = getattr(stage, "concurrent_batches", None)
    if own is not None:
        return bool(own)
    return bool(getattr(getattr(stage, "describer", None), "concurrent_batches", False))


class ShardStream:
    """`for item, record, failure in ShardStream(stages, run_stage, window).run(items)`: in item order, the
    finished record, or the (stage name, error) it was quarantined with."""

    def __init__(
        self,
        stages: list,
        run_stage: Callable[[object, list, Path | None], list],
        window: int,
        errors_log: Path | None = None,
    ) -> None:
        self.stages, self.run_stage, self.errors_log = stages, run_stage, errors_log
        self.window = max(1, window)
        self.results: queue.Queue = queue.Queue()
        concurrent_group = max(1, min(MAX_GROUP, self.window // 8))
        self.concurrent = {i: is_concurrent(s) for i, s in enumerate(stages) if hasattr(s, "process_batch")}
        self.group = {i: concurrent_group if many else GROUP_FOR_ONE_AT_A_TIME for i, many in self.concurrent.items()}
        self.waiting: dict[int, list[_Slot]] = {i: [] for i in self.group}
        # Concurrent stages: a thread per call, up to half the window (a model client's bound: its window is
        # twice that), created as needed. A record is sent alone while a thread is free, so after a pause
        # calls carry one record each; with fewer threads than the bound, those singles alone would use them
        # all while far fewer requests than allowed were in flight. The other batch stages share one thread,
        # so a local model is never called from two threads at once.
        self.many = _Helpers(max(-(-self.window // concurrent_group), self.window // 2) + 1, self.results)
        self.one = _Helpers(1, self.results)
        self.running = 0

    def run(self, items: Iterable) -> Iterator[tuple[object, object, tuple[str, BaseException] | None]]:
        window: deque[_Slot] = deque()
        source = iter(items)
        more = True
        try:
            while True:
                self._take_results(block=False)
                while window and window[0].finished:
                    slot = window.popleft()
                    yield slot.item, slot.record, slot.failure
                if not more and not window:
                    return
                if more and len(window) < self.window:
                    item = next(source, None)
                    if item is None:
                        more = False
                        continue
                    slot = _Slot(item)
                    window.append(slot)
                    self._advance(slot)
                    continue
                # Nothing more to read now: send every waiting group, then wait for a batch to come back.
                for position in self.waiting:
                    self._send(position)
                if self.running:
                    self._take_results(block=True)
        finally:
            self.many.close()
            self.one.close()

    def _advance(self, slot: _Slot) -> None:
        while slot.position < len(self.stages):
            position = slot.position
            stage = self.stages[position]
            if position in self.group:
                self.waiting[position].append(slot)
                # A concurrent stage gets a record at once while it has a free thread, and the records that
                # came meanwhile as one group when a thread frees: groups grow only while all are busy.
                if len(self.waiting[position]) >= self.group[position] or (
                    self._helpers(position) is self.many and self.many.idle()
                ):
                    self._send(position)
                return
            self._settle(slot, self.run_stage(stage, [slot.record], self.errors_log)[0])
            if slot.finished:
                return
        slot.finished = True

    def _settle(self, slot: _Slot, output) -> None:
        """A stage's output for the slot: the next record, or the failure that quarantines it."""
        if isinstance(output, BaseException):
            slot.failure, slot.finished = (self.stages[slot.position].name, output), True
        else:
            slot.record, slot.position = output, slot.position + 1
            if slot.position == len(self.stages):
                slot.finished = True

    def _send(self, position: int) -> None:
        group = self.waiting[position]
        if not group:
            return
        self.waiting[position] = []
        stage, records = self.stages[position], [slot.record for slot in group]
        helpers = self._helpers(position)
        self.running += 1
        helpers.submit(group, lambda: self.run_stage(stage, records, self.errors_log))

    def _helpers(self, position: int) -> _Helpers:
        return self.many if self.concurrent[position] else self.one

    def _take_results(self, block: bool) -> None:
        while self.running:
            try:
                group, outcome = self.results.get(timeout=0.1) if block else self.results.get_nowait()
            except queue.Empty:
                if block:
                    continue
                return
            self.running -= 1
            block = False  # one result was waited for; take the others that are there already
            if isinstance(outcome, BaseException):  # run_stage lets only a stop of the whole run through
                raise outcome
            for slot, output in zip(group, outcome, strict=True):
                self._settle(slot, output)
                if not slot.finished:
                    self._advance(slot)
        for position, waiting in self.waiting.items():  # a thread came free: what waited for one goes now
            if waiting and self._helpers(position) is self.many and self.many.idle():
                self._send(position)


def quarantine_row(item, stage_name: str, err: BaseException, reason: Callable[[BaseException], str]) -> dict:
    return {
        "id": item.id,
        "source": item.source,
        "file": item.file,
        "stage": stage_name,
        "reason": reason(err),
        "transient": isinstance(err, TransientError),
    }
