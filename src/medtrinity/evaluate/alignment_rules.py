"""The `rules` alignment judge: each of the paper's five attributes scored 0, 1 or 2 against the record's
human annotation (`alignment_reference`), without a model, reading the description as `describe/verify` does.

Points follow the paper's rubric (seed Figure 2): 2 when the description states what the annotation states,
1 when it leaves out something the annotation states ("mentioned in one"), 0 when it contradicts it. Each lost
point has a one-line reason that names the attribute. An attribute the annotation says nothing about is not
assessable (None), never a silent 2.
- modality: the modalities the text names (`verify.check_modality`) against the source's modality;
- structures: the organ claims (`verify.check_organ`) against the source's organ; the organ and the anatomy
  the annotation labels, named or not;
- roi: position, side and area statements (`verify.check_position`, `check_side`, `check_area`) against the
  source's own ROIs only (an expert's ROIs are no human annotation);
- texture (the paper's "analysis of abnormal characteristics"): findings the annotation records, stated or
  negated by the text (`verify_text` negation scopes), findings it negates that the text asserts, and texture
  words a report states (hyperdense, heterogeneous, ill-defined, …) against the text's;
- local_global: relations a report states (mass effect, midline shift, compression, …) against the text's.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from medtrinity.describe.anatomy import ORGAN_WORDS, canonical_organ, organ_fits
from medtrinity.describe.verify import (
    check_area,
    check_modality,
    check_organ,
    check_position,
    check_side,
    read,
)
from medtrinity.describe.verify_text import claims_text, split_clauses
from medtrinity.evaluate.alignment_reference import (
    RELATION_WORDS,
    TEXTURE_WORDS,
    Reference,
    find_words,
    reference_of,
)
from medtrinity.export.qa import label_key
from medtrinity.records import ATTRIBUTE_NAMES, Sample

JUDGE = "rules"


@dataclass
class AttributeScore:
    attribute: str
    score: int | None  # 0-2, or None: not assessable
    reasons: list[str] = field(default_factory=list)


def _score(attribute: str, lost: list[tuple[int, str]]) -> AttributeScore:
    points = max(0, 2 - sum(p for p, _ in lost))
    return AttributeScore(attribute, points, [f"{attribute}: {reason}" for _, reason in lost])


def _mentions(text: str, name: str, inside: list[str] = ()) -> str | None:
    """'asserted' when a clause of the text asserts `name`, 'negated' when only negated, else None. Occurrences
    within one of the names `inside` ("abnormality other than lung opacity") do not count as `name`."""
    for longer in inside:
        if label_key(name) in label_key(longer) and label_key(name) != label_key(longer):
            text = re.sub(re.escape(longer), lambda m: " " * len(m.group(0)), text, flags=re.IGNORECASE)
    words = [re.escape(w) for w in name.lower().replace("-", " ").split()]
    if not words:
        return None
    pattern = re.compile(r"(?<![\w-])" + r"[\s-]+".join(words) + r"(?:e?s)?(?![\w-])", re.IGNORECASE)
    stance = None
    for clause in split_clauses(claims_text(text)):
        if clause.hypothetical:
            continue
        for m in pattern.finditer(clause.text):
            if m.end() <= len(clause.asserted):
                return "asserted"
            stance = "negated"
    return stance


def judge_modality(sample: Sample, reading) -> AttributeScore:
    check = check_modality(reading)
    if check.status == "not-verifiable":
        return AttributeScore("modality", None, [f"modality: not assessable: {check.detail}"])
    if check.status == "fail":
        return _score("modality", [(2, check.detail)])
    if check.detail == "text names no modality":
        return _score("modality", [(1, f"the description names no modality (the source records {sample.modality})")])
    return _score("modality", [])


def judge_structures(sample: Sample, reading, ref: Reference) -> AttributeScore:
    if not ref.structures:
        return AttributeScore("structures", None, ["structures: not assessable: the source names no organ or anatomy"])
    check = check_organ(reading)
    if check.status == "fail":
        return _score("structures", [(2, check.detail)])
    text = claims_text(sample.description)
    recorded = canonical_organ(sample.organ)
    missing = []
    for name in ref.structures:
        organ = canonical_organ(name)
        if name == sample.organ and organ is not None:
            named = any(
                (c := canonical_organ(m.group(0))) and organ_fits(c, recorded, sample.modality)
                for m in ORGAN_WORDS.finditer(text)
            )
        else:
            named = _mentions(text, re.sub(r"\s*\(.*?\)", "", name)) is not None
        if not named:
            missing.append(name)
    return _score(
        "structures", [(1, f"does not name {', '.join(missing)}, which the source annotates")] if missing else []
    )


def judge_roi(sample: Sample, ref: Reference) -> AttributeScore:
    if not ref.annotated_rois:
        return AttributeScore("roi", None, ["roi: not assessable: the source drew no region (only an expert did)"])
    own = dataclasses.replace(sample, rois=[sample.rois[i] for i in ref.annotated_rois])
    reading = read(own, claims_text(sample.description))
    stated = [s for s in reading.placements + reading.areas if s.subject != ()]
    lost = [
        (1, check.detail)
        for check in (check_position(reading), check_side(reading), check_area(reading))
        if check.status == "fail"
    ]
    if not stated:
        lost.append((1, "states no position or size of the regions the source annotated"))
    return _score("roi", lost)


def judge_texture(sample: Sample, ref: Reference) -> AttributeScore:
    if not (ref.findings or ref.negated or ref.normal or ref.texture):
        return AttributeScore(
            "texture", None, ["texture: not assessable: the annotation states no finding, negation or texture"]
        )
    text, lost = sample.description, []
    for name in ref.negated:
        if _mentions(text, name, inside=ref.findings) == "asserted":
            lost.append((2, f"states {name}, which the reference negates"))
    for name in ref.findings:
        stance = _mentions(text, name)
        if stance == "negated":
            lost.append((2, f"negates {name}, which the reference records"))
        elif stance is None:
            lost.append((1, f"does not mention {name}, which the reference records"))
    stated = dict(find_words(claims_text(text), TEXTURE_WORDS))
    for group, value in ref.texture.items():
        if group in stated and stated[group] != value:
            lost.append((2, f"calls it {stated[group]} where the reference says {value}"))
        elif group not in stated:
            lost.append((1, f"does not state the {group} ({value}) the reference states"))
    return _score("texture", lost)


def judge_local_global(sample: Sample, ref: Reference) -> AttributeScore:
    if not ref.relations:
        return AttributeScore(
            "local_global",
            None,
            ["local_global: not assessable: the reference states no relation of a lesion to its surroundings"],
        )
    lost = []
    for name, asserted in ref.relations.items():
        pattern = dict(RELATION_WORDS)[name]
        stance = None
        for clause in split_clauses(claims_text(sample.description)):
            if not clause.hypothetical and re.search(rf"\b(?:{pattern})", clause.text, re.IGNORECASE):
                stance = bool(re.search(rf"\b(?:{pattern})", clause.asserted, re.IGNORECASE)) or stance
        if stance is None:
            lost.append((1, f"does not state the {name} the reference {'states' if asserted else 'rules out'}"))
        elif stance != asserted:
            said, other = ("states", "rules out") if stance else ("rules out", "states")
            lost.append((2, f"{said} {name}, which the reference {other}"))
    return _score("local_global", lost)


def judge_rules(sample: Sample) -> list[AttributeScore] | None:
    """The five scores in ATTRIBUTE_NAMES order, or None when the record carries no human annotation."""
    ref = reference_of(sample)
    if not ref.human:
        return None
    reading = read(sample, claims_text(sample.description))
    scores = [
        judge_modality(sample, reading),
        judge_structures(sample, reading, ref),
        judge_roi(sample, ref),
        judge_texture(sample, ref),
        judge_local_global(sample, ref),
    ]
    assert [s.attribute for s in scores] == list(ATTRIBUTE_NAMES)
    return scores
