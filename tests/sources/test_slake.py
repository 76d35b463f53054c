"""The slake recipe over a miniature Slake1.0 folder: detection boxes as ROIs, modality/organ mapping,
English QA as reference text, split from the QA files, bad inputs quarantined, wrong folder refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.sources.base import load_recipe, open_source

from fixtures.slake import DISEASES, IMAGES, make_slake, write_image
from fixtures.build import box_iou as iou, build_source


def build(root: Path, out: Path) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    manifest, rows, bad = build_source(f"slake:{root}", out)
    return manifest, {r["origin"]["file"]: r for r in rows}, bad


def test_build_reads_boxes_modality_organ_split_and_english_qa(tmp_path):
    root = make_slake(tmp_path / "Slake1.0")
    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["slake"] == {"seen": 4, "written": 4, "quarantined": 0}
    assert sorted(rows) == [f"imgs/xmlab{n}/source.jpg" for n in (1, 12, 2, 3)]
    expect = {
        1: ("MRI", "brain", "train"),
        2: ("CT", "abdomen", "val"),
        3: ("X-Ray", "lung", "test"),
        12: ("CT", "lung", "train"),
    }
    for n, (modality, organ, split) in expect.items():
        row = rows[f"imgs/xmlab{n}/source.jpg"]
        assert (row["modality"], row["organ"], row["split"]) == (modality, organ, split)
        assert (row["width"], row["height"]) == (64, 64)
        answer = "Brain" if n == 1 else "Liver"
        disease = f"\nQ: What diseases are included in the picture? A: {DISEASES[n]}" if n in DISEASES else ""
        assert row["reference_text"] == (
            f"Q: What modality is used to take this image? A: {IMAGES[n][1]}\nQ: Which organ is abnormal? A: {answer}"
            + disease
        )  # English only, in qid order
        # the disease question's answer names the findings; "Which organ is abnormal?" names none
        expected_findings = {1: ["brain edema", "brain tumor"], 12: ["lung cancer"]}.get(n, [])
        assert (row["disease"], row["labels"]) == (", ".join(expected_findings) or None, expected_findings)
        kinds = {k["label"]: k["kind"] for k in row["label_kinds"]}
        assert [kinds[f] for f in expected_findings] == ["finding"] * len(expected_findings)
        boxes = IMAGES[n][3]
        if boxes is None:  # no detection.json: the expert found the regions
            assert row["rois"] and all(r["source"].startswith("expert:") for r in row["rois"])
            continue
        assert [r["label"] for r in row["rois"]] == [next(iter(b)).lower() for b in boxes]
        for roi, entry in zip(row["rois"], boxes):
            ((x, y, w, h),) = entry.values()
            assert roi["source"] == "annotation"
            assert iou(roi["bbox"], [x, y, x + w, y + h]) >= 0.95


def test_bad_inputs_are_quarantined_and_counts_reconcile(tmp_path):
    root = make_slake(tmp_path / "Slake1.0")
    train = json.loads((root / "train.json").read_text())
    write_image(root / "imgs" / "xmlab20", 20, [{"Liver": [40, 40, 30, 10]}])  # 40 + 30 > 64
    train += [
        {
            "img_id": 19,
            "img_name": "xmlab19/source.jpg",
            "question": "Is this a CT?",
            "answer": "Yes",
            "q_lang": "en",
            "location": "Abdomen",
            "modality": "CT",
            "answer_type": "CLOSED",
            "content_type": "Modality",
            "qid": 900,
        },
        {
            "img_id": 20,
            "img_name": "xmlab20/source.jpg",
            "question": "Is this a CT?",
            "answer": "Yes",
            "q_lang": "en",
            "location": "Abdomen",
            "modality": "CT",
            "answer_type": "CLOSED",
            "content_type": "Modality",
            "qid": 901,
        },
        {"img_id": 21, "question": "Is this a CT?", "answer": "Yes", "q_lang": "en", "qid": 902},
    ]
    (root / "train.json").write_text(json.dumps(train))

    manifest, rows, bad = build(root, tmp_path / "out")

    assert manifest["sources"]["slake"] == {"seen": 7, "written": 4, "quarantined": 3}
    assert bad["imgs/xmlab19/source.jpg"]["reason"] == "image file imgs/xmlab19/source.jpg is missing"
    assert bad["imgs/xmlab20/source.jpg"]["reason"] == (
        "imgs/xmlab20/detection.json: box of Liver [40, 40, 30, 10] lies outside the 64x64 image"
    )
    assert bad["imgs/xmlab20/source.jpg"]["stage"] == "locate"
    unnamed = len(train) - 1  # the last entry, numbered as the file holds it
    assert bad[f"train.json#entry{unnamed}"]["reason"] == f"train.json entry {unnamed}: no img_name"


def test_wrong_folder_names_the_missing_file(tmp_path):
    (tmp_path / "imgs").mkdir()
    with pytest.raises(UserError, match="train.json is missing"):
        open_source(load_recipe("slake"), tmp_path)
    with pytest.raises(UserError, match="imgs/ is missing"):
        open_source(load_recipe("slake"), tmp_path / "imgs")


def test_the_answers_say_normal_only_when_no_answer_names_a_disease():
    from medtrinity.sources.layouts.slake import stated_condition

    def qa(*pairs):
        return [{"question": q, "answer": a, "q_lang": "en"} for q, a in pairs]

    assert stated_condition(qa(("Is this image normal?", "Yes"))) == ([], True)
    assert stated_condition(qa(("Is this image abnormal?", "No"), ("Does this image look normal?", "Yes"))) == (
        [],
        True,
    )
    assert stated_condition(qa(("Is this image abnormal?", "Yes"))) == ([], False)
    assert stated_condition(qa(("Is this image normal?", "Yes"), ("Is this image abnormal?", "Yes"))) == ([], False)
    assert stated_condition(qa(("What diseases are included in the picture?", "None"))) == ([], True)
    assert stated_condition(
        qa(("Is this image normal?", "Yes"), ("What disease is shown in this image?", "Pneumonia and Effusion"))
    ) == (["pneumonia", "effusion"], False)
    # other questions about the condition name no finding
    assert stated_condition(qa(("Which organ is abnormal?", "Lung"), ("Is the lung healthy?", "No"))) == ([], False)
