"""What the record page shows, prepared from one row: the description with its five attributes marked,
checks failed-first, claims with the ROI they are about, provenance in words."""

from __future__ import annotations

from typing import Any

from medtrinity.describe.overlay import outline_colour
from medtrinity.describe.reference_audit import PREFIX as REFERENCE_CHECK
from medtrinity.records import ATTRIBUTE_NAMES

CHECK_ORDER = {"fail": 0, "not-verifiable": 1, "pass": 2}


def mark_attributes(description: str, attributes: dict[str, str] | None) -> list[tuple[str, str | None]]:
    """The description cut into (text, attribute or None) pieces: each attribute's text where it occurs
    in the description (a model's attributes may be worded apart from its paragraph: those stay unmarked)."""
    spans: list[tuple[int, int, str]] = []
    for name in ATTRIBUTE_NAMES:
        text = ((attributes or {}).get(name) or "").strip()
        start = description.find(text) if text else -1
        if start >= 0 and not any(start < end and begin < start + len(text) for begin, end, _ in spans):
            spans.append((start, start + len(text), name))
    pieces, cursor = [], 0
    for begin, end, name in sorted(spans):
        if begin > cursor:
            pieces.append((description[cursor:begin], None))
        pieces.append((description[begin:end], name))
        cursor = end
    if cursor < len(description):
        pieces.append((description[cursor:], None))
    return pieces


def check_status(check: dict) -> str:
    return check.get("status") or ("pass" if check.get("ok") else "fail")


def provenance(origin: dict | None) -> list[tuple[str, str]]:
    origin = origin or {}
    rows = [("file", origin.get("file"))]
    if origin.get("slice") is not None:
        rows.append(("slice", f"{origin['slice']}" + (f" (axis {origin['axis']})" if origin.get("axis") else "")))
    if origin.get("frame") is not None:
        rows.append(("frame", str(origin["frame"])))
    if origin.get("spacing"):
        rows.append(("spacing", " × ".join(f"{s:g}" for s in origin["spacing"]) + " mm"))
    rows += [("orientation", origin.get("orientation")), ("intensity", origin.get("intensity"))]
    if origin.get("patient_left_on_image"):
        rows.append(("patient's left", f"on the image's {origin['patient_left_on_image']}"))
    rows += [("source's id", origin.get("source_id")), ("dataset named by the source", origin.get("source_dataset"))]
    return [(name, value) for name, value in rows if value not in (None, "")]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def record_context(row: dict[str, Any]) -> dict[str, Any]:
    rois = row.get("rois") or []
    checks = sorted(row.get("checks") or [], key=lambda c: CHECK_ORDER.get(check_status(c), 3))
    claims = []
    for claim in row.get("claims") or []:
        subject = claim.get("subject")
        about = f"{subject}: {rois[subject]['label']}" if subject is not None and 0 <= subject < len(rois) else "image"
        claims.append(claim | {"about": about})
    return {
        "record": {key: value for key, value in row.items() if key != "image"},
        "rois": [roi | {"index": i, "colour": _hex(outline_colour(i)[1])} for i, roi in enumerate(rois)],
        "pieces": mark_attributes(row.get("description") or "", row.get("attributes")),
        "attribute_names": ATTRIBUTE_NAMES,
        "checks": [c | {"status": check_status(c)} for c in checks],
        "reference_failed": [c for c in checks if c["name"].startswith(REFERENCE_CHECK) and check_status(c) == "fail"],
        "claims": claims,
        "provenance": provenance(row.get("origin")),
        "label_kinds": {k["label"]: k["kind"] for k in row.get("label_kinds") or []},
    }
