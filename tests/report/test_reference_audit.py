"""`medtrinity report` on a build of the MedTrinity-25M miniature: the released captions' contradiction rate per
source dataset, exactly as the records' "reference:" checks give it, apart from the descriptions' own checks."""

from __future__ import annotations

import re

import pytest
from fixtures.build import build_source
from fixtures.medtrinity_25m import make_medtrinity_25m

from medtrinity.cli import main

AUDIT_HEADER = ("source", "dataset named by the source", "captions audited", "contradicted", "contradiction rate")
# The miniature's written records: the captions of chexpert_p2 (wrong position), chexpert_p3 (an MRI of the knee
# on CheXpert) and demo_00002 (wrong side) contradict their records; the demo names no source dataset.
AUDIT_ROWS = [
    ["medtrinity-25m", "(none)", "3", "1", "33.3%"],
    ["medtrinity-25m", "brats", "1", "0", "0.0%"],
    ["medtrinity-25m", "chexpert", "3", "2", "66.7%"],
    ["medtrinity-25m", "deeplesion", "2", "0", "0.0%"],
    ["medtrinity-25m", "NCT-CRC-HE-100K", "1", "0", "0.0%"],
    ["medtrinity-25m", "pmc_oa", "1", "0", "0.0%"],
    ["total", "", "11", "3", "27.3%"],
]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    release = make_medtrinity_25m(tmp_path_factory.mktemp("release") / "MedTrinity-25M")
    build = tmp_path_factory.mktemp("build") / "out"
    build_source(f"medtrinity-25m:{release}", build, on_contradiction="keep")
    out = tmp_path_factory.mktemp("card")
    assert main(["report", str(build), "--out", str(out)]) == 0
    return (out / "README.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")


def _table(body: str, header: tuple[str, ...]) -> list[list[str]]:
    lines = body.splitlines()
    start = lines.index("| " + " | ".join(header) + " |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_contradiction_rate_per_source_dataset(card):
    body, html = card
    assert _table(body, AUDIT_HEADER) == AUDIT_ROWS
    assert "11 record(s) carry their source's own caption" in body
    assert "3 of them (27.3%) are contradicted by at least one check" in body
    assert '<td>chexpert</td><td class="n">3</td><td class="n">2</td><td class="n">66.7%</td>' in html


def test_caption_checks_are_apart_from_the_descriptions(card):
    body, _ = card
    caption_checks = {
        row[0]: row[1:]
        for row in _table(body, ("caption check", "records", "pass", "not verifiable", "fail", "fail rate"))
    }
    assert caption_checks["reference:position"] == ["11", "10", "0", "1", "9.1%"]
    assert caption_checks["reference:side"] == ["11", "10", "0", "1", "9.1%"]
    assert caption_checks["reference:modality"] == caption_checks["reference:organ"] == ["11", "10", "0", "1", "9.1%"]
    described = _table(body, ("check", "records", "pass", "not verifiable", "fail", "pass rate"))
    assert described and not any(row[0].startswith("reference:") for row in described)
    # a contradicted released caption is no failed check of this build's descriptions
    assert "Every description was checked against its record; 0 record(s) carry at least one failed check" in body


def test_recovered_boxes_are_not_called_expert_proposals(card):
    body, _ = card
    assert re.search(
        r"recovered from the boxes drawn into a source's released images: 10 \(100\.0%\); "
        r"proposed by expert models: 0 \(0\.0%\)",
        body,
    )
