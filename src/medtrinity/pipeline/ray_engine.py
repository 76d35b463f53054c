"""The Ray executor: each shard is a Ray task running the same `run_shard` as the local engine.

Stages never import Ray; this adapter only schedules shards. Stages that hold a model (the `transformers`
describer with the verifier that asks it for repairs; a locate stage whose experts load weights: SAM, ONNX,
Cellpose) run in long-lived model actors instead: each loads the model once and serves the shards given to
it (shard k goes to actor k mod n), while the CPU stages stay in the shard tasks. Without `--gpus-per-model`
there is one actor per worker; with it, as many as the cluster's GPUs hold (fractions share a GPU). Workers write their own shard files, so on
a cluster `--out` must be a folder every node can write (a shared filesystem). Resume, quarantine and
counts behave exactly as with the local engine, because the unit of work and its marker are the same.

The engine is opened before the output folder is touched, so an unreachable cluster is one line and no
folder. A Ray started here lives in a temporary folder of its own, removed at the end, and its processes
end with the build (a watchdog ends them even when the build is killed).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Callable, Iterable

from medtrinity.errors import UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.shard import run_shard
from medtrinity.pipeline.store import ShardStore
from medtrinity.sources.base import SourceItem

CONNECT_TIMEOUT_S = 20.0  # Ray's own client retries an unreachable cluster forever
PROBE_TIMEOUT_S = 5.0
_DEFAULT_PORT = {"ray": 10001, "": 6379}  # Ray client server, GCS


def _model_loads() -> int:
    """Models the transformers describer loaded in this process (0 where it was never imported)."""
    module = sys.modules.get("medtrinity.describe.transformers_local")
    return getattr(module, "MODEL_LOADS", 0)


def model_stage_names(config: BuildConfig, expert_uses: list[tuple[str, dict]]) -> tuple[str, ...]:
    """The stages that hold a model, by name: they run in model actors."""
    from medtrinity.roi.experts.base import weights_option

    names: tuple[str, ...] = ("describe", "verify") if config.describer == "transformers" else ()
    if any(weights_option(name) for name, _ in expert_uses):
        names = ("locate", *names)
    return names


class ModelActor:
    """A Ray actor holding the build's stages; the shard tasks send it the records of its model stages."""

    def __init__(self, config: BuildConfig) -> None:
        from medtrinity.pipeline.shard import stages_for

        self.stages = {stage.name: stage for stage in stages_for(config)}
        self.errors_log = ShardStore(config.out).out / "errors.log"
        self.shards: set[int] = set()

    def run(self, stage_name: str, records: list, shard: int) -> list:
        from medtrinity.pipeline.shard import run_stage

        self.shards.add(shard)
        return run_stage(self.stages[stage_name], records, self.errors_log)

    def report(self) -> dict:
        return {"pid": os.getpid(), "model_loads": _model_loads(), "shards": sorted(self.shards)}


class ActorStage:
    """Stands in a shard task for a model stage: its batches go to the shard's model actor. Batches go one at a
    time, as the local engine sends them to its own model, so batches and records are the same."""

    concurrent_batches = False

    def __init__(self, name: str, actor, shard: int) -> None:
        self.name, self.actor, self.shard = name, actor, shard

    def process_batch(self, records: list) -> list:
        import ray

        try:
            return ray.get(self.actor.run.remote(self.name, records, self.shard))
        except ray.exceptions.RayTaskError as err:
            raise err.as_instanceof_cause() from None


def _shard_task(
    index: int, items: list[SourceItem], config: BuildConfig, actor=None, proxied: tuple[str, ...] = ()
) -> tuple[int, int]:
    """(items done, models this task's process loaded: 0 when the model stages run in actors)."""
    stages = None
    if actor is not None:
        from medtrinity.pipeline.shard import stages_for

        # This process builds its CPU stages only: a model describer is swapped for the grounded one, whose
        # stages are then replaced by the actor's (an expert with weights loads on first use, which never comes).
        light = config.model_copy(update={"describer": "grounded", "model": None}) if "describe" in proxied else config
        stages = [
            ActorStage(stage.name, actor, index) if stage.name in proxied else stage for stage in stages_for(light)
        ]
    run_shard(index, items, config, stages=stages)
    return len(items), _model_loads()


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """A TCP connection to a cluster address (`host:port` or `ray://host:port`), so that a cluster that is not
    there is one line at once rather than Ray's endless reconnect warnings. "auto" is left to Ray."""
    scheme, _, rest = address.rpartition("://")
    if address == "auto" or scheme not in _DEFAULT_PORT:
        return
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(_DEFAULT_PORT[scheme])
    if not port.isdigit() or not host:
        raise UserError(f"--ray-address {address!r} must be HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        why = "timed out" if isinstance(err, socket.timeout) else (err.strerror or type(err).__name__).lower()
        raise UserError(
            f"cannot reach the Ray cluster at {address} ({why}); start it with `ray start --head` "
            "or drop --ray-address to run Ray on this machine"
        ) from None


class RayEngine:
    """`with RayEngine(config) as engine: engine.run(shards, progress)` — connected on enter, shut down on exit."""

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.temp_dir: str | None = None
        self._watchdog: subprocess.Popen | None = None
        self._started_here = False
        self.expert_uses: list[tuple[str, dict]] = []  # set by the runner: experts that load weights get actors
        self.model_actors: list[dict] = []  # after run: each actor's pid, models loaded and shards served
        self.task_model_loads = 0  # after run: the most models a shard task's process loaded (0 with actors)

    def __enter__(self) -> "RayEngine":
        try:
            import ray
        except ImportError:
            raise UserError("the ray engine needs Ray: pip install 'medtrinity[ray]'") from None
        if ray.is_initialized():  # a caller's own Ray session (e.g. a notebook): use it, leave it running
            return self
        address = self.config.ray_address
        if address:
            probe_address(address)
        else:
            # A short path: Ray puts Unix sockets under it, whose paths are limited to about 100 characters.
            self.temp_dir = tempfile.mkdtemp(prefix="medtrinity-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
            self._watchdog = _start_watchdog(self.temp_dir)
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        self._started_here = True
        try:
            if address:
                _connect_with_timeout(ray, {"address": address, **quiet}, address)
            else:
                # In this thread: Ray ties the processes it starts to the life of the thread that starts them.
                ray.init(
                    address="local",
                    num_cpus=self.config.workers,
                    include_dashboard=False,
                    _temp_dir=self.temp_dir,
                    **quiet,
                )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._started_here:
            import ray

            try:
                ray.shutdown()
            finally:
                self._started_here = False
                self._end_watchdog()

    def _end_watchdog(self) -> None:
        if self._watchdog is not None:
            # Closing its stdin is the signal: it ends what is left of this Ray and removes the temp folder.
            self._watchdog.stdin.close()
            try:
                self._watchdog.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            self._watchdog = None
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def run(self, shards: Iterable[tuple[int, list[SourceItem]]], progress: Callable[[int], None]) -> None:
        import ray

        config = self.config
        task = ray.remote(_shard_task)
        proxied = model_stage_names(config, self.expert_uses)
        actors = self._start_actors(ray) if proxied else []
        pending: list = []

        def done(result: tuple[int, int]) -> None:
            items, loads = result
            self.task_model_loads = max(self.task_model_loads, loads)
            progress(items)

        try:
            for index, items in shards:
                actor = actors[index % len(actors)] if actors else None
                pending.append(task.remote(index, items, config, actor, proxied))
                while len(pending) >= 2 * config.workers:  # bounded in flight: memory stays flat
                    pending = _collect(ray, pending, done)
            while pending:
                pending = _collect(ray, pending, done)
            self.model_actors = ray.get([actor.report.remote() for actor in actors])
        except BaseException:
            for ref in pending:  # an interrupt: queued shards are not started, running ones stop
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone: nothing to stop
                    pass
            raise
        finally:
            for actor in actors:
                ray.kill(actor)

    def _start_actors(self, ray) -> list:
        """The model actors: one per worker, or as many as the cluster's GPUs hold at --gpus-per-model each."""
        gpus = self.config.gpus_per_model
        count = self.config.workers
        if gpus:
            available = ray.cluster_resources().get("GPU", 0)
            if available < gpus:
                raise UserError(f"--gpus-per-model {gpus:g}: the Ray cluster has {available:g} GPUs")
            count = max(1, int(available // gpus))
        actor = ray.remote(num_cpus=0, num_gpus=gpus or 0)(ModelActor)
        return [actor.remote(self.config) for _ in range(count)]


def _connect_with_timeout(ray, init: dict, address: str) -> None:
    """ray.init in a helper thread: Ray's client waits forever on an address that answers but is not Ray.
    (Connecting to a running cluster starts no process here, so the thread may end.)"""
    outcome: dict = {}

    def connect() -> None:
        try:
            ray.init(**init)
            outcome["ok"] = True
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=connect, daemon=True, name="ray-connect")
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if "error" in outcome:
        err = outcome["error"]
        if isinstance(err, ConnectionError):
            raise UserError(f"cannot reach the Ray cluster at {address}: {str(err).splitlines()[0]}") from None
        raise err
    if "ok" not in outcome:
        raise UserError(
            f"the Ray cluster at {address} did not answer within {CONNECT_TIMEOUT_S:.0f} s; "
            "check --ray-address (the head node's GCS port, 6379 by default)"
        )


def _start_watchdog(temp_dir: str) -> subprocess.Popen:
    """A small process that outlives a killed build: when this process's end of its stdin closes (normal exit
    or SIGKILL alike), it kills every process of this Ray session and removes the session's temp folder."""
    return subprocess.Popen(
        [sys.executable, "-m", "medtrinity.pipeline.ray_watchdog", temp_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _collect(ray, pending: list, progress: Callable) -> list:
    done, pending = ray.wait(pending, num_returns=1)
    for ref in done:
        try:
            progress(ray.get(ref))
        except ray.exceptions.RayTaskError as err:
            cause = err.as_instanceof_cause()
            if isinstance(cause, UserError):  # e.g. a model server refusing the key: stop, as locally
                raise UserError(str(cause).splitlines()[-1]) from None
            raise
    return pending
