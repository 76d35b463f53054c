"""siim-acr-pneumothorax: the competition's relative column-major RLE decodes to the known regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtrinity.errors import UserError
from medtrinity.roi.geometry import rle_to_mask
from medtrinity.sources.annotation_formats import decode_relative_rle
from medtrinity.sources.base import load_recipe, open_source

from fixtures.siim_acr_pneumothorax import REGIONS, encode_competition_rle, make_siim, rectangle_mask
from fixtures.build import build_source


def build(root: Path, out: Path):
    return build_source(f"siim-acr-pneumothorax:{root}", out)


def test_decoder_follows_the_competition_convention():
    # Column-major, relative: "2 3 4 1" on a 4x3 (h x w) image = flat pixels 2,3,4 then 9.
    mask = decode_relative_rle("2 3 4 1", height=4, width=3)
    expected = np.zeros((4, 3), bool)
    expected[[2, 3], 0] = True  # column 0 rows 2-3
    expected[0, 1] = True  # column 1 row 0 (flat 4)
    expected[1, 2] = True  # flat 9 = column 2 row 1
    np.testing.assert_array_equal(mask, expected)
    asymmetric = np.zeros((64, 64), bool)
    asymmetric[5:9, 30:50] = True  # wide, not tall: a row-major reading would give a tall box
    np.testing.assert_array_equal(decode_relative_rle(encode_competition_rle(asymmetric), 64, 64), asymmetric)
    for bad in ("1 2 3", "a 2", "4095 5", "3 0", ""):
        with pytest.raises(ValueError):
            decode_relative_rle(bad, 64, 64)
    # The reason says where, never the value: a shifted column could put an identifier there.
    with pytest.raises(ValueError, match=r"^run-length encoding value 3 is not a whole number$"):
        decode_relative_rle("4 5 PIDX123 2", 64, 64)


def test_build_gives_the_known_regions(tmp_path):
    root = make_siim(tmp_path / "siim")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["siim-acr-pneumothorax"] == {"seen": 3, "written": 3, "quarantined": 0}
    by_id = {Path(r["origin"]["file"]).stem: r for r in rows}
    assert set(by_id) == set(REGIONS)
    for image_id, boxes in REGIONS.items():
        row = by_id[image_id]
        assert row["origin"]["file"].startswith("dicom-images-train/1.2.276.0.7230010.3.1.2.")
        assert (row["modality"], row["organ"], row["split"]) == ("X-Ray", "chest", "train")
        if boxes:
            assert row["disease"] == "pneumothorax" and row["labels"] == ["pneumothorax"]
            assert sorted(r["bbox"] for r in row["rois"]) == sorted(list(b) for b in boxes)
            for roi in row["rois"]:
                np.testing.assert_array_equal(rle_to_mask(roi["mask"]), rectangle_mask(tuple(roi["bbox"])))
        else:
            # " -1" says there is no pneumothorax, not that the film is normal
            assert row["disease"] is None and row["labels"] == ["no pneumothorax"]
            assert {k["label"]: k["kind"] for k in row["label_kinds"]}["no pneumothorax"] == "negative"
            assert all(r["source"].startswith("expert:") for r in row["rois"])


def test_malformed_rle_and_missing_dicom_are_quarantined(tmp_path):
    root = make_siim(tmp_path / "siim")
    first = next(iter(REGIONS))
    csv = root / "train-rle.csv"
    csv.write_text(csv.read_text() + f"{first}, 12 5 7\n" + "1.2.276.0.7230010.3.1.4.9.9.9, -1\n")

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["siim-acr-pneumothorax"] == {"seen": 4, "written": 2, "quarantined": 2}
    (malformed,) = [r for f, r in bad.items() if first in f]
    assert malformed["stage"] == "locate"
    assert "train-rle.csv line 6" in malformed["reason"] and "odd number of values" in malformed["reason"]
    missing = bad["dicom-images-train/*/*/1.2.276.0.7230010.3.1.4.9.9.9.dcm"]
    assert missing["stage"] == "read" and "is missing" in missing["reason"]


def test_rows_with_an_empty_image_id_or_extra_fields_say_which(tmp_path):
    root = make_siim(tmp_path / "siim")
    first = next(iter(REGIONS))
    csv = root / "train-rle.csv"
    csv.write_text(csv.read_text() + ", 4 5\n" + f"{first}, 1 2, 3\n")  # lines 6 and 7

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["siim-acr-pneumothorax"] == {"seen": 4, "written": 2, "quarantined": 2}
    assert bad["train-rle.csv:line 6"]["reason"] == "train-rle.csv line 6: ImageId is empty"
    (extra,) = [r for f, r in bad.items() if first in f]
    assert extra["reason"] == "train-rle.csv line 7: expected 2 fields (ImageId, EncodedPixels), got 3"


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "train-rle.csv").write_text("ImageId, EncodedPixels\n")
    with pytest.raises(UserError, match="dicom-images-train is missing"):
        open_source(load_recipe("siim-acr-pneumothorax"), tmp_path)
