"""The Ray executor: each shard is a Ray task running the same `run_shard` as the local engine.

Stages never import Ray; this adapter only schedules shards. Workers write their own shard files, so on
a cluster `--out` must be a folder every node can write (a shared filesystem). Resume, quarantine and
counts behave exactly as with the local engine, because the unit of work and its marker are the same.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from medtrinity.errors import UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.shard import run_shard
from medtrinity.sources.base import SourceItem


def _shard_task(index: int, items: list[SourceItem], config: BuildConfig) -> int:
    run_shard(index, items, config)
    return len(items)


def run_ray(shards: Iterable[tuple[int, list[SourceItem]]], config: BuildConfig, progress: Callable[[int], None]) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("the ray engine needs Ray: pip install 'medtrinity[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if config.ray_address:
                ray.init(address=config.ray_address, **quiet)
            else:
                ray.init(num_cpus=config.workers, include_dashboard=False, **quiet)
        except ConnectionError as err:
            raise UserError(f"cannot reach the Ray cluster at {config.ray_address}: {err}") from None
    task = ray.remote(_shard_task)
    try:
        pending: list = []
        for index, items in shards:
            pending.append(task.remote(index, items, config))
            while len(pending) >= 2 * config.workers:  # bounded in flight: memory stays flat
                pending = _collect(ray, pending, progress)
        while pending:
            pending = _collect(ray, pending, progress)
    finally:
        if started_here:
            ray.shutdown()


def _collect(ray, pending: list, progress: Callable[[int], None]) -> list:
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
