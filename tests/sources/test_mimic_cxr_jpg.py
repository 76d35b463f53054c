"""The mimic-cxr-jpg recipe over a miniature in the published layout: labels (uncertain kept apart),
report sections as reference text, split, view, no subject id in any text, bad rows quarantined."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source
from medtrinity.sources.layouts.mimic_cxr_jpg import report_sections

from fixtures.mimic_cxr_jpg import IMAGES, REPORTS, image_file, make_mimic_cxr_jpg
from fixtures.build import build_source

FILES = [image_file(d, s, t) for d, s, t, *_ in IMAGES]
PA_1, LAT_1, AP_2, PA_3 = FILES


def build(root: Path, out: Path) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    manifest, rows, bad = build_source(f"mimic-cxr-jpg:{root}", out)
    return manifest, {r["origin"]["file"]: r for r in rows}, bad


def test_build_reads_labels_reports_split_and_keeps_ids_out_of_text(tmp_path):
    root = make_mimic_cxr_jpg(tmp_path / "mimic-cxr-jpg")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["mimic-cxr-jpg"] == {"seen": 4, "written": 4, "quarantined": 0}
    assert sorted(rows) == sorted(FILES)
    assert {f: r["split"] for f, r in rows.items()} == {PA_1: "train", LAT_1: "train", AP_2: "val", PA_3: "test"}
    assert rows[PA_1]["labels"] == rows[LAT_1]["labels"] == ["No Finding"]
    assert rows[AP_2]["labels"] == ["Edema", "Pleural Effusion (uncertain)"]
    assert rows[AP_2]["disease"] == "edema"
    assert rows[PA_3]["labels"] == ["Atelectasis (uncertain)", "Pneumothorax", "Support Devices"]
    assert rows[PA_3]["disease"] == "pneumothorax"
    assert rows[PA_1]["reference_text"] == (
        "FINDINGS: There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular opacities "
        "that most likely represent nipple shadows.\nIMPRESSION: No acute cardiopulmonary process."
    )
    assert rows[LAT_1]["reference_text"] == rows[PA_1]["reference_text"]  # one report per study
    assert rows[PA_3]["reference_text"] == "IMPRESSION: Small right apical pneumothorax. Right chest tube in place."
    assert rows[AP_2]["reference_text"] is None  # that study's report is not there
    for row in rows.values():
        assert (row["modality"], row["organ"]) == ("X-Ray", "chest")
        assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
        text = " ".join(
            [
                row["description"],
                row["coarse_caption"],
                row["reference_text"] or "",
                *row["labels"],
                str(row["attributes"]),
                str(row["knowledge"]),
                str(row["checks"]),
            ]
        )
        for _, subject, study, *_ in IMAGES:
            assert subject not in text and study not in text
        assert "INDICATION" not in text and "___" not in text


def test_items_carry_the_view_position(tmp_path):
    root = make_mimic_cxr_jpg(tmp_path / "mimic-cxr-jpg")
    items = {i.file: i for i in open_source(load_recipe("mimic-cxr-jpg"), root).items()}
    assert (items[PA_1].orientation, items[PA_1].patient_left_on_image) == ("PA", "right")
    assert (items[AP_2].orientation, items[AP_2].patient_left_on_image) == ("AP", "right")
    assert (items[LAT_1].orientation, items[LAT_1].patient_left_on_image) == ("LATERAL", None)


def test_reports_in_the_separate_reports_folder_are_found(tmp_path):
    root = make_mimic_cxr_jpg(tmp_path / "mimic-cxr-jpg")
    report = root / "files/p11/p11000011/s51234567.txt"
    moved = root / "mimic-cxr-reports/files/p11/p11000011/s51234567.txt"
    moved.parent.mkdir(parents=True)
    report.rename(moved)
    items = {i.file: i for i in open_source(load_recipe("mimic-cxr-jpg"), root).items()}
    assert items[PA_3].reference_text == "IMPRESSION: Small right apical pneumothorax. Right chest tube in place."


def test_report_sections_stop_at_the_next_header():
    assert report_sections(REPORTS[("11000011", "51234567")]) == (
        "IMPRESSION: Small right apical pneumothorax. Right chest tube in place."
    )
    assert report_sections("INDICATION: cough\nCOMPARISON: none") is None


def test_bad_rows_and_missing_images_are_quarantined_and_counts_reconcile(tmp_path):
    root = make_mimic_cxr_jpg(tmp_path / "mimic-cxr-jpg")
    with open(root / "mimic-cxr-2.0.0-metadata.csv", "a") as f:
        f.write("0000aaaa-missing,12000022,52000002,CHEST,PA,64,64,21800101,1.0,CHEST,postero-anterior,Erect\n")
        f.write("broken-row,12000033\n")
    with open(root / "mimic-cxr-2.0.0-chexpert.csv", "a") as f:
        f.write("12000044,52000004,maybe,,,,,,,,,,,,,\n")
    bad_label_image = root / image_file("0000bbbb-badlabel", "12000044", "52000004")
    bad_label_image.parent.mkdir(parents=True)
    bad_label_image.write_bytes((root / PA_1).read_bytes())
    with open(root / "mimic-cxr-2.0.0-metadata.csv", "a") as f:
        f.write("0000bbbb-badlabel,12000044,52000004,CHEST,PA,64,64,21800101,1.0,CHEST,postero-anterior,Erect\n")

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["mimic-cxr-jpg"] == {"seen": 7, "written": 4, "quarantined": 3}
    missing = image_file("0000aaaa-missing", "12000022", "52000002")
    assert bad[missing]["reason"] == f"image file {missing} is missing"
    assert (
        bad["mimic-cxr-2.0.0-metadata.csv#line7"]["reason"]
        == "mimic-cxr-2.0.0-metadata.csv line 7: has 2 fields, the header has 12"
    )
    assert "12000033" not in bad["mimic-cxr-2.0.0-metadata.csv#line7"]["reason"]
    badlabel = image_file("0000bbbb-badlabel", "12000044", "52000004")
    assert bad[badlabel]["reason"] == "mimic-cxr-2.0.0-chexpert.csv line 5: Atelectasis is not 1.0, 0.0, -1.0 or blank"


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "files").mkdir()
    with pytest.raises(UserError, match="mimic-cxr-2.0.0-metadata.csv is missing"):
        open_source(load_recipe("mimic-cxr-jpg"), tmp_path)
