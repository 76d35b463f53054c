"""The README's statements about the demo, checked against a real demo build, so that they cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medtrinity.cli import make_parser
from medtrinity.pipeline.config import BuildConfig, SourceSpec
from medtrinity.pipeline.runner import run_build

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[dict, list[dict]]:
    out = tmp_path_factory.mktemp("readme") / "demo"
    manifest = run_build(BuildConfig(sources=[SourceSpec(recipe="demo", path=".")], out=str(out)), show_progress=False)
    rows = [r for p in sorted((out / "data").glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]
    return manifest, rows


def stated(pattern: str) -> re.Match:
    found = re.search(pattern, " ".join(README.split()))
    assert found, f"the README no longer says {pattern!r}"
    return found


def test_the_stated_counts_of_images_files_and_modalities_are_those_of_the_demo(demo):
    manifest, rows = demo
    counts = stated(r"`make demo` reads (\d+) images from (\d+) files .*? across (\d+) modalities \(([^)]*)\)")
    images, files, modalities = (int(n) for n in counts.groups()[:3])
    assert images == len(rows) == manifest["totals"]["written"] == manifest["totals"]["seen"]
    assert files == len({r["origin"]["file"] for r in rows})
    built = {r["modality"] for r in rows}
    assert modalities == len(built)
    named = [m.strip() for m in counts.group(4).replace(" and ", ", ").split(",")]
    assert sorted(m.lower().replace("fundus photography", "fundus") for m in named) == sorted(m.lower() for m in built)


def test_the_stated_image_formats_are_those_stored(demo):
    _, rows = demo
    stated(r"images as PNG bytes, except that a JPEG input keeps its own JPEG bytes")
    stored = {r["image"]["path"].rsplit(".", 1)[1] for r in rows}
    assert stored == {"png", "jpg"}
    for row in rows:
        magic = b"\x89PNG" if row["image"]["path"].endswith(".png") else b"\xff\xd8"
        assert row["image"]["bytes"].startswith(magic), row["image"]["path"]
    jpegs = [r["origin"]["file"] for r in rows if r["image"]["path"].endswith(".jpg")]
    assert all(f.lower().endswith((".jpg", ".jpeg")) for f in jpegs) and jpegs


def readme_record() -> str:
    """The JSON block of the README's example record."""
    block = re.search(r"```json\n(\{\n \"id\".*?)\n```", README, re.DOTALL)
    assert block, "the README's example record is gone"
    return block.group(1)


def test_the_example_record_is_true_to_the_demo_build(demo):
    _, rows = demo
    text = readme_record()
    record_id = re.search(r'"id": "([0-9a-f]+)"', text).group(1)
    row = next((r for r in rows if r["id"] == record_id), None)
    assert row is not None, f"the README's record {record_id} is not in the demo build"
    assert row["origin"]["file"].endswith("examples_overlay.dcm")

    def shown(key: str, value) -> None:
        assert f'"{key}": {json.dumps(value, ensure_ascii=False)}' in text, f"README's {key} differs from the build"

    for key in (
        "source",
        "split",
        "width",
        "height",
        "modality",
        "organ",
        "disease",
        "labels",
        "label_kinds",
        "coarse_caption",
        "description",
        "reference_text",
        "describer",
    ):
        shown(key, row[key])
    for key in ("file", "slice", "axis", "frame", "spacing", "orientation", "intensity", "patient_left_on_image"):
        shown(key, row["origin"][key])
    roi = row["rois"][0]
    assert len(row["rois"]) == 1
    for key in ("bbox", "label", "kind", "source", "score", "position", "area_ratio"):
        shown(key, roi[key])
    assert f'"counts": "{roi["mask"]["counts"][:24]}' in text
    assert f'"bytes": "<{len(row["image"]["bytes"])} bytes PNG>"' in text
    shown("path", row["image"]["path"])
    assert re.findall(r'\{"id": "([^"]+)", "title"', text) == [p["id"] for p in row["knowledge"]]
    for passage in row["knowledge"]:
        assert f'"title": {json.dumps(passage["title"])}' in text
        assert f'"score": {round(passage["score"], 2)}' in text
    shown("modality", row["attributes"]["modality"])
    for check in re.findall(r'\{"name": "[^}]+\}', text):
        assert json.loads(check) in row["checks"]
    for claim in re.findall(r'\{"attribute": [^}]+\}', text):
        claim = json.loads(claim)
        assert any(
            {k: v for k, v in c.items() if k != "text"} == {k: v for k, v in claim.items() if k != "text"}
            and c["text"].startswith(claim["text"].rstrip("…"))
            for c in row["claims"]
        )
    # and the prose under it: area_ratio is a percent, as the record's own description says
    stated(r"`area_ratio` is a percent of the image")
    assert f"about {roi['area_ratio']}% of the image" in row["description"]


def test_what_the_readme_calls_not_built_is_not_a_command():
    section = README.split("## Not built yet", 1)[1]
    named = re.findall(r"`medtrinity (\w+)`", section)
    commands = set(next(a for a in make_parser()._subparsers._group_actions).choices)
    built = sorted(set(named) & commands)
    assert not built, f"the README says {built} are not built yet, but they are commands now: update the README"


def code_lines() -> list[str]:
    """The lines inside the README's fenced code blocks."""
    lines, inside = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def test_every_command_the_readme_shows_is_a_command():
    commands = set(next(a for a in make_parser()._subparsers._group_actions).choices)
    shown = {line.split()[1] for line in code_lines() if line.startswith("medtrinity ")}
    assert shown and shown <= commands, shown - commands
