"""The vqa-rad recipe over a miniature in the published layout: modality as the QA settles it (or
quarantined), organ, split, QA as reference text, expert ROIs, wrong folder refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source
from medtrinity.sources.layouts.vqa_rad import stated_modality

from fixtures.build import build_source
from fixtures.vqa_rad import ENTRIES, IMAGES, entry, make_vqa_rad

FOLDER = "VQA_RAD Image Folder"


def build(source: str, out: Path) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    manifest, rows, bad = build_source(source, out)
    return manifest, {r["origin"]["file"]: r for r in rows}, bad


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("Is this an MRI?", "Yes", "MRI"),
        ("Is this a CT?", "No", None),
        ("What modality is used?", "CT", "CT"),
        ("What type of imaging is this?", "T2 weighted MRI", "MRI"),
        ("Is this a CT or an MRI?", "yes", None),
        ("Which organ is shown?", "brain", None),
        ("Was this image taken with ultrasound?", "yes", "Ultrasound"),
        ("What modality is this?", "PA x-ray", "X-Ray"),
    ],
)
def test_the_modality_a_qa_pair_settles(question, answer, expected):
    assert stated_modality(question, answer) == expected


def test_build_reads_modality_organ_split_and_qa(tmp_path):
    root = make_vqa_rad(tmp_path / "VQA-RAD")
    manifest, rows, bad = build(f"vqa-rad:{root}", tmp_path / "out")

    assert manifest["sources"]["vqa-rad"] == {"seen": 4, "written": 3, "quarantined": 1}
    expect = {
        "synpic54610.jpg": (
            "MRI",
            "head",
            "train",
            "Q: Is there a mass in the left hemisphere? A: No\nQ: Is this an MRI? A: Yes",
        ),
        "synpic29265.jpg": ("X-Ray", "chest", "test", "Q: Is this a CT? A: No\nQ: What modality is used? A: X-ray"),
        "synpic52932.jpg": (
            "CT",
            "abdomen",
            "train",
            "Q: What imaging modality was used? A: CT with contrast\nQ: How many kidneys are seen? A: 2",
        ),
    }
    assert sorted(rows) == sorted(f"{FOLDER}/{n}" for n in expect)
    for name, (modality, organ, split, text) in expect.items():
        row = rows[f"{FOLDER}/{name}"]
        assert (row["modality"], row["organ"], row["split"], row["reference_text"]) == (modality, organ, split, text)
        assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
    unstated = f"{FOLDER}/synpic100176.jpg"
    assert (
        bad[unstated]["reason"]
        == f"{unstated}: modality not stated by the QA (set options.default_modality to accept such images)"
    )


def test_default_modality_option_accepts_images_whose_qa_is_silent(tmp_path):
    root = make_vqa_rad(tmp_path / "VQA-RAD")
    recipe = yaml.safe_load(Path(load_recipe.__globals__["RECIPES_DIR"], "vqa-rad.yaml").read_text())
    recipe["options"] = {"default_modality": "CT"}
    (tmp_path / "vqa-rad-ct.yaml").write_text(yaml.safe_dump(recipe))
    manifest, rows, bad = build(f"{tmp_path / 'vqa-rad-ct.yaml'}:{root}", tmp_path / "out")
    assert manifest["sources"]["vqa-rad"] == {"seen": 4, "written": 4, "quarantined": 0}
    assert rows[f"{FOLDER}/synpic100176.jpg"]["modality"] == "CT"
    assert rows[f"{FOLDER}/synpic54610.jpg"]["modality"] == "MRI"  # a stated modality still wins


def test_conflicts_missing_images_and_bad_entries_are_quarantined(tmp_path):
    entries = ENTRIES + [
        entry(8, "synpic1.jpg", "HEAD", "Is this an MRI?", "Yes", atype="CLOSED"),
        entry(9, "synpic1.jpg", "HEAD", "What modality is used?", "CT"),
        entry(10, "synpic2.jpg", "CHEST", "What modality is used?", "X-ray"),
        {"qid": 11, "question": "Is this normal?", "answer": "Yes"},
    ]
    root = make_vqa_rad(tmp_path / "VQA-RAD", entries, IMAGES + ["synpic1.jpg"])
    manifest, rows, bad = build(f"vqa-rad:{root}", tmp_path / "out")

    assert manifest["sources"]["vqa-rad"] == {"seen": 7, "written": 3, "quarantined": 4}
    assert (
        bad[f"{FOLDER}/synpic1.jpg"]["reason"] == f"{FOLDER}/synpic1.jpg: the QA state different modalities (CT, MRI)"
    )
    assert bad[f"{FOLDER}/synpic2.jpg"]["reason"] == f"image file {FOLDER}/synpic2.jpg is missing"
    assert bad["VQA_RAD Dataset Public.json#entry10"]["reason"] == "VQA_RAD Dataset Public.json entry 10: no image_name"


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / FOLDER).mkdir()
    with pytest.raises(UserError, match="'VQA_RAD Dataset Public.json' is missing"):
        open_source(load_recipe("vqa-rad"), tmp_path)
