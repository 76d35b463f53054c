"""What the source says about disease, in the words its label kinds allow (records.LABEL_KINDS).

Only a finding is called a finding: the record's `disease`, labels of kind "finding", and ROI labels of kind
"finding" that the source's own annotation drew. A negative label becomes a negative statement, "normal" is
said only when a normal-kind label says so, and a source that says nothing gets "no diagnosis" — never "no
disease". Labels of other kinds are stated as what they are (a device, a stain, a study type, a tissue class)
and undeclared labels ("label") as labels whose meaning is not declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medtrinity.describe.claims import Fact, say, word_list
from medtrinity.records import Claim, Sample

ATTRIBUTE = "structures"
STATUS_KINDS = frozenset({"finding", "uncertain", "case", "negative", "normal"})
_UNCERTAIN_SUFFIX = re.compile(r"\s*\((?:uncertain|possible|probable)\)\s*$", re.IGNORECASE)


def label_kind(sample: Sample, label: str) -> str:
    """A label's declared kind; "label" (never a finding) when the recipe declares none."""
    return sample.label_kinds.get(label) or "label"


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class Findings:
    """The findings the source records, each with the field it comes from, in the order they are stated."""

    disease: str | None = None
    from_labels: list[tuple[str, str]] = field(default_factory=list)  # (label, "labels[i]")
    from_annotation: list[tuple[str, str]] = field(default_factory=list)  # (label, "rois[i].label")

    def names(self) -> list[str]:
        head = [self.disease] if self.disease else []
        return head + [name for name, _ in self.from_labels + self.from_annotation]

    def evidence(self) -> list[tuple[str, str]]:
        head = [(self.disease, "disease")] if self.disease else []
        return head + self.from_labels + self.from_annotation

    def __bool__(self) -> bool:
        return bool(self.names())


def recorded_findings(sample: Sample) -> Findings:
    """The record's findings: `disease`, finding-kind labels, and finding-kind ROIs of the source's annotation.

    A label already stated (same words, or one of the comma-separated parts of `disease`) is not repeated.
    """
    findings = Findings(disease=sample.disease or None)
    stated = set()
    if findings.disease:
        stated = {_key(findings.disease)} | {_key(part) for part in findings.disease.split(",")}
    for index, label in enumerate(sample.labels):
        if label_kind(sample, label) == "finding" and _key(label) not in stated:
            stated.add(_key(label))
            findings.from_labels.append((label, f"labels[{index}]"))
    for index, roi in enumerate(sample.rois):
        if roi.kind == "finding" and roi.source == "annotation" and _key(roi.label) not in stated:
            stated.add(_key(roi.label))
            findings.from_annotation.append((roi.label, f"rois[{index}].label"))
    return findings


def _labels_of(sample: Sample, kind: str) -> list[tuple[str, str]]:
    """(label, evidence) of every label of `kind`, first occurrence only."""
    seen: dict[str, str] = {}
    for index, label in enumerate(sample.labels):
        if label_kind(sample, label) == kind:
            seen.setdefault(label, f"labels[{index}]")
    return list(seen.items())


def uncertain_name(label: str) -> str:
    """'Pneumonia (uncertain)' -> 'Pneumonia': the sentence says the uncertainty in words."""
    return _UNCERTAIN_SUFFIX.sub("", label) or label


def negative_phrase(label: str) -> str:
    """'no pneumothorax' stays; 'pneumothorax' becomes 'no pneumothorax'."""
    return label if re.match(r"(?i)(no|not|without)\b", label.strip()) else f"no {label}"


def _facts(kind: str, items: list[tuple[str, str]]) -> list[Fact]:
    return [Fact(kind, value, evidence) for value, evidence in items]


def _image_noun(sample: Sample) -> str:
    if sample.origin.slice is not None:
        return "slice"
    if sample.origin.frame is not None:
        return "frame"
    return "image"


def status_claims(sample: Sample) -> list[Claim]:
    """The sentences on disease status and on the source's other labels."""
    claims: list[Claim] = []
    findings = recorded_findings(sample)
    if findings.disease:
        claims += say(
            ATTRIBUTE,
            f"The source records the finding as {findings.disease}.",
            [Fact("finding", findings.disease, "disease")],
        )
    if findings.from_labels:
        names = [name for name, _ in findings.from_labels]
        noun = "finding" if len(names) == 1 else "findings"
        text = (
            f"The source's labels also record the {noun} {word_list(names)}."
            if findings.disease
            else f"The source records the {noun} as {word_list(names)}."
        )
        claims += say(ATTRIBUTE, text, _facts("finding", findings.from_labels))
    if findings.from_annotation:
        names = [name for name, _ in findings.from_annotation]
        noun = "finding" if len(names) == 1 else "findings"
        claims += say(
            ATTRIBUTE,
            f"The source's annotation marks the {noun} {word_list(names)}.",
            _facts("finding", findings.from_annotation),
        )

    uncertain = _labels_of(sample, "uncertain")
    if uncertain:
        names = [uncertain_name(label) for label, _ in uncertain]
        claims += say(ATTRIBUTE, f"The source marks {word_list(names)} as uncertain.", _facts("uncertain", uncertain))
    case = _labels_of(sample, "case")
    if case:
        names = word_list([label for label, _ in case])
        if any(roi.kind == "finding" for roi in sample.rois):
            text = f"The case as a whole is recorded with {names}."
        else:
            text = f"No lesion is annotated on this {_image_noun(sample)} of a case recorded with {names}."
        claims += say(ATTRIBUTE, text, _facts("case", case))
    negative = _labels_of(sample, "negative")
    if negative:
        claims += say(
            ATTRIBUTE,
            f"The source records {word_list([negative_phrase(n) for n, _ in negative])}.",
            _facts("negative", negative),
        )
    normal = _labels_of(sample, "normal")
    if normal:
        claims += say(ATTRIBUTE, "The source labels the image as normal.", _facts("normal", normal))

    undeclared = [
        (label, evidence)
        for label, evidence in _labels_of(sample, "label")
        if label not in {roi.label for roi in sample.rois}
    ]
    if not claims and undeclared:
        names = word_list([label for label, _ in undeclared])
        noun = "label" if len(undeclared) == 1 else "labels"
        claims += say(
            ATTRIBUTE,
            f"The source gives the {noun} {names}, whose meaning the recipe does not declare, and no diagnosis.",
            [Fact("no_diagnosis", "", "disease,labels"), *_facts("label", undeclared)],
        )
        undeclared = []
    elif not claims:
        claims += say(
            ATTRIBUTE, "The source gives no diagnosis for this image.", [Fact("no_diagnosis", "", "disease,labels")]
        )
    return claims + _other_label_claims(sample, undeclared)


def _other_label_claims(sample: Sample, undeclared: list[tuple[str, str]]) -> list[Claim]:
    """Devices, stains, study types, tissue classes, and the undeclared labels not stated yet."""
    claims: list[Claim] = []
    devices = _labels_of(sample, "device")
    if devices:
        claims += say(ATTRIBUTE, f"The source notes {word_list([d for d, _ in devices])}.", _facts("device", devices))
    stains = _labels_of(sample, "stain")
    if stains:
        claims += say(
            ATTRIBUTE, f"The source gives the stain as {word_list([s for s, _ in stains])}.", _facts("stain", stains)
        )
    studies = _labels_of(sample, "study")
    if studies:
        claims += say(
            ATTRIBUTE, f"The source gives the study as {word_list([s for s, _ in studies])}.", _facts("study", studies)
        )
    tissues = _labels_of(sample, "tissue")
    if tissues:
        what = "tile" if sample.modality == "Histopathology" else "image"
        claims += say(
            ATTRIBUTE,
            f"The source classes this {what} as {word_list([t for t, _ in tissues])}.",
            _facts("tissue", tissues),
        )
    if undeclared:
        noun = "label" if len(undeclared) == 1 else "labels"
        claims += say(
            ATTRIBUTE,
            f"The source also gives the {noun} {word_list([u for u, _ in undeclared])}, "
            "whose meaning the recipe does not declare.",
            _facts("label", undeclared),
        )
    return claims
