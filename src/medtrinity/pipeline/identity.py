"""A run's identity: what must not change between a build and its `--resume`, and how two identities differ.

The identity is saved in `_progress/run.json` when a build starts. It holds the settings as the build applies
them (defaults filled in, the config's expert settings folded into each recipe, paths made absolute), so that
the same build has the same identity however it was spelled, and a refused resume can name what changed.
"""

from __future__ import annotations

import json
import os
from typing import Any

from medtrinity.pipeline.config import BuildConfig
from medtrinity.sources.base import Layout

# Settings of the model describers (see stages.describer_options) that shape their records. How hard a
# request is retried (timeouts, attempts, backoff) or where the key comes from decides how fast, not what.
_MODEL_SETTINGS = (
    "model",
    "base_url",
    "api_key_env",
    "overlay",
    "request_timeout",
    "max_attempts",
    "retry_backoff",
    "max_tokens",
    "structured_output",
    "max_image_side",
)
_SHAPING_MODEL_SETTINGS = {
    "openai": ("model", "base_url", "overlay", "max_tokens", "structured_output", "max_image_side"),
    "transformers": ("model", "overlay", "max_tokens"),
}


def run_identity(config: BuildConfig, layouts: list[Layout], listing: dict) -> dict:
    """What must not change between a run and its --resume, as the build will apply it: the same build has the
    same identity whether a default is spelled out (`--expert-mode fill`, `--kb default`) or left out."""
    identity = config.run_identity()
    # The config's expert settings override each recipe's: record what each source will use.
    expert, expert_mode = identity.pop("expert", None), identity.pop("expert_mode", None)
    recipes = []
    for layout in layouts:
        recipe = layout.recipe.model_dump(mode="json")
        if expert is not None:
            recipe["expert"] = expert
        if expert_mode is not None:
            recipe["expert_mode"] = expert_mode
        if isinstance(recipe.get("expert"), str) and recipe["expert"].strip().lower() in ("", "none"):
            recipe["expert"] = None
        recipes.append(recipe)
    identity["sources"] = [
        {"recipe": layout.recipe.name, "path": os.path.abspath(spec.path)}
        for layout, spec in zip(layouts, config.sources, strict=True)
    ]
    kb = identity.get("kb")
    identity["kb"] = "default" if kb in (None, "default") else kb if kb == "core" else os.path.abspath(kb)
    shaping = _SHAPING_MODEL_SETTINGS.get(config.describer, ())  # other describers are built without them
    for key in _MODEL_SETTINGS:
        if key not in shaping:
            identity.pop(key, None)
    if config.describer == "openai":
        from medtrinity.describe.openai_compat import DEFAULT_BASE_URL

        identity["base_url"] = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
    return {**identity, "recipes": recipes, "listing": listing}


def _short(value: Any, width: int = 60) -> str:
    text = "(none)" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def identity_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each difference between two run identities, as `setting old -> new`, in words a user can act on."""
    changes = []
    last = ("sources", "recipes", "listing")  # the flags first, then what the sources are and list
    for key in sorted(set(saved) | set(new), key=lambda k: (k in last, last.index(k) if k in last else 0, k)):
        old, now = saved.get(key), new.get(key)
        if old == now:
            continue
        if key == "listing" and isinstance(old, dict) and isinstance(now, dict):
            counts = f"{old.get('count')} -> {now.get('count')} items listed"
            same = " (same count, other files)" if old.get("count") == now.get("count") else ""
            changes.append(f"input files: {counts}{same}")
        elif key == "recipes" and isinstance(old, list) and isinstance(now, list):
            changes += _recipe_changes(old, now)
        elif key == "sources" and isinstance(old, list) and isinstance(now, list):
            changes.append(f"--source {_sources_text(old)} -> {_sources_text(now)}")
        else:
            changes.append(f"{_setting(key)} {_short(old)} -> {_short(now)}")
    return changes


def _sources_text(sources: list) -> str:
    return " ".join(f"{s.get('recipe')}:{s.get('path')}" if isinstance(s, dict) else str(s) for s in sources)


def _recipe_changes(old: list[dict], new: list[dict]) -> list[str]:
    before = {r.get("name"): r for r in old if isinstance(r, dict)}
    after = {r.get("name"): r for r in new if isinstance(r, dict)}
    changes = [f"source {name} -> (none)" for name in before if name not in after]
    changes += [f"source (none) -> {name}" for name in after if name not in before]
    for name in (n for n in after if n in before):
        for field in sorted(set(before[name]) | set(after[name])):
            if before[name].get(field) != after[name].get(field):
                changes.append(
                    f"recipe {name}: {field} {_short(before[name].get(field))} -> {_short(after[name].get(field))}"
                )
    if not changes and [r.get("name") for r in old] != [r.get("name") for r in new]:
        changes.append(f"source order {_short([r.get('name') for r in old])} -> {_short([r.get('name') for r in new])}")
    return changes


def _setting(key: str) -> str:
    """A config key as the flag that sets it (`top_k` -> `--top-k`)."""
    return "--" + key.replace("_", "-")
