"""pascal-voc: 1-based inclusive VOC boxes become exactly the known 0-based exclusive boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source
from medtrinity.sources.layouts.pascal_voc import voc_box

from fixtures.pascal_voc import OBJECTS, make_voc, voc_xml
from fixtures.build import build_source


def build(recipe: Path, root: Path, out: Path):
    return build_source(f"{recipe}:{root}", out)


def test_voc_corners_are_one_based_inclusive():
    assert voc_box(1, 1, 10, 20) == (0, 0, 10, 20)  # a 10x20 box at the top-left pixel


def test_build_gives_the_known_boxes(tmp_path):
    root = tmp_path / "VOC2012"
    recipe = make_voc(root)
    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-voc"] == {"seen": 3, "written": 3, "quarantined": 0}
    by_file = {r["origin"]["file"]: r for r in rows}
    assert sorted(by_file) == [f"JPEGImages/{s}.png" for s in sorted(OBJECTS)]
    for stem, (split, objects) in OBJECTS.items():
        row = by_file[f"JPEGImages/{stem}.png"]
        assert (row["split"], row["modality"], row["organ"]) == (split, "X-Ray", "chest")
        annotated = [r for r in row["rois"] if r["source"] == "annotation"]
        assert sorted((r["label"], r["bbox"]) for r in annotated) == sorted(
            ({"nodule": "lung nodule"}.get(n, n), [x0, y0, x1, y1]) for n, x0, y0, x1, y1 in objects
        )
    assert by_file["JPEGImages/000002.png"]["labels"] == ["lung nodule", "mass"]
    assert by_file["JPEGImages/000003.png"]["labels"] == [] and by_file["JPEGImages/000003.png"]["disease"] is None


def test_bad_xml_bad_box_and_box_outside_are_quarantined(tmp_path):
    root = tmp_path / "VOC2012"
    recipe = make_voc(root)
    (root / "Annotations/000001.xml").write_text("<annotation><filename>000001.png</filename><object>")
    (root / "Annotations/000002.xml").write_text(
        voc_xml("000002", [("nodule", 10, 10, 20, 20)]).replace("<xmax>20</xmax>", "<xmax>x</xmax>")
    )
    (root / "Annotations/000003.xml").write_text(voc_xml("000003", [("mass", 60, 50, 90, 60)]))

    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-voc"] == {"seen": 3, "written": 0, "quarantined": 3}
    assert "Annotations/000001.xml: not well-formed XML" in bad["JPEGImages/000001.png"]["reason"]
    assert "Annotations/000002.xml object 1: <bndbox> lacks numeric" in bad["JPEGImages/000002.png"]["reason"]
    outside = bad["JPEGImages/000003.png"]["reason"]
    assert "Annotations/000003.xml object 1" in outside and "outside the 72x64 image" in outside


def test_wrong_folder(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nlayout: pascal-voc\n")
    (tmp_path / "ds").mkdir()
    with pytest.raises(UserError, match="no file matching 'Annotations/\\*.xml'"):
        open_source(load_recipe(str(recipe)), tmp_path / "ds")
