"""Label kinds: how a label's meaning is decided, how a recipe declares it, and that every record of the demo
and of every named recipe's miniature carries true kinds (nothing left as an undeclared "label")."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.miniatures import MINIATURES, build_miniatures, miniature_rows

from medtrinity.errors import UserError
from medtrinity.pipeline.runner import iter_items
from medtrinity.records import LABEL_KINDS
from medtrinity.sources.base import Recipe, SourceItem, load_recipe, named_recipes
from medtrinity.sources.label_kinds import kind_of, kinds_of, merge_kinds


# ---------------------------------------------------------------- the decision rules
def test_a_declared_kind_wins_and_is_matched_case_insensitively():
    declared = {"Support Devices": "device", "no pneumothorax": "negative"}
    assert kind_of("support devices", declared) == "device"
    assert kind_of("No  Pneumothorax", declared) == "negative"
    # declared over the disease rule: the recipe knows what its labels mean
    assert (
        kind_of("colorectal adenocarcinoma", {"colorectal adenocarcinoma": "tissue"}, "colorectal adenocarcinoma")
        == "tissue"
    )


def test_uncertain_pattern_then_disease_then_label():
    assert kind_of("Pneumonia (uncertain)", {}) == "uncertain"
    assert kind_of("polyp", {}, disease="polyp") == "finding"
    assert kind_of("Edema", {}, disease="cardiomegaly, edema") == "finding"  # one part of a list
    assert kind_of("edema", {}, disease="pulmonary edema") == "label"  # a part of a word is not the disease
    # a user recipe's undeclared label is never called a finding, however much it sounds like one
    assert kind_of("tumor", {}) == "label"
    assert kind_of("normal", {}) == "label"
    assert kinds_of(["kidney", "tumor"], {"kidney": "anatomy"}, "tumor") == {"kidney": "anatomy", "tumor": "finding"}


def test_the_runner_stamps_the_recipes_kinds_under_the_layouts_own():
    recipe = Recipe(name="r", layout="image-mask", label_kinds={"Renal Tumor": "finding", "kidney": "anatomy"})

    class OneItem:
        def __init__(self) -> None:
            self.recipe = recipe

        def items(self):
            yield SourceItem(
                source="r",
                root=".",
                file="a.png",
                labels=["kidney", "renal tumor"],
                label_kinds={"renal tumor": "case"},
            )

    (item,) = iter_items([OneItem()], None)
    assert item.label_kinds == {"renal tumor": "case", "kidney": "anatomy"}
    assert kinds_of(item.labels, item.label_kinds) == {"kidney": "anatomy", "renal tumor": "case"}


# ---------------------------------------------------------------- declaring kinds in a recipe
def _recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nlayout: image-mask\noptions: {images: 'images/*.png', masks: 'masks/{stem}.png'}\n" + body
    )
    return path


def test_a_recipe_declares_kinds_and_bad_declarations_are_one_line_errors(tmp_path):
    recipe = load_recipe(str(_recipe(tmp_path, "label_kinds:\n  lesion: finding\n  No lesion: negative\n")))
    assert recipe.label_kinds == {"lesion": "finding", "No lesion": "negative"}
    with pytest.raises(
        UserError,
        match=r"^recipe .*mine\.yaml: label_kinds: 'lesion' has kind 'diagnosis', which is "
        r"not one of finding, uncertain, case, negative, normal, .*, label$",
    ):
        load_recipe(str(_recipe(tmp_path, "label_kinds:\n  lesion: diagnosis\n")))
    with pytest.raises(
        UserError,
        match=r"^recipe .*mine\.yaml: label_kinds gives 'Lesion' and 'lesion' \(the same "
        r"label\) different kinds$",
    ):
        load_recipe(str(_recipe(tmp_path, "label_kinds:\n  Lesion: finding\n  lesion: anatomy\n")))
    with pytest.raises(
        UserError,
        match=r"^recipe .*mine\.yaml: label_kinds must be a mapping \(key: value\) "
        r"\(got \['lesion', 'finding'\]\)$",
    ):
        load_recipe(str(_recipe(tmp_path, "label_kinds: [lesion, finding]\n")))


def test_every_named_recipe_declares_only_known_kinds():
    for name in named_recipes():
        recipe = load_recipe(name)
        assert set(recipe.label_kinds.values()) <= set(LABEL_KINDS), name
        assert "label" not in recipe.label_kinds.values(), name  # "label" is the undeclared default, never declared


def test_merge_kinds_lower_cases_and_lets_the_item_win():
    assert merge_kinds({"Glioma": "finding", "Edema": "finding"}, {"glioma": "case"}) == {
        "glioma": "case",
        "edema": "finding",
    }


# ---------------------------------------------------------------- the records of the demo and every miniature
@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return miniature_rows(build_miniatures(tmp_path_factory.mktemp("miniatures")))


def _kinds(row: dict) -> dict[str, str]:
    return {k["label"]: k["kind"] for k in row["label_kinds"]}


def _find(records: list[dict], source: str, labels: list[str]) -> dict:
    return next(r for r in records if r["source"] == source and r["labels"] == labels)


def test_every_label_and_every_roi_of_every_record_has_a_declared_kind(records):
    assert {r["source"] for r in records} == {"demo", *MINIATURES}
    for row in records:
        kinds = _kinds(row)
        for label in row["labels"]:
            assert kinds.get(label) not in (None, "label"), (row["source"], label)
        for roi in row["rois"]:
            assert roi["kind"] in LABEL_KINDS and roi["kind"] != "label", (row["source"], roi["label"])
            assert roi["label"] in kinds, (row["source"], roi["label"])


def test_representative_labels_have_their_exact_kinds(records):
    by_source: dict[str, dict[str, set[str]]] = {}
    for row in records:
        for label, kind in _kinds(row).items():
            by_source.setdefault(row["source"], {}).setdefault(label, set()).add(kind)
    expected = {
        "chexpert": {
            "Support Devices": "device",
            "Pneumonia (uncertain)": "uncertain",
            "No Finding": "normal",
            "Edema": "finding",
            "lung field (image left)": "anatomy",
        },
        "mimic-cxr-jpg": {"Support Devices": "device", "Pleural Effusion (uncertain)": "uncertain"},
        "kits23": {"renal tumor": "case", "kidney": "anatomy", "tumor": "finding", "cyst": "finding"},
        "brats2021": {"glioma": "case", "peritumoral edema": "finding", "GD-enhancing tumor": "finding"},
        "nct-crc-he-100k": {
            "adipose tissue": "tissue",
            "background": "tissue",
            "normal": "normal",
            "colorectal adenocarcinoma epithelium": "tissue",
        },
        "rsna-pneumonia": {
            "lung opacity": "finding",
            "no lung opacity": "negative",
            "normal": "normal",
            "abnormality other than lung opacity": "finding",
        },
        "siim-acr-pneumothorax": {"pneumothorax": "finding", "no pneumothorax": "negative"},
        "busi": {"benign lesion": "finding", "normal": "normal"},
        "slake": {"brain edema": "finding", "liver": "anatomy", "left lung": "anatomy"},
        "isic2018": {"skin lesion": "finding", "BCC": "finding"},
        "chestx-ray14": {"normal": "normal", "cardiomegaly": "finding"},
        "demo": {
            "marked lesion": "finding",
            "liver lesion": "finding",
            "whole-body bone scan": "study",
            "IHC (DAB) stain": "stain",
            "colonic glands": "anatomy",
            "normal": "normal",
            "optic disc": "anatomy",
            "foreground": "region",
        },
    }
    for source, kinds in expected.items():
        assert {label: by_source[source].get(label) for label in kinds} == {k: {v} for k, v in kinds.items()}, source


def test_rois_carry_the_kind_of_what_outlined_them(records):
    rois = [(r["source"], roi) for r in records for roi in r["rois"]]
    by_label = {}
    for source, roi in rois:
        by_label.setdefault((source, roi["label"], roi["source"].split("@")[0]), set()).add(roi["kind"])
    assert by_label[("isic2018", "lesion", "expert:skin-lesion")] == {"finding"}  # the lesion the image is of
    assert by_label[("demo", "liver lesion", "annotation")] == {"finding"}  # the overlay marks the recorded lesion
    assert by_label[("rsna-pneumonia", "lung field (image right)", "expert:chest-xray-lungs")] == {"anatomy"}
    assert by_label[("nct-crc-he-100k", "tissue", "expert:tissue")] == {"region"}
    assert by_label[("kits23", "kidney", "annotation")] == {"anatomy"}


def test_no_layout_invents_normal_and_captions_show_only_findings(records):
    for row in records:
        kinds = _kinds(row)
        if "normal" in row["labels"]:  # only where the source or the recipe says so
            assert row["source"] in ("demo", "busi", "chestx-ray14", "nct-crc-he-100k", "rsna-pneumonia"), row["source"]
        caption = row["coarse_caption"].lower()
        for label, kind in kinds.items():
            if kind != "finding" and label.lower() != (row["disease"] or "").lower():
                assert f"showing {label.lower()}" not in caption and f"showing a {label.lower()}" not in caption, (
                    caption
                )
    tumour_free = next(r for r in records if r["source"] == "kits23" and r["labels"] == ["renal tumor"])
    assert tumour_free["disease"] is None and _kinds(tumour_free)["renal tumor"] == "case"
    assert tumour_free["coarse_caption"] == (
        "CT image of the kidney from a case recorded with renal tumor (not annotated on this slice)."
    )
    assert _find(records, "siim-acr-pneumothorax", ["no pneumothorax"])["coarse_caption"] == (
        "X-ray image of the chest with no pneumothorax reported."
    )
    assert _find(records, "chexpert", ["No Finding", "Support Devices"])["coarse_caption"] == (
        "X-ray image of the chest with no abnormality reported by the source, with support devices present."
    )
    assert _find(records, "nct-crc-he-100k", ["adipose tissue"])["coarse_caption"] == (
        "Histopathology image of the colorectum (tissue class: adipose tissue); no diagnosis is given by the source."
    )
    # SLAKE's boxes are the source's own statement of its lesions; organ boxes are no diagnosis
    assert sorted(r["coarse_caption"] for r in records if r["source"] == "slake") == [
        "CT image of the abdomen; no diagnosis is given by the source.",
        "CT image of the lung showing a lung cancer.",  # the answer to SLAKE's disease question
        "MRI image of the brain showing brain edema, brain tumor.",
        "X-ray image of the lung; no diagnosis is given by the source.",
    ]


def test_patient_side_is_kept_in_the_stored_origin(records):
    kits = [r for r in records if r["source"] == "kits23"]
    assert kits and all(r["origin"]["patient_left_on_image"] == "right" for r in kits)  # axial, radiological
    sides = {r["origin"]["patient_left_on_image"] for r in records if r["source"] == "chexpert"}
    assert sides == {"right", None}  # frontal views, and the lateral one with no left/right side
