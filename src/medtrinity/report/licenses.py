"""Each source's license as its recipe states it, and the Hugging Face license id it maps to (if any).

A recipe's license is free text ("CC BY-NC 4.0 (ISIC 2018 challenge data); cite …"). It maps to a Hub
id only when the text begins with a license the Hub names; anything else (research agreements,
challenge terms, mixed terms) is "other", and the card gives the recipe's own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medtrinity.errors import UserError

# Longest first: "CC BY-NC-SA 4.0" must not be read as "CC BY".
_HUB_IDS = (
    (r"CC0[ -]1\.0", "cc0-1.0"),
    (r"CC[ -]BY-NC-SA[ -]4\.0", "cc-by-nc-sa-4.0"),
    (r"CC[ -]BY-NC-ND[ -]4\.0", "cc-by-nc-nd-4.0"),
    (r"CC[ -]BY-NC[ -]4\.0", "cc-by-nc-4.0"),
    (r"CC[ -]BY-SA[ -]4\.0", "cc-by-sa-4.0"),
    (r"CC[ -]BY-ND[ -]4\.0", "cc-by-nd-4.0"),
    (r"CC[ -]BY[ -]4\.0", "cc-by-4.0"),
    (r"CC[ -]BY[ -]3\.0", "cc-by-3.0"),
    (r"MIT\b", "mit"),
    (r"Apache[ -]2\.0", "apache-2.0"),
    (r"ODbL", "odbl"),
    (r"PDDL", "pddl"),
)
NOT_STATED = "not stated"


@dataclass(frozen=True)
class SourceLicense:
    source: str
    title: str
    license: str  # the recipe's words
    hub_id: str  # Hugging Face license id, or "other"


def hub_license_id(text: str | None) -> str:
    for pattern, hub_id in _HUB_IDS:
        if text and re.match(pattern, text.strip(), re.IGNORECASE):
            return hub_id
    return "other"


def source_licenses(manifest: dict | None, sources: list[str]) -> list[SourceLicense]:
    """One entry per source name in `sources`, from the recipes the manifest names (or the named recipes)."""
    from medtrinity.sources.base import load_recipe

    recipes = {}
    for spec in ((manifest or {}).get("config") or {}).get("sources") or []:
        given = spec.get("recipe") if isinstance(spec, dict) else str(spec).rsplit(":", 1)[0]
        try:
            recipe = load_recipe(given)
        except UserError:  # a recipe file that has moved since the build
            continue
        recipes[recipe.name] = recipe
    out = []
    for name in sources:
        recipe = recipes.get(name)
        if recipe is None:
            try:
                recipe = load_recipe(name)
            except UserError:
                recipe = None
        text = (recipe.license if recipe else None) or NOT_STATED
        out.append(
            SourceLicense(
                name,
                (recipe.title if recipe else None) or name,
                text,
                hub_license_id(text) if text != NOT_STATED else "other",
            )
        )
    return out
