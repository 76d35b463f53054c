"""nct-crc-he-100k (generic class-folder layout) over a miniature in the published layout: the class
folder gives the label and disease, the expert gives the ROI, a corrupt patch is quarantined."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrinity.errors import UserError

from fixtures.nct_crc_he_100k import FILES, SIZE, make_nct_crc_he_100k
from fixtures.build import build_source

LABELS = {
    "ADI": ["adipose tissue"],
    "BACK": ["background"],
    "DEB": ["debris"],
    "LYM": ["lymphocytes"],
    "MUC": ["mucus"],
    "MUS": ["smooth muscle"],
    "NORM": ["normal colon mucosa", "normal"],
    "STR": ["cancer-associated stroma"],
    "TUM": ["colorectal adenocarcinoma epithelium"],
}


def build(root: Path, out: Path) -> tuple[dict, list[dict], dict]:
    return build_source(f"nct-crc-he-100k:{root}", out)


def test_class_folders_give_label_and_disease_and_the_expert_the_roi(tmp_path):
    root = make_nct_crc_he_100k(tmp_path / "NCT-CRC-HE-100K")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["nct-crc-he-100k"] == {"seen": 10, "written": 10, "quarantined": 0} and bad == {}
    assert [r["origin"]["file"] for r in rows] == sorted(FILES)
    for row in rows:
        cls = row["origin"]["file"].split("/")[0]
        assert (row["modality"], row["organ"]) == ("Histopathology", "colorectum")
        assert row["disease"] == ("colorectal adenocarcinoma" if cls == "TUM" else None)
        assert row["labels"] == LABELS[cls]
        assert row["split"] is None and row["reference_text"] is None
        assert (row["width"], row["height"]) == (SIZE, SIZE)
        # no ROI in the source: every ROI is an expert's
        assert row["rois"] and all(roi["source"].startswith("expert:") for roi in row["rois"])
    tum = next(r for r in rows if r["origin"]["file"] == "TUM/TUM-AAAWMSFI.tif")
    assert tum["coarse_caption"] == (
        "Histopathology image of the colorectum (tissue class: colorectal adenocarcinoma "
        "epithelium) showing a colorectal adenocarcinoma."
    )
    # A tissue class is not a finding: adipose tissue is stated as the tile's class, with no diagnosis invented.
    adi = next(r for r in rows if r["origin"]["file"].startswith("ADI/"))
    assert adi["coarse_caption"].startswith("Histopathology image of the colorectum (tissue class: adipose tissue)")
    assert "showing" not in adi["coarse_caption"]


def test_a_corrupt_patch_is_quarantined_and_counts_reconcile(tmp_path):
    root = make_nct_crc_he_100k(tmp_path / "NCT-CRC-HE-100K")
    whole = (root / "MUC" / "MUC-AAAWMSFI.tif").read_bytes()
    (root / "MUC" / "MUC-ZZZZZZZZ.tif").write_bytes(whole[: len(whole) // 2])  # a download cut short

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["nct-crc-he-100k"] == {"seen": 11, "written": 10, "quarantined": 1}
    assert list(bad) == ["MUC/MUC-ZZZZZZZZ.tif"]
    assert bad["MUC/MUC-ZZZZZZZZ.tif"]["stage"] == "read"
    assert bad["MUC/MUC-ZZZZZZZZ.tif"]["reason"].startswith("truncated or corrupt TIFF")


def test_the_parent_folder_is_refused_naming_the_expected_files(tmp_path):
    make_nct_crc_he_100k(tmp_path / "NCT-CRC-HE-100K")
    with pytest.raises(
        UserError, match=r"no file matching '\*/\*\.tif' — is this the folder recipe nct-crc-he-100k expects\?"
    ):
        build(tmp_path, tmp_path / "out")
