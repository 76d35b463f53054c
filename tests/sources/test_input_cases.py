"""Inputs that are not what they look like: a folder named like an image is quarantined by name (never
skipped), and an empty mask in a dataset whose every image shows a lesion is quarantined, unless the
recipe keeps such images as unlocalised records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medtrinity.errors import StageError
from medtrinity.pipeline.stages import ReadStage
from medtrinity.sources.base import Recipe, SourceItem, open_source
from medtrinity.sources.layout_util import list_files

from fixtures.build import build_source
from fixtures.busi import make_busi
from fixtures.isic2018 import make_isic2018
from fixtures.kvasir_seg import HEIGHT, POLYPS, WIDTH, make_kvasir_seg

EMPTY_ID = "cju0t4oil7vzk099370nun5h9"  # a Kvasir-SEG-like id whose mask is all black
FOLDER_ID = "cju0tl3uz8blh0993wxvn7ly3"  # images/<id>.jpg/ is a folder


def _kvasir_with_bad_inputs(root: Path) -> Path:
    make_kvasir_seg(root)
    pixels = np.random.default_rng(1).integers(90, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "images" / f"{EMPTY_ID}.jpg", quality=90)
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(root / "masks" / f"{EMPTY_ID}.jpg", quality=75)
    (root / "images" / f"{FOLDER_ID}.jpg").mkdir()
    (root / "images" / f"{FOLDER_ID}.jpg" / "Thumbs.db").write_bytes(b"\0" * 16)
    return root


def test_list_files_lists_a_folder_named_like_an_image_but_not_other_folders(tmp_path):
    (tmp_path / "images" / "x.jpg").mkdir(parents=True)
    (tmp_path / "images" / "train").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    assert list_files(tmp_path, "images/*") == ["images/a.png", "images/x.jpg"]


def test_the_read_stage_says_a_folder_is_not_an_image_file(tmp_path):
    (tmp_path / "scans" / "b.dcm").mkdir(parents=True)
    item = SourceItem(source="s", root=str(tmp_path), file="scans/b.dcm", modality="CT")
    with pytest.raises(StageError) as err:
        ReadStage()(item)
    assert str(err.value) == "scans/b.dcm is a directory, not an image file"


def test_kvasir_quarantines_a_folder_named_like_an_image_and_an_empty_mask(tmp_path):
    root = _kvasir_with_bad_inputs(tmp_path / "Kvasir-SEG")

    manifest, rows, bad = build_source(f"kvasir-seg:{root}", tmp_path / "out")

    assert manifest["sources"]["kvasir-seg"] == {"seen": 7, "written": 5, "quarantined": 2}
    assert {file: (q["stage"], q["reason"]) for file, q in bad.items()} == {
        f"images/{FOLDER_ID}.jpg": ("read", f"images/{FOLDER_ID}.jpg is a directory, not an image file"),
        f"images/{EMPTY_ID}.jpg": (
            "locate",
            f"mask masks/{EMPTY_ID}.jpg is empty: Kvasir-SEG images each show a polyp",
        ),
    }
    assert EMPTY_ID not in {Path(r["origin"]["file"]).stem for r in rows}


def test_a_recipe_may_keep_empty_masks_as_unlocalised_records(tmp_path):
    root = _kvasir_with_bad_inputs(tmp_path / "Kvasir-SEG")
    recipe = tmp_path / "kvasir-keep.yaml"
    recipe.write_text(
        "name: kvasir-keep\nlayout: kvasir-seg\nmodality: Endoscopy\norgan: colon\ndisease: polyp\nlabel: polyp\n"
        "options:\n  empty_mask: unlocalised\n"
    )

    manifest, rows, bad = build_source(f"{recipe}:{root}", tmp_path / "out")

    assert manifest["sources"]["kvasir-keep"] == {"seen": 7, "written": 6, "quarantined": 1}
    assert list(bad) == [f"images/{FOLDER_ID}.jpg"]  # a folder is still no image
    kept = next(r for r in rows if Path(r["origin"]["file"]).stem == EMPTY_ID)
    assert (kept["disease"], kept["labels"], kept["rois"]) == ("polyp", ["polyp"], [])
    assert len([r for r in rows if r["rois"]]) == len(POLYPS) + 1  # the others keep their masks and the box


def test_isic_quarantines_an_empty_lesion_mask(tmp_path):
    root = make_isic2018(tmp_path / "ISIC2018")
    mask = "ISIC2018_Task1_Training_GroundTruth/ISIC_0000003_segmentation.png"
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(root / mask)

    manifest, _, bad = build_source(f"isic2018:{root}", tmp_path / "out")

    assert manifest["sources"]["isic2018"]["quarantined"] == 1
    (only,) = bad.values()
    assert only["file"] == "ISIC2018_Task1-2_Training_Input/ISIC_0000003.jpg"
    assert only["reason"] == f"mask {mask} is empty: ISIC 2018 images each show a skin lesion"


def test_busi_quarantines_an_empty_lesion_mask_but_not_a_normal_one(tmp_path):
    parent = make_busi(tmp_path / "busi")
    mask = "Dataset_BUSI_with_GT/malignant/malignant (1)_mask.png"
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(parent / mask)

    manifest, rows, bad = build_source(f"busi:{parent}", tmp_path / "out")

    assert manifest["sources"]["busi"] == {"seen": 4, "written": 3, "quarantined": 1}
    assert {f: q["reason"] for f, q in bad.items()} == {
        "Dataset_BUSI_with_GT/malignant/malignant (1).png": f"mask {mask} is empty: BUSI's malignant images each show a lesion",
    }
    assert "Dataset_BUSI_with_GT/normal/normal (1).png" in {r["origin"]["file"] for r in rows}


def test_image_mask_keeps_empty_masks_unless_the_recipe_says_every_image_shows_its_label(tmp_path):
    for name, value in (("a", 255), ("b", 0)):
        for folder in ("images", "masks"):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8), value if folder == "masks" else 90, np.uint8)).save(
                tmp_path / folder / f"{name}.png"
            )
    options = {"images": "images/*.png", "masks": "masks/{stem}.png"}
    items = list(open_source(Recipe(name="m", layout="image-mask", label="polyp", options=options), tmp_path).items())
    assert [i.file for i in items] == ["images/a.png", "images/b.png"]
    assert items[1].annotations[0].resolve(tmp_path, items[1], (8, 8)) == []  # default: unlocalised
    strict = Recipe(name="m", layout="image-mask", label="polyp", options={**options, "empty_mask": "quarantine"})
    items = list(open_source(strict, tmp_path).items())
    assert len(items[0].annotations[0].resolve(tmp_path, items[0], (8, 8))) == 1
    with pytest.raises(StageError) as err:
        items[1].annotations[0].resolve(tmp_path, items[1], (8, 8))
    assert str(err.value) == "mask masks/b.png is empty: every image of recipe m shows a polyp"


def test_a_folder_named_like_a_mask_is_quarantined_as_such(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "masks" / "a.png").mkdir(parents=True)
    recipe = Recipe(name="m", layout="image-mask", options={"images": "images/*.png", "masks": "masks/{stem}.png"})
    (item,) = open_source(recipe, tmp_path).items()
    with pytest.raises(StageError) as err:
        item.annotations[0].resolve(tmp_path, item, (8, 8))
    assert str(err.value) == "mask masks/a.png is a directory, not a mask file"
