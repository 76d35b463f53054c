"""Which records an export writes, and why each other one is left out.

Quarantined records never reach `data/`, so they are never exported. Of the written records, one is left out
when a check of its description failed (ok == False, kept by `--on-contradiction keep`) unless
`--include-failed`, when it lies in a benchmark's test split unless `--include-test` (so test images never
become training data by accident), or when its id is in the `--exclude` file. `scan` reads the build once
without images, before the output folder is touched, to count all this and to collect what every output
file must agree on: the splits, the ROI categories and the finding labels of each source and modality.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtrinity.describe.reference_audit import PREFIX as REFERENCE_CHECK
from medtrinity.errors import UserError
from medtrinity.export.build_reader import Build

# The build's split names as trainers name them; a source without splits is training data.
_SPLIT_ALIASES = {"training": "train", "validation": "val", "valid": "val", "dev": "val", "testing": "test"}
SCAN_COLUMNS = ["id", "source", "split", "modality", "labels", "label_kinds", "rois", "checks"]


def split_of(split: str | None) -> str:
    """'train', 'val', 'test' or the source's own split name (lower case, [a-z0-9_])."""
    if not split or not split.strip():
        return "train"
    name = re.sub(r"[^a-z0-9_]+", "_", split.strip().lower()).strip("_") or "train"
    return _SPLIT_ALIASES.get(name, name)


def read_exclude_file(path: str | Path) -> set[str]:
    """Record ids to leave out: one per line ('#' starts a comment), or JSON — a list of ids or of objects
    with an "id", or an object whose "ids" / "records" / "leaks" list holds them (a leakage report)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"--exclude {path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise UserError(f"--exclude {path}: not a UTF-8 text file of record ids") from None
    if text.lstrip().startswith(("[", "{")):
        try:
            return _ids_in_json(json.loads(text))
        except ValueError:
            raise UserError(f"--exclude {path}: starts like JSON but is not valid JSON") from None
    return {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}


def _ids_in_json(data: Any) -> set[str]:
    if isinstance(data, dict):
        for key in ("ids", "records", "leaks", "record_ids"):
            if isinstance(data.get(key), list):
                return _ids_in_json(data[key])
        if isinstance(data.get("id"), str):
            return {data["id"]}
        raise UserError("--exclude: a JSON object needs an 'ids', 'records' or 'leaks' list of record ids")
    if isinstance(data, list):
        ids: set[str] = set()
        for entry in data:
            if isinstance(entry, str):
                ids.add(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
                ids.add(entry["id"])
            elif isinstance(entry, dict) and isinstance(entry.get("record_id"), str):
                ids.add(entry["record_id"])
            else:
                raise UserError("--exclude: every JSON list entry must be a record id or an object with an 'id'")
        return ids
    raise UserError("--exclude: JSON must be a list of record ids or an object holding one")


def failed_description_checks(row: dict[str, Any]) -> set[str]:
    """The failed checks of the description; a source caption's audit ("reference:…") is not the description's."""
    return {c["name"] for c in row["checks"] or [] if c["ok"] is False and not c["name"].startswith(REFERENCE_CHECK)}


@dataclass
class Selection:
    include_failed: bool = False
    include_test: bool = False
    include_expert: bool = False
    exclude: set[str] = field(default_factory=set)

    def reason_left_out(self, row: dict[str, Any]) -> str | None:
        """Why `row` is not exported (a key of LEFT_OUT_REASONS), or None when it is."""
        if row["id"] in self.exclude:
            return "excluded"
        if not self.include_failed and failed_description_checks(row):
            return "failed"
        if not self.include_test and split_of(row["split"]) == "test":
            return "test"
        return None

    def roi_included(self, roi: dict[str, Any] | Any) -> bool:
        """The source's own annotations always; an expert's proposals only with --include-expert."""
        source = roi["source"] if isinstance(roi, dict) else roi.source
        return source == "annotation" or self.include_expert


LEFT_OUT_REASONS = {
    "failed": "a check of the description failed (--include-failed keeps them)",
    "test": "in a benchmark's test split (--include-test exports them, to test files only)",
    "excluded": "listed in --exclude",
}


def label_key(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class Catalog:
    """What one read of the build (without images) tells every writer before it writes."""

    selected: int = 0
    left_out: Counter = field(default_factory=Counter)  # reason -> records
    failed_checks: Counter = field(default_factory=Counter)  # check name -> left-out records it failed
    splits: Counter = field(default_factory=Counter)  # split -> selected records
    sources: Counter = field(default_factory=Counter)  # source -> selected records
    # (label, modality) of every included ROI, sorted: COCO category ids are positions in this list + 1
    categories: list[tuple[str, str]] = field(default_factory=list)
    # (source, modality) -> the finding labels its selected records carry (the pool closed "No" questions
    # draw from: the same source's labels, of images of the same modality)
    finding_labels: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    excluded_unknown: int = 0  # ids in --exclude that name no record of the build


def scan(build: Build, selection: Selection) -> Catalog:
    catalog = Catalog()
    categories: set[tuple[str, str]] = set()
    findings: dict[tuple[str, str], dict[str, str]] = {}
    seen_excluded: set[str] = set()
    for batch in build.batches(SCAN_COLUMNS):
        for row in batch:
            if row["id"] in selection.exclude:
                seen_excluded.add(row["id"])
            reason = selection.reason_left_out(row)
            if reason:
                catalog.left_out[reason] += 1
                if reason == "failed":
                    catalog.failed_checks.update(failed_description_checks(row))
                continue
            catalog.selected += 1
            catalog.splits[split_of(row["split"])] += 1
            catalog.sources[row["source"]] += 1
            kinds = {k["label"]: k["kind"] for k in row["label_kinds"] or []}
            pool = findings.setdefault((row["source"], row["modality"]), {})
            for label in row["labels"] or []:
                if kinds.get(label) == "finding":
                    pool.setdefault(label_key(label), label)
            categories.update(
                (roi["label"], row["modality"]) for roi in row["rois"] or [] if selection.roi_included(roi)
            )
    catalog.categories = sorted(categories)
    catalog.finding_labels = {key: sorted(pool.values(), key=label_key) for key, pool in sorted(findings.items())}
    catalog.excluded_unknown = len(selection.exclude - seen_excluded)
    return catalog
