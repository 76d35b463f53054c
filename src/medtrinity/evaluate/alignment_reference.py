"""What a record's human annotation states, for the alignment judges: findings, negations, structures,
texture words and relations, each from the field that states it.

- the source's metadata: modality, organ;
- labels by kind (records.LABEL_KINDS): findings (disease, "finding" labels, the source's own finding ROIs),
  negated findings ("negative" labels: "no pneumothorax"), normal, anatomy; "case" and "uncertain" labels
  state nothing about this image and are left out;
- the source's own regions (ROIs whose source is "annotation"); an expert's regions are no human annotation;
- `reference_text`: a report is read clause by clause (`describe/verify_text`: negation scopes, hypotheticals)
  for finding nouns asserted or negated, texture words and relations between a lesion and its surroundings;
  a source's QA lines ("Q: Is there a pneumothorax? A: No") give findings asked about and answered yes or no;
  a released caption the build audits (MedTrinity-25M's, "reference:" checks) is a model's text and is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medtrinity.describe.disease_status import recorded_findings, uncertain_name
from medtrinity.describe.reference_audit import PREFIX as REFERENCE_CHECK
from medtrinity.describe.verify_subjects import (
    GENERIC_FINDING_NOUNS,
    SPECIFIC_FINDING_NOUNS,
    plural_forms,
)
from medtrinity.describe.verify_text import claims_text, split_clauses
from medtrinity.describe.vocabulary import alternation
from medtrinity.export.qa import label_key, negated, source_pairs
from medtrinity.records import Sample

# Finding nouns a report asserts or negates (the verifier's, without the generic "finding", "focus" …).
_GENERIC_SKIP = {
    "finding",
    "focus",
    "foci",
    "spot",
    "shadow",
    "pathology",
    "anomaly",
    "abnormality",
    "growth",
    "density",
    "core",
    "enhancement",
    "collection",
}
REPORT_FINDINGS = tuple(sorted(set(SPECIFIC_FINDING_NOUNS + GENERIC_FINDING_NOUNS) - _GENERIC_SKIP))
_FINDING_WORD = re.compile(rf"(?<![\w-])(?:{alternation(plural_forms(REPORT_FINDINGS))})(?![\w-])", re.IGNORECASE)
# Texture words: (group, value) — two values of one group contradict each other.
TEXTURE_WORDS = (
    (
        "brightness",
        "brighter",
        r"hyper(?:dense|intense|echoic|attenuat\w*|reflective)|increased\s+(?:density|signal|opacity)",
    ),
    (
        "brightness",
        "darker",
        r"hypo(?:dense|intense|echoic|attenuat\w*|reflective)|lucen(?:t|cy)|decreased\s+(?:density|signal)",
    ),
    ("brightness", "similar", r"iso(?:dense|intense|echoic|attenuat\w*)"),
    ("homogeneity", "heterogeneous", r"heterogene\w*|inhomogene\w*|mottled"),
    ("homogeneity", "homogeneous", r"(?<!in)homogene\w*|uniform"),
    (
        "margin",
        "ill-defined",
        r"ill[- ]defined|irregular\s+margins?|poorly\s+(?:defined|marginated)|spiculated|indistinct",
    ),
    (
        "margin",
        "well-defined",
        r"well[- ](?:defined|circumscribed|marginated)|smooth\s+margins?|sharp(?:ly)?\s+(?:defined|marginated)",
    ),
)
RELATION_WORDS = (
    ("mass effect", r"mass\s+effect"),
    ("midline shift", r"midline\s+shift"),
    ("compression", r"compress\w*"),
    ("displacement", r"displac\w*"),
    ("invasion", r"invad\w*|invasion|infiltrat(?:es|ing|ion)\s+(?:the|into)"),
    ("extension", r"extend\w*\s+(?:in)?to|extension\s+into"),
)
_CLOSED_QUESTION = re.compile(r"^\s*(?:is|are|does|do|was|were|can|could)\b", re.IGNORECASE)


@dataclass
class Reference:
    modality: str
    organ: str | None
    structures: list[str] = field(default_factory=list)  # anatomy the annotation names (organ first)
    annotated_rois: list[int] = field(default_factory=list)  # indices of the source's own ROIs
    findings: list[str] = field(default_factory=list)  # asserted findings
    negated: list[str] = field(default_factory=list)  # findings stated absent
    normal: bool = False
    texture: dict[str, str] = field(default_factory=dict)  # group -> value the reference text states
    relations: dict[str, bool] = field(default_factory=dict)  # relation -> asserted (True) / negated (False)
    text_kind: str | None = None  # "report", "qa" or None

    @property
    def human(self) -> bool:
        """Whether the record carries any human annotation beyond modality and organ."""
        return bool(
            self.annotated_rois
            or self.findings
            or self.negated
            or self.normal
            or self.text_kind
            or len(self.structures) > 1
        )


def _add(items: list[str], name: str) -> None:
    if name and label_key(name) not in {label_key(i) for i in items}:
        items.append(name)


def find_words(text: str, patterns) -> list[tuple[str, str]]:
    return [(group, value) for group, value, pattern in patterns if re.search(rf"\b(?:{pattern})", text, re.IGNORECASE)]


def _read_report(text: str, ref: Reference) -> None:
    for clause in split_clauses(claims_text(text)):
        if clause.hypothetical:
            continue
        for m in _FINDING_WORD.finditer(clause.text):
            asserted = m.end() <= len(clause.asserted)
            _add(ref.findings if asserted else ref.negated, m.group(0).lower())
        if clause.asserted:
            for group, value in find_words(clause.asserted, TEXTURE_WORDS):
                ref.texture.setdefault(group, value)
        for name, pattern in RELATION_WORDS:
            if re.search(rf"\b(?:{pattern})", clause.text, re.IGNORECASE):
                ref.relations.setdefault(name, bool(re.search(rf"\b(?:{pattern})", clause.asserted, re.IGNORECASE)))
    ref.negated = [n for n in ref.negated if label_key(n) not in {label_key(f) for f in ref.findings}]


def _read_qa(sample: Sample, ref: Reference) -> bool:
    pairs = source_pairs(sample)
    for pair in pairs:
        answer = pair.answer.strip().lower()
        if answer not in ("yes", "no") or not _CLOSED_QUESTION.match(pair.question):
            continue
        for m in _FINDING_WORD.finditer(pair.question):
            _add(ref.findings if answer == "yes" else ref.negated, m.group(0).lower())
    return bool(pairs)


def reference_of(sample: Sample) -> Reference:
    ref = Reference(sample.modality, sample.organ)
    if sample.organ:
        ref.structures.append(sample.organ)
    for i, roi in enumerate(sample.rois):
        if roi.source == "annotation":
            ref.annotated_rois.append(i)
            if roi.kind == "anatomy":
                _add(ref.structures, roi.label)
    for label in sample.labels:
        kind = sample.label_kinds.get(label)
        if kind == "anatomy":
            _add(ref.structures, label)
        elif kind == "negative":
            _add(ref.negated, negated(label))
        elif kind == "normal":
            ref.normal = True
    for name in recorded_findings(sample).names():
        for part in name.split(","):
            _add(ref.findings, uncertain_name(part.strip()))
    # a released caption that the build audits ("reference:" checks, MedTrinity-25M's) is a model's text
    released_caption = any(c.name.startswith(REFERENCE_CHECK) for c in sample.checks)
    if sample.reference_text and not released_caption:
        if _read_qa(sample, ref):
            ref.text_kind = "qa"
        else:
            ref.text_kind = "report"
            _read_report(sample.reference_text, ref)
    return ref
