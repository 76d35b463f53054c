"""Read a description back and compare what it states with the record's metadata and ROI geometry.

Checks (each a records.Check with a readable detail): modality, position, area, roi_count, side, organ.
Only what the text states is checked; a text that states nothing of a kind passes that check. Quoted
background knowledge (a sentence carrying a passage citation like "[mt-lung-003]") is not a statement about
this image and is left out. The words are those of `vocabulary`, the ones the describers write with.
"""

from __future__ import annotations

import re

from medtrinity.describe.vocabulary import (
    COMPATIBLE_MODALITIES,
    HORIZONTAL_SIDE,
    MODALITY_PATTERNS,
    NUMBER_WORDS,
    ORGAN_WORD_PATTERN,
    PAIRED_STRUCTURE_PATTERN,
    alternation,
    canonical_organ,
    modalities_named,
    organ_group,
    patient_side,
)
from medtrinity.records import HORIZONTAL_WORDS, ROI, VERTICAL_WORDS, Check, Sample

AREA_TOLERANCE_POINTS = 0.5  # percentage points
AREA_TOLERANCE_RELATIVE = 0.2  # of the ROI's own area_ratio

_CITATION = re.compile(r"\[[A-Za-z0-9][\w.:/-]*\]")
_BACKGROUND = re.compile(r"Background:.*?\[[A-Za-z0-9][\w.:/-]*\]\.?", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# A position word is never part of a longer hyphenated word ("middle" in "lower-middle").
_POSITION = re.compile(
    rf"(?<![\w-])({alternation(VERTICAL_WORDS)})\s+({alternation(HORIZONTAL_WORDS)})(?![\w-])", re.IGNORECASE
)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:%|percent\b|per\s+cent\b)", re.IGNORECASE)
_COUNT = re.compile(
    rf"(?<![\w.-])(\d+|{alternation(NUMBER_WORDS)})\s+"
    r"(?:(?:distinct|separate|annotated|marked|localised|localized)\s+)?"
    r"(?:regions?\s+of\s+interest|ROIs?|regions?)\b",
    re.IGNORECASE,
)
_APOSTROPHE = r"(?:'|’)"
_PATIENT_SIDE = (
    re.compile(rf"\bpatient{_APOSTROPHE}s\s+(left|right)\b", re.IGNORECASE),
    re.compile(r"\b(left|right)\s+side\s+of\s+the\s+patient\b", re.IGNORECASE),
    re.compile(rf"\b(left|right)\s+(?:{PAIRED_STRUCTURE_PATTERN})\b", re.IGNORECASE),
)
_IMAGE_SIDE = (
    re.compile(r"\b(left|right)\s+(?:side|half)\s+of\s+the\s+image\b", re.IGNORECASE),
    re.compile(rf"\bimage{_APOSTROPHE}s\s+(left|right)\b", re.IGNORECASE),
)
# Where a text says which anatomy the image shows ("CT image of the liver", "a chest X-ray").
_IMAGE_NOUNS = r"image|scan|radiograph|photograph|slide|section|view|study|sonogram|examination|x-?ray|CT|MRI?"
_ORGAN_CLAIMS = (
    re.compile(
        rf"\b(?:{_IMAGE_NOUNS})\s+of\s+(?:the\s+)?(?:patient{_APOSTROPHE}s\s+)?(?:(?:left|right)\s+)?"
        rf"({ORGAN_WORD_PATTERN})\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\bimaged\s+(?:anatomy|organ)\s+is\s+(?:the\s+)?({ORGAN_WORD_PATTERN})\b", re.IGNORECASE),
    re.compile(rf"\b({ORGAN_WORD_PATTERN})\s+(?:{_IMAGE_NOUNS}|ultrasound)\b", re.IGNORECASE),
)


def claims_text(text: str) -> str:
    """The text without quoted background knowledge (sentences that cite a passage id)."""
    text = _BACKGROUND.sub(" ", text)
    return " ".join(s for s in _SENTENCE_END.split(text) if not _CITATION.search(s))


def _clauses(text: str) -> list[str]:
    """Sentences, split further at semicolons: the unit a statement is tied to an ROI in."""
    return [c for sentence in _SENTENCE_END.split(text) for c in sentence.split(";") if c.strip()]


def _rois_named(clause: str, rois: list[ROI]) -> list[ROI]:
    """The ROIs a clause is about: those whose label it names, or all of them when it names none."""
    named = [r for r in rois if r.label and re.search(rf"(?<!\w){re.escape(r.label)}(?!\w)", clause, re.IGNORECASE)]
    return named or rois


def _statements(text: str, pattern: re.Pattern[str], rois: list[ROI]) -> list[tuple[re.Match[str], list[ROI]]]:
    """Every match of `pattern`, with the ROIs its clause may refer to."""
    return [(m, _rois_named(clause, rois)) for clause in _clauses(text) for m in pattern.finditer(clause)]


def _where(roi: ROI) -> str:
    return f"{roi.label} is at {roi.position.vertical} {roi.position.horizontal} ({roi.area_ratio:.1f}%)"


def _rois_shown(rois: list[ROI]) -> str:
    return "; ".join(_where(roi) for roi in rois) if rois else "the record has no ROI"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- the checks
def check_modality(sample: Sample, text: str) -> Check:
    named = modalities_named(text)
    record = sample.modality
    if record not in MODALITY_PATTERNS:
        return Check("modality", True, f"record modality {record!r} has no vocabulary to check against")
    wrong = [m for m in named if m != record and m not in COMPATIBLE_MODALITIES.get(record, frozenset())]
    if wrong:
        return Check("modality", False, f"text names {', '.join(wrong)} but the record is {record}")
    if record in named:
        return Check("modality", True, f"text names {record}, as recorded")
    return Check("modality", True, "text names no modality")


def check_position(sample: Sample, text: str) -> Check:
    statements = _statements(text, _POSITION, sample.rois)
    if not statements:
        return Check("position", True, "text states no position words")
    problems, stated = [], []
    for match, rois in statements:
        vertical, horizontal = match.group(1).lower(), match.group(2).lower()
        stated.append(f"{vertical} {horizontal}")
        if not any((r.position.vertical, r.position.horizontal) == (vertical, horizontal) for r in rois):
            problems.append(f"text says {vertical} {horizontal} but {_rois_shown(rois)}")
    if problems:
        return Check("position", False, " | ".join(_unique(problems)))
    return Check("position", True, "position words agree: " + ", ".join(_unique(stated)))


def _area_agrees(stated: float, area_ratio: float) -> bool:
    return abs(stated - area_ratio) <= max(AREA_TOLERANCE_POINTS, AREA_TOLERANCE_RELATIVE * area_ratio)


def check_area(sample: Sample, text: str) -> Check:
    statements = _statements(text, _PERCENT, sample.rois)
    if not statements:
        return Check("area", True, "text states no area")
    problems, stated = [], []
    for match, rois in statements:
        value = float(match.group(1))
        stated.append(f"{value:g}%")
        if not any(_area_agrees(value, r.area_ratio) for r in rois):
            problems.append(f"text says {value:g}% but {_rois_shown(rois)}")
    if problems:
        return Check("area", False, " | ".join(_unique(problems)))
    return Check("area", True, "stated areas agree: " + ", ".join(_unique(stated)))


def _count_value(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[" ".join(word.lower().split())]


def check_roi_count(sample: Sample, text: str) -> Check:
    stated = [_count_value(m.group(1)) for m in _COUNT.finditer(text)]
    actual = len(sample.rois)
    if not stated:
        return Check("roi_count", True, "text states no count of regions")
    wrong = sorted({n for n in stated if n != actual})
    if wrong:
        shown = ", ".join(map(str, wrong))
        return Check("roi_count", False, f"text says {shown} region(s) but the record has {actual}")
    return Check("roi_count", True, f"stated count {actual} agrees")


def _patient_where(roi: ROI, orientation: str) -> str:
    side = patient_side(roi.position.horizontal, orientation)
    return f"{roi.label} is on the patient's {side}" if side else f"{roi.label} is in the centre band (no side)"


def check_side(sample: Sample, text: str) -> Check:
    """Each stated side must be where an ROI it may refer to is; an ROI in the centre band fits either side."""
    rois, orientation = sample.rois, sample.patient_left_on_image
    patient = [(m.group(1).lower(), r) for p in _PATIENT_SIDE for m, r in _statements(text, p, rois)]
    image = [(m.group(1).lower(), r) for p in _IMAGE_SIDE for m, r in _statements(text, p, rois)]
    if not patient and not image:
        return Check("side", True, "text states no side")
    if not rois:
        return Check("side", True, "side not verifiable: the record has no ROI")
    problems = []
    for side, candidates in image:
        if not any(HORIZONTAL_SIDE.get(r.position.horizontal) in (side, None) for r in candidates):
            problems.append(f"text puts it on the image's {side} but {_rois_shown(candidates)}")
    known = orientation in ("left", "right")
    for side, candidates in patient if known else []:
        if not any(patient_side(r.position.horizontal, orientation) in (side, None) for r in candidates):
            where = "; ".join(_patient_where(r, orientation) for r in candidates)
            problems.append(f"text says the patient's {side} but {where}")
    if problems:
        return Check("side", False, " | ".join(_unique(problems)))
    if patient and not known:
        return Check("side", True, "side not verifiable: the patient's orientation on the image is unknown")
    return Check("side", True, "stated sides agree: " + ", ".join(_unique([s for s, _ in patient + image])))


def check_organ(sample: Sample, text: str) -> Check:
    """Conservative: only a claim of which anatomy the image shows, in a different body region, is flagged."""
    claims = list(dict.fromkeys(m.group(1).lower() for p in _ORGAN_CLAIMS for m in p.finditer(text)))
    if not claims:
        return Check("organ", True, "text names no imaged organ")
    record_group = organ_group(sample.organ)
    if record_group is None:
        return Check("organ", True, f"organ not verifiable: record organ {sample.organ!r} has no body region")
    wrong = [c for c in claims if organ_group(c) not in (None, record_group)]
    if wrong:
        return Check(
            "organ", False,
            f"text says the image shows {', '.join(wrong)} but the record's organ is {sample.organ} ({record_group})",
        )
    return Check("organ", True, "named organs fit the record's " + str(canonical_organ(sample.organ)))


CHECKS = (check_modality, check_position, check_area, check_roi_count, check_side, check_organ)


def verify(sample: Sample, text: str | None = None) -> list[Check]:
    """Every check of `text` (default: the sample's description) against the record."""
    claims = claims_text(sample.description if text is None else text)
    return [check(sample, claims) for check in CHECKS]
