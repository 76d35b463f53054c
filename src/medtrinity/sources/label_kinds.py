"""What each label of a record means (one of `records.LABEL_KINDS`), so that only findings are called findings.

A label's kind is decided, in order, by:
1. the kinds declared for it — by the layout for this item (e.g. "case" on a tumour-free slice of a tumour
   case) over the recipe's `label_kinds` mapping; matched case-insensitively;
2. the pattern "<finding> (uncertain)" (CheXpert's -1.0 observations) -> "uncertain";
3. the record's `disease`: a label equal to it, or to one of its comma-separated parts, is a "finding";
4. otherwise "label": a label whose meaning nobody declared is never called a finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medtrinity.errors import UserError
from medtrinity.records import LABEL_KINDS

UNKNOWN_KIND = "label"
UNCERTAIN_SUFFIX = " (uncertain)"


def _key(label: str) -> str:
    return " ".join(str(label).split()).lower()


def check_label_kinds(declared: Any, where: str) -> dict[str, str]:
    """A recipe's `label_kinds` as {label: kind}, checked; UserError (one line) naming what is wrong."""
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise UserError(f"{where}: label_kinds must map a label to its kind, e.g. {{pneumothorax: finding}}")
    seen: dict[str, tuple[str, str]] = {}
    for label, kind in declared.items():
        if not isinstance(label, str) or not label.strip():
            raise UserError(f"{where}: label_kinds has an empty or non-text label {label!r}")
        if kind not in LABEL_KINDS:
            raise UserError(
                f"{where}: label_kinds: {label!r} has kind {kind!r}, which is not one of {', '.join(LABEL_KINDS)}"
            )
        other = seen.get(_key(label))
        if other is not None and other[1] != kind:
            raise UserError(f"{where}: label_kinds gives {other[0]!r} and {label!r} (the same label) different kinds")
        seen[_key(label)] = (label, kind)
    return dict(declared)


def merge_kinds(recipe_kinds: dict[str, str], item_kinds: dict[str, str]) -> dict[str, str]:
    """One lookup table (keys lower-cased): the recipe's declared kinds, overridden by the item's own."""
    merged = {_key(label): kind for label, kind in (recipe_kinds or {}).items()}
    merged.update({_key(label): kind for label, kind in (item_kinds or {}).items()})
    return merged


def disease_names(disease: str | None) -> set[str]:
    """The record's disease and, for a list ("cardiomegaly, edema"), each of its parts, lower-cased."""
    if not disease:
        return set()
    return {_key(disease)} | {_key(part) for part in disease.split(",") if part.strip()}


def kind_of(label: str, declared: dict[str, str], disease: str | None = None) -> str:
    """The kind of one label (module docstring for the order of the rules)."""
    key = _key(label)
    lookup = {_key(k): v for k, v in (declared or {}).items()}
    if key in lookup:
        return lookup[key]
    if key.endswith(UNCERTAIN_SUFFIX):
        return "uncertain"
    if key in disease_names(disease):
        return "finding"
    return UNKNOWN_KIND


def kinds_of(labels: Iterable[str], declared: dict[str, str], disease: str | None = None) -> dict[str, str]:
    """{label: kind} for each label, in order, as the record stores them (`Sample.label_kinds`)."""
    return {label: kind_of(label, declared, disease) for label in labels}
