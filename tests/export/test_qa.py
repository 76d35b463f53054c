"""QA pairs: every answer re-derived from the record's own fields; closed answers balanced; the rules on
negatives, case labels, uncertain labels and patient sides."""

from __future__ import annotations

import json
import re

import pytest
from fixtures.exporting import export

from medtrinity.describe.vocabulary import brightness_term, patient_side
from medtrinity.export.build_reader import Build
from medtrinity.export.phrasebank import BANK, pick
from medtrinity.export.qa import (
    CLOSED,
    ClosedBalance,
    QAContext,
    closed_candidates,
    qa_pairs,
    size_band,
    source_pairs,
)
from medtrinity.export.selection import Selection, scan
from medtrinity.records import ROI, Claim, Origin, Position, Sample, row_to_sample


def _words(text: str) -> set[str]:
    return set(re.sub(r"\s*\((?:uncertain|possible|probable)\)\s*$", "", text, flags=re.IGNORECASE).lower().split())


def _on_image(sample: Sample) -> list[set[str]]:
    names = [*sample.labels, *sample.label_kinds, *(r.label for r in sample.rois), *(sample.disease or "").split(",")]
    return [_words(re.sub(r"(?i)^\s*(no|not|without)\s+", "", n)) for n in names if n.strip()]


def _field(sample: Sample, path: str):
    match = re.fullmatch(r"(\w+)\[(\d+)\](?:\.(\w+))?", path)
    if not match:
        return getattr(sample, path)
    value = getattr(sample, match[1])[int(match[2])]
    return getattr(value, match[3]) if match[3] else value


def _findings(sample: Sample) -> set[str]:
    """The record's findings, read straight from its fields: disease parts, finding labels, annotated findings."""
    found = {p.strip().lower() for p in (sample.disease or "").split(",") if p.strip()}
    found |= {label.lower() for label in sample.labels if sample.label_kinds.get(label) == "finding"}
    found |= {r.label.lower() for r in sample.rois if r.kind == "finding" and r.source == "annotation"}
    return found


def rederive(pair, sample: Sample, pools: dict) -> None:
    """Assert that `pair.answer` follows from the record fields `pair.fields` name."""
    if pair.origin == "source":
        assert f"Q: {pair.question} A: {pair.answer}" in sample.reference_text.splitlines()
        return
    content, fields = pair.content_type, pair.fields
    if content == "modality":
        assert fields == ("modality",) and pair.answer == sample.modality
    elif content == "organ":
        assert fields == ("organ",) and pair.answer == sample.organ
    elif content == "abnormality" and pair.answer_type != CLOSED:
        stated = re.split(r", | and ", pair.answer)
        assert {s.lower() for s in stated} == _findings(sample) and len(stated) == len(fields)
    elif content == "abnormality" and pair.subject == "normal":
        kinds = [sample.label_kinds.get(_field(sample, f)) if f.startswith("labels[") else "finding" for f in fields]
        assert (pair.answer, kinds) in (("Yes", ["normal"]), ("No", ["finding"]))
        assert (pair.answer == "Yes") == (not _findings(sample))
    elif content == "abnormality" and pair.answer == "Yes":
        (path,) = fields
        assert pair.subject.lower() in _findings(sample)
        if path == "disease":
            assert pair.subject in [p.strip() for p in sample.disease.split(",")]
        elif path.startswith("labels["):
            assert _field(sample, path) == pair.subject and sample.label_kinds[pair.subject] == "finding"
        else:
            roi = _field(sample, path.removesuffix(".label"))
            assert roi.label == pair.subject and roi.kind == "finding" and roi.source == "annotation"
    elif content == "abnormality":
        assert pair.answer == "No"
        if fields[0].startswith("labels["):  # the source says it is absent
            label = _field(sample, fields[0])
            assert sample.label_kinds[label] == "negative" and label.lower().endswith(pair.subject.lower())
        else:  # another record of the source and modality has it; this one, which the source labels, does not
            assert fields == ("labels", "label_kinds", "source", "modality")
            assert pair.subject in pools[(sample.source, sample.modality)]
            subject = _words(pair.subject)
            assert not any(subject <= name or name <= subject for name in _on_image(sample))
            kinds = set(sample.label_kinds.values())
            assert kinds & {"finding", "normal", "negative"}
    elif content == "position" and len(fields) == 2:
        roi = _field(sample, fields[0].removesuffix(".position"))
        assert sample.patient_left_on_image in ("left", "right")
        assert pair.answer == patient_side(roi.position.horizontal, sample.patient_left_on_image)
    elif content == "position":
        roi = _field(sample, fields[0].removesuffix(".position"))
        assert roi.label == pair.subject
        words = f"{roi.position.vertical} {roi.position.horizontal}"
        assert pair.answer in (f"In the {words} region of the image", "In the center of the image")
        assert (pair.answer == "In the center of the image") == (words == "middle center")
    elif content == "size":
        roi = _field(sample, fields[0].removesuffix(".area_ratio"))
        band = "small" if roi.area_ratio < 1 else "large" if roi.area_ratio > 10 else "moderate"
        assert pair.answer.startswith(f"{band}, ") and f"{roi.area_ratio:.1f}%" in pair.answer
    elif content == "quantity":
        assert int(pair.answer) == sum(r.label == pair.subject and r.source == "annotation" for r in sample.rois)
    elif content == "texture":
        claim = _field(sample, fields[0])
        assert sample.describer.startswith("grounded") and claim.kind in ("brightness", "homogeneity", "margin")
        assert sample.rois[claim.subject].label == pair.subject
        expected = brightness_term(sample.modality, claim.value) if claim.kind == "brightness" else claim.value
        assert pair.answer == expected
    else:
        pytest.fail(f"unexpected pair {pair}")


def test_every_answer_follows_from_its_record(mini_build, mini_rows):
    catalog = scan(Build(mini_build), Selection(include_test=True))
    context = QAContext(catalog.finding_labels)
    balance = ClosedBalance()
    contents = set()
    for row in mini_rows:
        sample = row_to_sample(row)
        for pair in qa_pairs(sample, context, balance):
            rederive(pair, sample, catalog.finding_labels)
            contents.add(pair.content_type)
    assert {"modality", "organ", "abnormality", "position", "size", "quantity", "texture"} <= contents


def test_closed_answers_are_balanced_over_an_export(mini_build, tmp_path):
    summary = export("llava", mini_build, tmp_path / "qa", kind="qa")
    yes, no = summary.details["closed_answers"]["Yes"], summary.details["closed_answers"]["No"]
    assert yes > 30 and abs(yes - no) <= 1
    entries = [e for split in ("train", "val") for e in json.loads((tmp_path / "qa" / f"{split}.json").read_text())]
    closed = [
        turn["value"]
        for e in entries
        for turn, meta in zip(e["conversations"][1::2], e["qa"], strict=True)
        if meta["answer_type"] == CLOSED and meta["origin"] == "generated"
    ]
    assert (closed.count("Yes"), closed.count("No")) == (yes, no)


def _chest(labels: dict[str, str], rois: list[ROI] = (), side: str | None = None, **fields) -> Sample:
    return Sample(
        id="r1",
        source="cxr",
        origin=Origin(file="a.png"),
        modality="X-Ray",
        organ="chest",
        labels=[label for label in labels],
        label_kinds=dict(labels),
        rois=list(rois),
        patient_left_on_image=side,
        width=100,
        height=100,
        describer="grounded@2 prompt=none",
        **fields,
    )


def _roi(label: str, horizontal: str, kind: str = "finding", area: float = 5.0) -> ROI:
    return ROI(
        bbox=[10, 10, 30, 30],
        label=label,
        source="annotation",
        position=Position(horizontal, "middle"),
        area_ratio=area,
        kind=kind,
    )


POOL = {("cxr", "X-Ray"): ["edema", "pleural effusion", "pneumothorax"]}


def test_a_negative_label_gives_no_and_drawn_negatives_never_touch_the_images_own_labels():
    sample = _chest({"no pneumothorax": "negative", "Edema": "finding", "Pleural Effusion (uncertain)": "uncertain"})
    yes, no = closed_candidates(sample, QAContext(POOL))
    assert [(p.subject, p.answer, p.fields) for p in yes] == [("Edema", "Yes", ("labels[1]",))]
    assert [(p.subject, p.answer, p.fields) for p in no] == [
        ("pneumothorax", "No", ("labels[0]",)),
        ("normal", "No", ("labels[1]",)),
    ]  # effusion: uncertain, edema: on it


def test_case_and_uncertain_labels_are_never_asked_and_no_status_means_no_drawn_negative():
    sample = _chest({"renal tumor": "case", "Pneumonia (uncertain)": "uncertain", "kidney": "anatomy"})
    assert closed_candidates(sample, QAContext({("cxr", "X-Ray"): ["renal tumor", "pneumonia", "cyst"]})) == ([], [])


def test_a_normal_image_is_asked_whether_it_is_normal():
    yes, no = closed_candidates(_chest({"No Finding": "normal"}), QAContext(POOL))
    assert [(p.subject, p.answer) for p in yes] == [("normal", "Yes")]
    assert sorted(p.subject for p in no) == ["edema", "pleural effusion", "pneumothorax"]


def test_patient_side_only_where_the_orientation_is_known():
    roi = _roi("nodule", "right-center")
    known = qa_pairs(_chest({"nodule": "finding"}, [roi], side="right"), QAContext())
    unknown = qa_pairs(_chest({"nodule": "finding"}, [roi]), QAContext())
    sides = [p.answer for p in known if p.fields == ("rois[0].position", "origin.patient_left_on_image")]
    assert sides == ["left"]  # the image's right shows the patient's left
    assert not any("origin.patient_left_on_image" in p.fields for p in unknown)


def test_texture_words_come_only_from_the_grounded_describers_claims():
    claim = Claim(
        attribute="texture", kind="brightness", value="darker", evidence="image,rois[0].mask", text="…", subject=0
    )
    sample = _chest({"nodule": "finding"}, [_roi("nodule", "left")], claims=[claim])
    assert [p.answer for p in qa_pairs(sample, QAContext()) if p.content_type == "texture"] == ["a lucency"]
    sample.describer = "openai:gpt-4o prompt=3"
    assert not [p for p in qa_pairs(sample, QAContext()) if p.content_type == "texture"]


def test_expert_rois_are_asked_about_only_when_included():
    roi = _roi("lung field", "left", kind="anatomy")
    roi.source = "expert:chest-xray-lungs@1"
    sample = _chest({}, [roi])
    assert not [p for p in qa_pairs(sample, QAContext()) if p.content_type in ("position", "size", "quantity")]
    assert [
        p.content_type
        for p in qa_pairs(sample, QAContext(include_expert=True))
        if p.content_type in ("position", "size", "quantity")
    ] == ["position", "size", "quantity"]


def test_balance_keeps_yes_and_no_within_one():
    balance = ClosedBalance()
    sample = _chest({"Edema": "finding"})
    yes, _ = closed_candidates(sample, QAContext())
    first = balance.choose(yes, [])  # a Yes alone: allowed, the difference becomes one
    second = balance.choose(yes, [])  # a second one would make it two: refused
    assert [p.answer for p in first] == ["Yes"] and second == []


def test_size_bands():
    assert [size_band(a) for a in (0.0, 0.9, 1.0, 10.0, 10.1, 60.0)] == [
        "small",
        "small",
        "moderate",
        "moderate",
        "large",
        "large",
    ]


def test_source_qa_is_kept_as_it_is_and_other_reference_text_is_not_qa():
    sample = _chest({}, reference_text="Q: Is this a CT? A: No\nQ: Where is the lesion? A: Left Lung, Right")
    pairs = source_pairs(sample)
    assert [(p.question, p.answer, p.answer_type, p.content_type, p.origin) for p in pairs] == [
        ("Is this a CT?", "No", "CLOSED", "modality", "source"),
        ("Where is the lesion?", "Left Lung, Right", "OPEN", "abnormality", "source"),
    ]
    report = _chest({}, reference_text="FINDINGS: There is no focal consolidation.\nIMPRESSION: Normal.")
    assert source_pairs(report) == []


def test_wordings_are_many_and_chosen_by_record_id():
    assert all(len(bank) >= 8 for bank in BANK.values()) and len(BANK["caption"]) >= 10
    assert pick("modality", "abc") == pick("modality", "abc")
    assert len({pick("modality", f"record{i}") for i in range(200)}) == len(BANK["modality"])
