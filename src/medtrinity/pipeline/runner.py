"""A build from start to end: open the sources, cut the item stream into shards, run them on the
chosen engine, reconcile the counts and write the manifest."""

from __future__ import annotations

import hashlib
import itertools
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from typing import Iterator

from medtrinity import __version__
from medtrinity.errors import UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.shard import stages_for
from medtrinity.pipeline.store import ShardStore
from medtrinity.sources.base import Layout, SourceItem, load_recipe, open_source

_VERSIONED = ("numpy", "pyarrow", "pillow", "pydicom", "scikit-image", "pycocotools", "bm25s", "scipy")


def open_sources(config: BuildConfig) -> list[Layout]:
    layouts, names = [], set()
    for spec in config.sources:
        recipe = load_recipe(spec.recipe)
        if recipe.name in names:
            raise UserError(f"source '{recipe.name}' is given twice; give each recipe once (or copy the recipe under another name)")
        names.add(recipe.name)
        layouts.append(open_source(recipe, spec.path))
    return layouts


def check_expert_choices(config: BuildConfig, layouts: list[Layout]) -> None:
    """An unknown expert name is a bad command: say so now, not in every record's quarantine reason."""
    from medtrinity.roi.experts.base import check_expert_choice

    check_expert_choice(config.expert, "--expert")
    for layout in layouts:
        check_expert_choice(layout.recipe.expert, f"recipe {layout.recipe.name}: expert")


def iter_items(layouts: list[Layout], limit: int | None) -> Iterator[SourceItem]:
    for layout in layouts:
        recipe = layout.recipe
        for item in itertools.islice(layout.items(), limit):
            # Recipe-wide expert settings, so that layouts only decide per item whether an expert is wanted.
            item.expert_mode, item.expert_options = recipe.expert_mode, dict(recipe.expert_options)
            yield item


def iter_shards(items: Iterator[SourceItem], shard_size: int, store: ShardStore, skipped) -> Iterator[tuple[int, list]]:
    """Shard k is items[k·size:(k+1)·size] of the deterministic stream; finished shards are skipped."""
    for index in itertools.count():
        chunk = list(itertools.islice(items, shard_size))
        if not chunk:
            return
        if store.is_done(index):
            skipped(len(chunk))
        else:
            yield index, chunk


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "medtrinity": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def listing_fingerprint(layouts: list[Layout], limit: int | None) -> dict:
    """How many items the sources list and a digest of their ids in order: a resumed run must see the same."""
    digest, count = hashlib.sha1(), 0
    for item in iter_items(layouts, limit):
        digest.update(item.id.encode())
        count += 1
    return {"count": count, "digest": digest.hexdigest()}


def run_build(config: BuildConfig, show_progress: bool = True) -> dict:
    layouts = open_sources(config)
    check_expert_choices(config, layouts)
    # Build the stages here first: a bad --kb, describer or model fails before the output folder is touched
    # (in-process runs then reuse them; worker processes build their own).
    stages_for(config)
    listing = listing_fingerprint(layouts, config.limit)
    total = listing["count"]
    identity = {**config.run_identity(), "recipes": [layout.recipe.model_dump(mode="json") for layout in layouts],
                "listing": listing}
    store = ShardStore(config.out)
    store.prepare(identity, resume=config.resume, overwrite=config.overwrite)
    started = time.monotonic()

    from medtrinity.pipeline.progress import build_progress

    with build_progress(total, enabled=show_progress) as advance:
        shards = iter_shards(iter_items(layouts, config.limit), config.shard_size, store, skipped=advance)
        _engine(config)(shards, config, advance)

    counts = store.source_counts()
    totals = {k: sum(c[k] for c in counts.values()) for k in ("seen", "written", "quarantined")}
    if totals["seen"] != total or totals["seen"] != totals["written"] + totals["quarantined"]:
        raise RuntimeError(f"counts do not reconcile: listed {total}, counted {totals}")
    manifest = {
        "medtrinity": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["medtrinity", *sys.argv[1:]]) if sys.argv else "",
        "config": config.model_dump(exclude={"resume", "overwrite"}),
        "versions": package_versions(),
        "sources": counts,
        "totals": totals,
        "shards": {
            "data": sorted(p.name for p in store.data_dir.glob("part-*.parquet")),
            "quarantine": sorted(p.name for p in store.quarantine_dir.glob("part-*.parquet")),
        },
        "elapsed_seconds": round(time.monotonic() - started, 2),
    }
    usage = store.describer_usage()
    if usage is not None:
        manifest["describer_usage"] = usage
    store.write_manifest(manifest)
    return manifest


def _engine(config: BuildConfig):
    if config.engine == "ray":
        from medtrinity.pipeline.ray_engine import run_ray

        return run_ray
    from medtrinity.pipeline.local import run_local

    return run_local
