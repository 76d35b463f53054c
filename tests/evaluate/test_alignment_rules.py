"""The `rules` alignment judge on real records: a planted error costs points on exactly its attribute."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from medtrinity.cli import main
from medtrinity.evaluate.alignment import bootstrap_interval, run_alignment
from medtrinity.evaluate.alignment_rules import judge_rules
from medtrinity.records import ATTRIBUTE_NAMES, row_to_sample

# A GPT-4V-style description of the SIIM record with one annotated pneumothorax (upper-middle right-center,
# 8.6 %, patient's left on a frontal radiograph).
GPT4V_STYLE = (
    "**Modality:** This is a frontal chest X-ray (CXR).\n"
    "**Structures:** The chest is shown, with both lungs, the heart and the mediastinum visible.\n"
    "**ROI:** The marked region lies in the upper-middle right-center region of the image, on the patient's left, "
    "occupying approximately 8.6% of the image area.\n"
    "**Texture:** The pneumothorax appears as a relatively uniform area with an ill-defined margin.\n"
    "**Local-global:** A pneumothorax of this size may compress the adjacent lung; clinical correlation is advised."
)


def _record(rows, source: str, label: str, rois: int = 1):
    return row_to_sample(
        next(r for r in rows if r["source"] == source and r["labels"] == [label] and len(r["rois"]) == rois)
    )


def _scores(sample, text=None):
    if text is not None:
        sample.description = text
    return {s.attribute: s for s in judge_rules(sample)}


@pytest.fixture
def pneumothorax(mini_rows):
    return _record(mini_rows, "siim-acr-pneumothorax", "pneumothorax")


def test_correct_descriptions_score_full_marks(pneumothorax, mini_rows):
    scores = _scores(pneumothorax)
    assert {k: s.score for k, s in scores.items()} == {
        "modality": 2,
        "structures": 2,
        "roi": 2,
        "texture": 2,
        "local_global": None,
    }
    assert scores["local_global"].reasons == [
        ("local_global: not assessable: the reference states no relation of a lesion to its surroundings")
    ]
    assert {k: s.score for k, s in _scores(pneumothorax, GPT4V_STYLE).items()}["roi"] == 2
    assert sum(s.score or 0 for s in _scores(pneumothorax, GPT4V_STYLE).values()) == 8


PLANTED = [
    ("modality", ("This is a chest X-ray (radiograph).", "This is a CT (computed tomography) image."), "CT"),
    ("structures", ("The imaged anatomy is the chest", "The imaged anatomy is the liver"), "liver"),
    ("roi", ("on the patient's left", "on the patient's right"), "patient's right"),
    ("roi", ("upper-middle right-center region", "bottom left region"), "bottom left"),
    ("roi", ("8.6%", "35%"), "35%"),
]


@pytest.mark.parametrize("attribute, change, named", PLANTED)
def test_a_planted_error_costs_points_on_its_attribute_only(pneumothorax, attribute, change, named):
    before = {k: s.score for k, s in _scores(pneumothorax).items()}
    assert change[0] in pneumothorax.description
    after = _scores(pneumothorax, pneumothorax.description.replace(*change))
    lost = {k for k in ATTRIBUTE_NAMES if after[k].score != before[k]}
    assert lost == {attribute}
    assert after[attribute].score < before[attribute]
    assert any(r.startswith(f"{attribute}:") and named in r for r in after[attribute].reasons)


def test_a_finding_the_reference_negates(mini_rows):
    sample = _record(mini_rows, "siim-acr-pneumothorax", "no pneumothorax", rois=2)
    before = {k: s.score for k, s in _scores(sample).items()}
    assert before == {"modality": 2, "structures": 2, "roi": None, "texture": 2, "local_global": None}
    planted = sample.description.replace(
        "The source records no pneumothorax.", "A large left-sided pneumothorax is seen."
    )
    after = _scores(sample, planted)
    assert {k: s.score for k, s in after.items()} == before | {"texture": 0}
    assert after["texture"].reasons == ["texture: states pneumothorax, which the reference negates"]
    # negated in the description, as the reference has it: no loss
    assert (
        _scores(sample, planted.replace("A large left-sided pneumothorax is seen.", "There is no pneumothorax."))[
            "texture"
        ].score
        == 2
    )


def test_a_report_states_findings_and_negations(mini_rows):
    sample = row_to_sample(
        next(
            r
            for r in mini_rows
            if r["source"] == "mimic-cxr-jpg" and "no focal consolidation" in (r["reference_text"] or "")
        )
    )
    said = "This is a chest radiograph of the chest. There is a right pleural effusion and bilateral opacities."
    texture = _scores(sample, said)["texture"]
    assert texture.score == 0
    assert "texture: states effusion, which the reference negates" in texture.reasons


def test_records_without_human_annotation_are_not_judged(mini_rows):
    expert_only = row_to_sample(
        next(
            r
            for r in mini_rows
            if r["source"] == "demo" and not r["labels"] and all(roi["source"] != "annotation" for roi in r["rois"])
        )
    )
    assert judge_rules(expert_only) is None


def test_bootstrap_interval_is_seeded():
    values = [10, 8, 6, 10, 9, 7, 10, 10]
    assert bootstrap_interval(values, seed=1) == bootstrap_interval(values, seed=1)
    low, high = bootstrap_interval(values, seed=1)
    assert low < sum(values) / len(values) < high
    assert bootstrap_interval([10.0], seed=1) is None


def test_report_files(mini_build, tmp_path):
    summary = run_alignment(mini_build, sample=12, seed=5, out=tmp_path / "a")
    again = run_alignment(mini_build, sample=12, seed=5, out=tmp_path / "b")
    assert [r.id for r in summary.records] == [r.id for r in again.records] and len(summary.records) == 12
    data = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert (data["sample"], data["seed"], data["drawn"], data["judge"]) == (12, 5, 12, "rules")
    assert set(data["by_source"]) == {r.source for r in summary.records}
    table = pq.read_table(tmp_path / "a" / "scores.parquet").to_pylist()
    assert len(table) == 12 and {"modality_score", "total", "reasons"} <= set(table[0])
    assert "| all | 12 |" in (tmp_path / "a" / "summary.md").read_text()


def test_cli_refuses_model_options_for_rules(mini_build, capsys):
    assert main(["eval", "alignment", str(mini_build), "--model", "m"]) == 2
    assert "rules judge uses no model" in capsys.readouterr().err
