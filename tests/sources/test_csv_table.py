"""csv-table: configured columns give boxes, labels, captions and splits; rows of one path merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source

from fixtures.csv_table import make_csv_table
from fixtures.build import build_source


def build(recipe: Path, root: Path, out: Path):
    return build_source(f"{recipe}:{root}", out)


def test_build_gives_boxes_labels_captions_and_splits(tmp_path):
    root = tmp_path / "table"
    recipe = make_csv_table(root)
    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-table"] == {"seen": 3, "written": 3, "quarantined": 0}
    by_file = {r["origin"]["file"]: r for r in rows}
    a, b, c = by_file["images/a.png"], by_file["images/b.png"], by_file["images/c.png"]
    assert [r["bbox"] for r in a["rois"]] == [[10, 10, 22, 24]] and a["rois"][0]["label"] == "nodule"
    assert sorted(r["bbox"] for r in b["rois"]) == [[8, 44, 20, 58], [40, 30, 54, 42]]
    assert (a["split"], b["split"], c["split"]) == ("train", "train", "test")
    assert (a["reference_text"], b["reference_text"], c["reference_text"]) == (
        "Small nodule in the upper zone.",
        "Two nodules.",
        "Clear lungs.",
    )
    assert a["labels"] == ["nodule"] and a["disease"] == "lung nodule" and a["modality"] == "X-Ray"
    assert c["labels"] == ["normal"] and c["disease"] is None  # "No Finding" is listed in options.normal
    assert {k["label"]: k["kind"] for k in c["label_kinds"]} == {"normal": "normal"}
    assert not any(r["source"] == "annotation" for r in c["rois"])  # the expert may find nothing on a flat image


def test_malformed_row_missing_file_and_box_outside_are_quarantined(tmp_path):
    root = tmp_path / "table"
    recipe = make_csv_table(root)
    csv = root / "labels.csv"
    csv.write_text(
        csv.read_text()
        + "a.png,nodule,PIDX50321,1,5,5,x,train\n"  # line 6: a shifted identifier, not a number
        + "gone.png,nodule,1,1,5,5,x,train\n"  # no such image
        + "c.png,nodule,50,50,80,70,x,test\n"
    )  # line 8: outside 64x64

    manifest, rows, bad = build(recipe, root, tmp_path / "out")

    assert manifest["sources"]["toy-table"] == {"seen": 4, "written": 1, "quarantined": 3}
    assert bad["images/a.png"]["reason"] == "labels.csv line 6: xmin is not a number"  # the column, not the cell
    assert bad["images/gone.png"]["stage"] == "read" and "is missing" in bad["images/gone.png"]["reason"]
    assert (
        "labels.csv line 8" in bad["images/c.png"]["reason"]
        and "outside the 64x64 image" in bad["images/c.png"]["reason"]
    )


def test_wrong_folder_and_wrong_columns(tmp_path):
    root = tmp_path / "table"
    recipe = make_csv_table(root)
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="expects labels.csv under .*: it is missing"):
        open_source(load_recipe(str(recipe)), tmp_path / "other")
    recipe.write_text(recipe.read_text().replace("caption: caption", "caption: report"))
    with pytest.raises(UserError, match="has no column\\(s\\) report"):
        open_source(load_recipe(str(recipe)), root)
