"""`medtrinity report` on the demo build: the front matter parses, every number matches the build
(recomputed here from the Parquet files), every plot is a valid PNG, report.html embeds them all."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from medtrinity.cli import main
from medtrinity.report.licenses import hub_license_id
from medtrinity.report.reason_kinds import reason_kinds
from medtrinity.sources.base import load_recipe


@pytest.fixture(scope="module")
def card(demo_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("card")
    assert main(["report", str(demo_build), "--out", str(out)]) == 0
    text = (out / "README.md").read_text(encoding="utf-8")
    _, meta, body = text.split("---\n", 2)
    return out, yaml.safe_load(meta), body


def _rows(build: Path, folder: str = "data") -> list[dict]:
    return [
        r
        for p in sorted((build / folder).glob("part-*.parquet"))
        for r in pq.read_table(
            p,
            columns=None
            if folder != "data"
            else [
                "id",
                "source",
                "split",
                "modality",
                "organ",
                "disease",
                "rois",
                "checks",
                "description",
                "describer",
            ],
        ).to_pylist()
    ]


def _tables(body: str) -> dict[tuple[str, ...], list[list[str]]]:
    """Each Markdown table of the card by its header row: its rows as cell strings."""
    tables, lines = {}, body.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and re.fullmatch(r"\|( -+:? \|)+", lines[i + 1]):
            header = tuple(c.strip() for c in line.strip("|").split(" | "))
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("| "):
                    break
                rows.append([c.strip() for c in row.strip("|").split(" | ")])
            tables[header] = rows
    return tables


def _counts(table: list[list[str]]) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in table}


def test_front_matter(card, demo_build):
    _, meta, _ = card
    rows = _rows(demo_build)
    assert meta["dataset_info"]["splits"] == [{"name": "train", "num_examples": len(rows)}]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/part-*.parquet"}]}
    ]
    assert meta["license"] == hub_license_id(load_recipe("demo").license) == "other"
    assert meta["license_name"]
    has_mask = any(roi["mask"] for r in rows for roi in r["rois"])
    assert meta["task_categories"] == ["image-to-text", "object-detection"] + (
        ["image-segmentation"] if has_mask else []
    )
    assert set(meta["tags"]) >= {"medical"} | {r["modality"].lower() for r in rows}


def test_every_number_matches_the_build(card, demo_build):
    _, _, body = card
    rows = _rows(demo_build)
    tables = _tables(body)
    n = len(rows)
    assert body.count(f"{n} image records with {sum(len(r['rois']) for r in rows)} regions of interest") == 1
    for column in ("modality", "organ", "disease"):
        table = tables[(column, "records", "share")]
        want = Counter(r[column] or "(none)" for r in rows)
        assert _counts(table) == want
        assert all(row[2] == f"{100 * int(row[1]) / n:.1f}%" for row in table)
    assert {(a, b): int(c) for a, b, c in tables[("source", "split", "records")]} == Counter(
        (r["source"], r["split"] or "(none)") for r in rows
    )
    rois = [roi for r in rows for roi in r["rois"]]
    roi_table = tables[("ROI source", "ROIs", "share of ROIs", "records with one")]
    assert _counts(roi_table) == Counter(roi["source"] for roi in rois)
    assert {row[0]: int(row[3]) for row in roi_table} == Counter(
        s for r in rows for s in {x["source"] for x in r["rois"]}
    )
    assert {int(k): v for k, v in _counts(tables[("ROIs in a record", "records")]).items()} == Counter(
        len(r["rois"]) for r in rows
    )
    edges = [0, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100]
    areas = Counter(
        next(f"{edges[i]:g}–{edges[i + 1]:g}" for i in range(10) if roi["area_ratio"] < edges[i + 1] or i == 9)
        for roi in rois
    )
    assert {k: v for k, v in _counts(tables[("ROI area, % of the image", "ROIs")]).items() if v} == areas
    checks: dict[str, Counter] = {}
    for r in rows:
        for c in r["checks"]:
            checks.setdefault(c["name"], Counter())[c["status"]] += 1
    check_table = tables[("check", "records", "pass", "not verifiable", "fail", "pass rate")]
    assert {row[0]: [int(x) for x in row[1:5]] for row in check_table} == {
        name: [sum(c.values()), c["pass"], c["not-verifiable"], c["fail"]] for name, c in checks.items()
    }
    assert _counts(tables[("describer", "records")]) == Counter(r["describer"] for r in rows)
    words = [len(r["description"].split()) for r in rows]
    assert f"Description length: {min(words)}–{max(words)} words, median {sorted(words)[(n - 1) // 2]}." in body
    manifest = json.loads((demo_build / "manifest.json").read_text())
    per_source = {row[0]: [int(x) for x in row[1:]] for row in tables[("source", "seen", "written", "quarantined")]}
    assert per_source.pop("total") == [manifest["totals"][k] for k in ("seen", "written", "quarantined")]
    assert per_source == {s: [c[k] for k in ("seen", "written", "quarantined")] for s, c in manifest["sources"].items()}
    quarantined = _rows(demo_build, "quarantine")
    if quarantined:
        assert _counts(tables[("stage", "inputs")]) == Counter(q["stage"] for q in quarantined)
    else:
        assert "Nothing was quarantined." in body
    assert manifest["knowledge_base"]["version"] in body
    assert [row[1] for row in tables[("source", "license", "Hub id")]] == [load_recipe("demo").license]


def test_plots_are_valid_png_in_the_card_and_the_html(card):
    out, _, body = card
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", body)
    assert {
        "plots/modality.png",
        "plots/organ.png",
        "plots/roi_area.png",
        "plots/rois_per_image.png",
        "plots/description_length.png",
        "plots/check_pass_rate.png",
    } <= set(linked)
    for path in linked:
        data = (out / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    html = (out / "report.html").read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted((out / p).read_bytes() for p in linked)
    assert html.count("<h2>") == body.count("\n## ") == 7  # the datasheet's sections


def test_reason_kinds_keep_shared_numbers():
    rows = [
        ("read", "a/1.png", "a/1.png: image is 3 x 5 pixels, below 16"),
        ("read", "b/2.png", "b/2.png: image is 4 x 5 pixels, below 16"),
        ("describe", None, "model answered 3 times without JSON"),
    ]
    kinds = reason_kinds(rows)
    assert [(k.stage, k.reason, k.count) for k in kinds] == [
        ("read", "…: image is # x 5 pixels, below 16", 2),
        ("describe", "model answered 3 times without JSON", 1),
    ]


@pytest.mark.parametrize(
    "text, hub_id",
    [
        ("CC BY-NC-SA 4.0 (as stated by the KiTS23 organisers)", "cc-by-nc-sa-4.0"),
        ("CC BY-NC 4.0 (ISIC 2018 challenge data)", "cc-by-nc-4.0"),
        ("CC0 1.0 as listed by the publishers", "cc0-1.0"),
        ("CC BY 4.0 (Zenodo record 1214456)", "cc-by-4.0"),
        ("PhysioNet Credentialed Health Data License 1.5.0", "other"),
        ("pydicom test files (MIT and as noted by pydicom)", "other"),
        (None, "other"),
    ],
)
def test_hub_license_ids(text, hub_id):
    assert hub_license_id(text) == hub_id
