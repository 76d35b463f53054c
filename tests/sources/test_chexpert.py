"""The chexpert recipe over a miniature in the published layout: labels (uncertain kept apart), split,
view, PATH as the folder or its parent, bad rows quarantined, wrong folder refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.records import sample_id
from medtrinity.sources.base import load_recipe, open_source

from fixtures.chexpert import HEADER, make_chexpert
from fixtures.build import build_source

FRONTAL_1 = "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"
FRONTAL_2 = "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg"
LATERAL_2 = "CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg"
VALID = "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg"


def build(path: Path, out: Path) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    manifest, rows, bad = build_source(f"chexpert:{path}", out)
    return manifest, {r["origin"]["file"]: r for r in rows}, bad


@pytest.mark.parametrize("give_parent", [True, False])
def test_build_reads_labels_split_and_view(tmp_path, give_parent):
    folder = make_chexpert(tmp_path / "data")
    manifest, rows, bad = build(folder.parent if give_parent else folder, tmp_path / "out")

    assert manifest["sources"]["chexpert"] == {"seen": 4, "written": 4, "quarantined": 0}
    assert sorted(rows) == [FRONTAL_1, FRONTAL_2, LATERAL_2, VALID]
    assert rows[FRONTAL_2]["id"] == sample_id("chexpert", FRONTAL_2)  # the same id whichever folder is given
    assert rows[FRONTAL_1]["labels"] == ["No Finding", "Support Devices"]
    assert rows[FRONTAL_1]["disease"] is None
    assert rows[FRONTAL_2]["labels"] == ["Cardiomegaly (uncertain)", "Lung Opacity", "Edema"]
    assert rows[FRONTAL_2]["disease"] == "lung opacity, edema"  # uncertain cardiomegaly is not positive
    assert rows[LATERAL_2]["labels"] == ["Lung Opacity", "Pneumonia (uncertain)"]
    assert rows[VALID]["labels"] == ["Atelectasis", "Fracture (uncertain)"]
    assert {f: r["split"] for f, r in rows.items()} == {
        FRONTAL_1: "train",
        FRONTAL_2: "train",
        LATERAL_2: "train",
        VALID: "val",
    }
    for row in rows.values():
        assert (row["modality"], row["organ"]) == ("X-Ray", "chest")
        assert (row["width"], row["height"]) == (64, 64)
        assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])  # expert auto
        text = " ".join([row["description"], row["coarse_caption"], row["reference_text"] or "", *row["labels"]])
        assert "Female" not in text and "Male" not in text and " 87" not in text  # Sex/Age never copied


def test_items_carry_the_view_position(tmp_path):
    folder = make_chexpert(tmp_path / "data")
    items = {i.file: i for i in open_source(load_recipe("chexpert"), folder).items()}
    assert (items[FRONTAL_1].orientation, items[FRONTAL_1].patient_left_on_image) == ("AP", "right")
    assert (items[VALID].orientation, items[VALID].patient_left_on_image) == ("PA", "right")
    assert (items[LATERAL_2].orientation, items[LATERAL_2].patient_left_on_image) == ("LATERAL", None)


def test_bad_rows_and_missing_images_are_quarantined_and_counts_reconcile(tmp_path):
    folder = make_chexpert(tmp_path / "data")
    with open(folder / "train.csv", "a", newline="") as f:
        writer = csv.writer(f)
        missing = "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg"
        writer.writerow([missing, "Male", "50", "Frontal", "PA"] + [""] * 14)
        bad_value = FRONTAL_1.replace("patient00001", "patient00004")
        Path(tmp_path / "data" / bad_value).parent.mkdir(parents=True)
        (tmp_path / "data" / bad_value).write_bytes((tmp_path / "data" / FRONTAL_1).read_bytes())
        writer.writerow([bad_value, "Male", "50", "Frontal", "PA"] + ["2.0"] + [""] * 13)
        writer.writerow(["CheXpert-v1.0-small/train/patient00005/study1/view1_frontal.jpg", "Male"])

    manifest, rows, bad = build(folder, tmp_path / "out")

    assert manifest["sources"]["chexpert"] == {"seen": 7, "written": 4, "quarantined": 3}
    assert len(rows) == 4
    assert bad[missing]["reason"] == f"image file {missing} is missing"
    assert bad[bad_value]["reason"] == "CheXpert-v1.0-small/train.csv line 6: No Finding is not 1.0, 0.0, -1.0 or blank"
    short = "CheXpert-v1.0-small/train/patient00005/study1/view1_frontal.jpg"
    assert bad[short]["reason"] == f"CheXpert-v1.0-small/train.csv line 7: has 2 fields, the header has {len(HEADER)}"
    assert all(r["stage"] == "read" for r in bad.values())


def test_wrong_folder_names_the_missing_table(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UserError, match="train.csv is missing"):
        open_source(load_recipe("chexpert"), tmp_path / "elsewhere")
