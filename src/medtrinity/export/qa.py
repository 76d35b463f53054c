"""Question–answer pairs from a record's verified fields, over the paper's attributes.

Every answer is a field of the record, or a word computed from one the way the grounded describer computes
it, and each pair names the fields it came from (`fields`), so anyone can re-derive it:
- modality ("CT"), organ (the source's organ word);
- abnormality: the open question lists the record's findings (`disease` and labels of kind "finding", see
  describe/disease_status.py); closed yes/no questions ask about each finding ("Yes"), each label of kind
  "negative" ("no pneumothorax" -> "No"), findings other records of the same source and modality carry but
  this one does not ("No"; only when the source gives this record a disease status at all), and whether the image is
  normal. A "case" label (recorded for the whole volume, not this slice) and an uncertain one are never asked
  about. Over a whole export `ClosedBalance` keeps Yes and No within one of each other;
- position (the ROI's two position words), patient side (only where origin.patient_left_on_image is known,
  describe/vocabulary.py patient_side), size (area band: small < 1 %, moderate, large > 10 %, with the
  percent), quantity (ROIs per label);
- texture: brightness, homogeneity and margin words from the claims the grounded describer measured.
ROI questions use the source's annotations, and experts' ROIs only with `include_expert`; they ask about an
ROI by its label only when no other ROI has that label. The source's own QA (SLAKE, VQA-RAD
`reference_text` "Q: … A: …" lines) is kept as it is, with origin "source".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from medtrinity.describe.claims import word_list
from medtrinity.describe.disease_status import recorded_findings, uncertain_name
from medtrinity.describe.vocabulary import brightness_term, patient_side
from medtrinity.export.phrasebank import pick
from medtrinity.records import Position, Sample

CLOSED, OPEN = "CLOSED", "OPEN"
CONTENT_TYPES = ("modality", "organ", "abnormality", "position", "size", "quantity", "texture")
YES, NO = "Yes", "No"
ROI_KINDS = ("finding", "anatomy", "tissue", "device")  # ROIs asked about by name
TEXTURE_KINDS = ("brightness", "homogeneity", "margin")
MAX_ROI_SUBJECTS = 3  # ROIs asked about per record: findings first, then the largest
MAX_CLOSED_PAIRS = 2  # Yes/No pairs per record
SMALL_AREA, LARGE_AREA = 1.0, 10.0  # percent of the image
DRAWN_NEGATIVE_FIELDS = ("labels", "label_kinds", "source", "modality")
_NEGATION = re.compile(r"(?i)^\s*(?:no|not|without)\s+")
_SOURCE_QA = re.compile(r"^Q: (?P<q>.+?) A: (?P<a>.*)$")
# SLAKE's content types, read from a source question's words (the record does not keep the source's own).
_SOURCE_CONTENT = (
    ("modality", r"\b(?:modality|CT|MRI?|x-?ray|ultrasound|scan)\b"),
    ("plane", r"\b(?:plane|axial|coronal|sagittal|transverse)\b"),
    ("organ", r"\b(?:organs?|body part|part of the body)\b"),
    ("quantity", r"\bhow many\b"),
    ("abnormality", r"\b(?:abnormal\w*|normal|diseases?|lesions?|mass|tumou?r|findings?|healthy|nodules?)\b"),
    ("position", r"\b(?:where|which side|left|right|locat\w+)\b"),
    ("size", r"\b(?:size|larg\w+|big\w*|small\w*)\b"),
    ("color", r"\bcolou?r\b"),
    ("shape", r"\bshape\b"),
)


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    answer_type: str  # CLOSED (yes/no) or OPEN
    content_type: str  # CONTENT_TYPES; a source's pair may also be "plane", "color", "shape" or "other"
    fields: tuple[str, ...]  # the record fields the answer comes from ("rois[0].position", "labels[1]")
    origin: str = "generated"  # or "source": the source's own QA, kept as it is
    subject: str | None = None  # the label or finding asked about, when there is one

    def as_dict(self) -> dict:
        return asdict(self) | {"fields": list(self.fields)}


@dataclass
class QAContext:
    """What QA needs beyond the record: the findings each source labels, and which ROIs count."""

    finding_labels: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (source, modality) -> labels
    include_expert: bool = False


class ClosedBalance:
    """Keeps the Yes and No answers of closed questions within one of each other over a whole export.

    Each record contributes as many Yes as No pairs as it can; one extra pair of the short side's opposite
    is added only when it does not push the running difference beyond one. Records are read in the build's
    fixed order, so the choice is the same on every run.
    """

    def __init__(self) -> None:
        self.difference = 0  # Yes minus No so far

    def choose(self, yes: list[QAPair], no: list[QAPair]) -> list[QAPair]:
        pairs = min(len(yes), len(no), MAX_CLOSED_PAIRS)
        chosen = yes[:pairs] + no[:pairs]
        if pairs < MAX_CLOSED_PAIRS and len(yes) > pairs and self.difference <= 0:
            chosen.append(yes[pairs])
            self.difference += 1
        elif pairs < MAX_CLOSED_PAIRS and len(no) > pairs and self.difference >= 0:
            chosen.append(no[pairs])
            self.difference -= 1
        return chosen


# ---------------------------------------------------------------- small words
def label_phrase(label: str) -> str:
    """A label as it reads inside a sentence: 'Lung Opacity' -> 'lung opacity', acronyms kept ('GD-enhancing')."""
    return " ".join(
        word if any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word) else word.lower()
        for word in label.split()
    )


def label_key(text: str) -> str:
    return " ".join(text.lower().split())


def negated(label: str) -> str:
    """'no pneumothorax' -> 'pneumothorax'."""
    return _NEGATION.sub("", label).strip()


def size_band(area_ratio: float) -> str:
    if area_ratio < SMALL_AREA:
        return "small"
    return "large" if area_ratio > LARGE_AREA else "moderate"


def size_answer(area_ratio: float) -> str:
    """'small, about 0.6% of the image'."""
    amount = "less than 0.1%" if area_ratio < 0.1 else f"about {area_ratio:.1f}%"
    return f"{size_band(area_ratio)}, {amount} of the image"


def position_answer(position: Position) -> str:
    if position.horizontal == "center" and position.vertical == "middle":
        return "In the center of the image"
    return f"In the {position.vertical} {position.horizontal} region of the image"


def _words_overlap(a: str, b: str) -> bool:
    """One name's words contain the other's ('effusion' and 'pleural effusion')."""
    left, right = set(label_key(a).split()), set(label_key(b).split())
    return bool(left) and bool(right) and (left <= right or right <= left)


def _order(record_id: str, pairs: list[QAPair]) -> list[QAPair]:
    """A fixed order per record that does not put every Yes before every No."""
    return sorted(pairs, key=lambda p: hashlib.sha1(f"{record_id}\0{p.question}".encode()).digest())


# ---------------------------------------------------------------- abnormality
def positive_findings(sample: Sample) -> list[tuple[str, str]]:
    """(finding, field) of every finding the record states for this image, each once."""
    found = recorded_findings(sample)
    named: dict[str, tuple[str, str]] = {}
    if found.disease:
        for part in found.disease.split(","):
            if part.strip():
                named.setdefault(label_key(part), (part.strip(), "disease"))
    for name, evidence in found.from_labels + found.from_annotation:
        named.setdefault(label_key(name), (name, evidence))
    return list(named.values())


def _labels_of_kind(sample: Sample, kind: str) -> list[tuple[str, str]]:
    return [(label, f"labels[{i}]") for i, label in enumerate(sample.labels) if sample.label_kinds.get(label) == kind]


def _names_on_image(sample: Sample) -> list[str]:
    """Every name the record attaches to this image, of any kind: a drawn "No" must overlap none of them."""
    names = [*sample.labels, *sample.label_kinds, *(roi.label for roi in sample.rois)]
    names += [part for part in (sample.disease or "").split(",") if part.strip()]
    return [negated(uncertain_name(name)) for name in names]


def closed_candidates(sample: Sample, context: QAContext) -> tuple[list[QAPair], list[QAPair]]:
    """(Yes questions, No questions) the record supports, most direct first."""
    rid = sample.id

    def finding_question(name: str, answer: str, fields: tuple[str, ...]) -> QAPair:
        question = pick("finding", rid, label_key(name), label=label_phrase(name))
        return QAPair(question, answer, CLOSED, "abnormality", fields, subject=name)

    positives = positive_findings(sample)
    normal = _labels_of_kind(sample, "normal")
    negatives = [(negated(label), evidence) for label, evidence in _labels_of_kind(sample, "negative")]
    negatives = [(name, ev) for name, ev in negatives if not any(_words_overlap(name, p) for p, _ in positives)]
    yes = [finding_question(name, YES, (evidence,)) for name, evidence in positives]
    no = [finding_question(name, NO, (evidence,)) for name, evidence in negatives]
    if positives or normal or negatives:  # the source gives this image a disease status: absent labels mean "no"
        on_image = _names_on_image(sample)
        pool = [
            label
            for label in context.finding_labels.get((sample.source, sample.modality), [])
            if not any(_words_overlap(label, name) for name in on_image)
            and not any(_words_overlap(label, name) for name, _ in negatives)
        ]
        pool.sort(key=lambda label: hashlib.sha1(f"{rid}\0{label_key(label)}".encode()).digest())
        no += [finding_question(label, NO, DRAWN_NEGATIVE_FIELDS) for label in pool]
    if normal and not positives:
        yes.append(QAPair(pick("normal", rid), YES, CLOSED, "abnormality", (normal[0][1],), subject="normal"))
    elif positives and not normal:
        no.append(QAPair(pick("normal", rid), NO, CLOSED, "abnormality", (positives[0][1],), subject="normal"))
    return yes, no


# ---------------------------------------------------------------- ROIs
def _roi_subjects(sample: Sample, context: QAContext) -> list[int]:
    """Indices of the ROIs asked about by name: included, of a named kind, the only one with its label."""
    included = [i for i, roi in enumerate(sample.rois) if roi.source == "annotation" or context.include_expert]
    counts: dict[str, int] = {}
    for i in included:
        counts[sample.rois[i].label] = counts.get(sample.rois[i].label, 0) + 1
    named = [i for i in included if sample.rois[i].kind in ROI_KINDS and counts[sample.rois[i].label] == 1]
    named.sort(key=lambda i: (sample.rois[i].kind != "finding", -sample.rois[i].area_ratio, i))
    return named[:MAX_ROI_SUBJECTS]


def roi_pairs(sample: Sample, index: int) -> list[QAPair]:
    roi, rid = sample.rois[index], sample.id
    name = label_phrase(roi.label)
    key = f"{index}"
    pairs = [
        QAPair(
            pick("position", rid, key, label=name),
            position_answer(roi.position),
            OPEN,
            "position",
            (f"rois[{index}].position",),
            subject=roi.label,
        )
    ]
    side = patient_side(roi.position.horizontal, sample.patient_left_on_image)
    if side:
        pairs.append(
            QAPair(
                pick("side", rid, key, label=name),
                side,
                OPEN,
                "position",
                (f"rois[{index}].position", "origin.patient_left_on_image"),
                subject=roi.label,
            )
        )
    pairs.append(
        QAPair(
            pick("size", rid, key, label=name),
            size_answer(roi.area_ratio),
            OPEN,
            "size",
            (f"rois[{index}].area_ratio",),
            subject=roi.label,
        )
    )
    if sample.describer.startswith("grounded"):  # texture words only where the grounded describer measured them
        for j, claim in enumerate(sample.claims):
            if claim.subject == index and claim.kind in TEXTURE_KINDS:
                answer = brightness_term(sample.modality, claim.value) if claim.kind == "brightness" else claim.value
                pairs.append(
                    QAPair(
                        pick(claim.kind, rid, key, label=name),
                        answer,
                        OPEN,
                        "texture",
                        (f"claims[{j}]",),
                        subject=roi.label,
                    )
                )
    return pairs


def quantity_pairs(sample: Sample, context: QAContext) -> list[QAPair]:
    counts: dict[str, int] = {}
    for roi in sample.rois:
        if roi.kind in ROI_KINDS and (roi.source == "annotation" or context.include_expert):
            counts[roi.label] = counts.get(roi.label, 0) + 1
    return [
        QAPair(
            pick("quantity", sample.id, label_key(label), label=label_phrase(label)),
            str(n),
            OPEN,
            "quantity",
            ("rois[*].label",),
            subject=label,
        )
        for label, n in list(counts.items())[:MAX_ROI_SUBJECTS]
    ]


# ---------------------------------------------------------------- the source's own QA
def source_content_type(question: str) -> str:
    for content, pattern in _SOURCE_CONTENT:
        if re.search(pattern, question, flags=0 if content == "modality" else re.IGNORECASE):
            return content
    return "other"


def source_pairs(sample: Sample) -> list[QAPair]:
    """The source's QA lines ("Q: … A: …") when the whole reference text is made of them."""
    lines = [line for line in (sample.reference_text or "").splitlines() if line.strip()]
    matches = [_SOURCE_QA.match(line.strip()) for line in lines]
    if not lines or not all(matches):
        return []
    pairs = []
    for match in matches:
        question, answer = match["q"].strip(), match["a"].strip()
        answer_type = CLOSED if answer.lower() in ("yes", "no") else OPEN
        pairs.append(
            QAPair(question, answer, answer_type, source_content_type(question), ("reference_text",), origin="source")
        )
    return pairs


# ---------------------------------------------------------------- a record's pairs
def qa_pairs(sample: Sample, context: QAContext, balance: ClosedBalance | None = None) -> list[QAPair]:
    """The record's pairs in a fixed order: image-level, closed, per ROI, counts, then the source's own.

    Without `balance` every closed candidate is returned (evaluation); with it, the balanced choice.
    """
    rid = sample.id
    pairs = [QAPair(pick("modality", rid), sample.modality, OPEN, "modality", ("modality",))]
    if sample.organ:
        pairs.append(QAPair(pick("organ", rid), sample.organ, OPEN, "organ", ("organ",)))
    positives = positive_findings(sample)
    if positives:
        pairs.append(
            QAPair(
                pick("abnormality", rid),
                word_list([label_phrase(n) for n, _ in positives]),
                OPEN,
                "abnormality",
                tuple(evidence for _, evidence in positives),
            )
        )
    yes, no = closed_candidates(sample, context)
    pairs += _order(rid, balance.choose(yes, no) if balance else yes + no)
    for index in _roi_subjects(sample, context):
        pairs += roi_pairs(sample, index)
    return pairs + quantity_pairs(sample, context) + source_pairs(sample)
