"""A build from start to end: open the sources, cut the item stream into shards, run them on the
chosen engine, reconcile the counts and write the manifest."""

from __future__ import annotations

import hashlib
import itertools
import platform
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata

from medtrinity import __version__
from medtrinity.errors import UserError
from medtrinity.knowledge.provenance import kb_provenance
from medtrinity.pipeline.config import BuildConfig, default_shard_size
from medtrinity.pipeline.identity import run_identity
from medtrinity.pipeline.shard import stages_for
from medtrinity.pipeline.store import ShardStore
from medtrinity.sources.base import Layout, SourceItem, load_recipe, open_source
from medtrinity.sources.label_kinds import merge_kinds

_VERSIONED = ("numpy", "pyarrow", "pillow", "pydicom", "scikit-image", "pycocotools", "bm25s", "scipy")


def open_sources(config: BuildConfig) -> list[Layout]:
    layouts, names = [], set()
    for spec in config.sources:
        recipe = load_recipe(spec.recipe)
        if recipe.name in names:
            raise UserError(
                f"source '{recipe.name}' is given twice; give each recipe once (or copy the recipe under another name)"
            )
        names.add(recipe.name)
        layouts.append(open_source(recipe, spec.path))
    return layouts


def check_expert_choices(config: BuildConfig, layouts: list[Layout]) -> list[tuple[str, dict]]:
    """An unknown expert name, a misspelled option or missing weights is a bad command: say so now, not in
    every record's quarantine reason. The (expert, options) pairs the build names, for the weights preflight."""
    from medtrinity.roi.experts.base import check_build_experts, check_expert_choice

    check_expert_choice(config.expert, "--expert")
    for layout in layouts:
        check_expert_choice(layout.recipe.expert, f"recipe {layout.recipe.name}: expert")
    return check_build_experts(config.expert, config.experts, [layout.recipe for layout in layouts])


def load_experts(stages: list, uses: list[tuple[str, dict]]) -> None:
    """Experts' weights exist and load, before the output folder is touched (in-process runs keep them)."""
    locate = next((stage for stage in stages if getattr(stage, "name", None) == "locate"), None)
    for name, options in uses if locate is not None else []:
        locate._expert(name, options)


def iter_items(layouts: list[Layout], limit: int | None) -> Iterator[SourceItem]:
    for layout in layouts:
        recipe = layout.recipe
        for item in itertools.islice(layout.items(), limit):
            # Recipe-wide expert settings, so that layouts only decide per item whether an expert is wanted.
            item.expert_mode, item.expert_options = recipe.expert_mode, recipe.expert_options_by_name()
            item.label_kinds = merge_kinds(recipe.label_kinds, item.label_kinds)  # the layout's own kinds win
            item.burned_in_text = recipe.burned_in_text
            yield item


def iter_shards(
    items: Iterator[SourceItem], shard_size: int, store: ShardStore, skipped, retry_transient: bool = False
) -> Iterator[tuple[int, list]]:
    """Shard k is items[k·size:(k+1)·size] of the deterministic stream; finished shards are skipped, except,
    with retry_transient, those that quarantined records for a transient reason (run_shard redoes only those)."""
    for index in itertools.count():
        chunk = list(itertools.islice(items, shard_size))
        if not chunk:
            return
        if store.is_done(index) and not (retry_transient and store.transient_ids(index)):
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
    expert_uses = check_expert_choices(config, layouts)
    # Build the stages here first: a bad --kb, describer or model fails before the output folder is touched
    # (in-process runs then reuse them; worker processes build their own).
    from medtrinity.describe.preflight import preflight_stages

    load_experts(stages_for(config), expert_uses)  # weights that are missing or do not load: one line
    describer_info = preflight_stages(stages_for(config))  # a model server that cannot serve the build: one line
    listing = listing_fingerprint(layouts, config.limit)
    total = listing["count"]
    store = ShardStore(config.out)
    config = with_shard_size(config, total, store)
    identity = run_identity(config, layouts, listing)
    started = time.monotonic()

    from medtrinity.pipeline.progress import build_progress

    # The folder is checked, then the engine connects (a Ray cluster that is not there is refused before the
    # folder is touched); the engine ends with the build, its processes and temporary files too.
    store.check(identity, resume=config.resume, overwrite=config.overwrite)
    engine_started = time.monotonic()
    with _engine(config) as engine:
        engine_seconds = (
            time.monotonic() - engine_started
        )  # Ray, or the local workers with their stages: not the rate's
        engine.expert_uses = expert_uses  # which experts load a model (the Ray engine gives those actors)
        store.prepare(identity, resume=config.resume, overwrite=config.overwrite)
        with build_progress(total, enabled=show_progress) as advance:
            shards = iter_shards(
                iter_items(layouts, config.limit),
                config.shard_size,
                store,
                skipped=advance,
                retry_transient=config.retry_transient,
            )
            engine.run(shards, advance)
        engine_stopping = time.monotonic()
    engine_seconds += time.monotonic() - engine_stopping

    counts = store.source_counts()
    totals = {k: sum(c[k] for c in counts.values()) for k in ("seen", "written", "quarantined")}
    if totals["seen"] != total or totals["seen"] != totals["written"] + totals["quarantined"]:
        raise RuntimeError(f"counts do not reconcile: listed {total}, counted {totals}")
    manifest = {
        "medtrinity": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["medtrinity", *sys.argv[1:]]) if sys.argv else "",
        "config": config.model_dump(exclude={"resume", "overwrite", "retry_transient"}),
        "knowledge_base": kb_provenance(config.kb),  # which KB, even when config says "kb": null (the default)
        "versions": package_versions(),
        "sources": counts,
        "totals": totals,
        # quarantined for a reason a later try may pass (server unreachable, timeouts, 429/5xx): --retry-transient
        "quarantined_transient": store.transient_count(),
        "shards": {
            "data": sorted(p.name for p in store.data_dir.glob("part-*.parquet")),
            "quarantine": sorted(p.name for p in store.quarantine_dir.glob("part-*.parquet")),
        },
        "elapsed_seconds": round(time.monotonic() - started, 2),
        "engine_seconds": round(engine_seconds, 2),  # of those, starting and stopping the engine and its workers
    }
    # What a layout found while listing its source, beyond the counts (medtrinity-25m: rows per tar shard).
    details = {layout.recipe.name: layout.summary() for layout in layouts if hasattr(layout, "summary")}
    if details:
        manifest["source_details"] = details
    manifest["redacted"] = redacted_counts(store.markers())
    usage = store.describer_usage()
    if usage is not None:
        manifest["describer_usage"] = usage
    if describer_info is not None:
        manifest["describer"] = describer_info  # the structured-output mode negotiated, what the vision check saw
    store.write_manifest(manifest)
    return manifest


def with_shard_size(config: BuildConfig, total: int, store: ShardStore) -> BuildConfig:
    """The config with its shard size settled: as given; on --resume without one, the size the build in --out
    was cut with (its identity records it); else the default for this input and --workers."""
    if config.shard_size is not None:
        return config
    saved = store.saved_identity() if config.resume else None
    size = saved.get("shard_size") if saved else None
    if not isinstance(size, int) or size < 1:
        size = default_shard_size(total, config.workers)
    return config.model_copy(update={"shard_size": size})


def redacted_counts(markers: list[dict]) -> dict:
    """Written images whose burned-in text was blacked out (sources/pixel_text.py), in all and per source."""
    per_source: dict[str, int] = {}
    for marker in markers:
        for source, n in (marker.get("redacted") or {}).items():
            per_source[source] = per_source.get(source, 0) + int(n)
    return {"images": sum(per_source.values()), "sources": dict(sorted(per_source.items()))}


def _engine(config: BuildConfig):
    if config.engine == "ray":
        from medtrinity.pipeline.ray_engine import RayEngine

        return RayEngine(config)
    from medtrinity.pipeline.local import LocalEngine

    return LocalEngine(config)
