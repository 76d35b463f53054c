"""KnowledgeIndex over the bundled corpus and over small corpora written by the tests."""

from __future__ import annotations

import json
import pickle
import re
import time
from importlib import resources
from pathlib import Path

import pytest

from medtrinity.errors import UserError
from medtrinity.knowledge.index import (
    META_FILE,
    KnowledgeIndex,
    analyse,
    default_index,
    light_stem,
    load_index,
    passage_tokens,
)
from medtrinity.knowledge.query import build_query
from medtrinity.records import MODALITIES, Passage

CORE = Path(str(resources.files("medtrinity.knowledge") / "kb" / "core.jsonl"))

# (query, id of the on-topic passage). Queries are what build_query makes from a record's metadata, or
# what a user would type at `medtrinity kb search`.
LABELLED_QUERIES: list[tuple[str, str]] = [
    # chest radiographs (ChestX-ray14, CheXpert, RSNA, SIIM)
    (
        build_query("X-Ray image of the chest showing atelectasis", ["Atelectasis"], "atelectasis", "chest", "X-Ray"),
        "mt-chest-001",
    ),
    (
        build_query(
            "X-Ray image of the chest showing cardiomegaly", ["Cardiomegaly"], "cardiomegaly", "chest", "X-Ray"
        ),
        "mt-chest-002",
    ),
    (
        build_query("X-Ray image of the chest showing effusion", ["Effusion"], "effusion", "chest", "X-Ray"),
        "mt-chest-003",
    ),
    (
        build_query(
            "X-Ray image of the chest showing infiltration", ["Infiltration"], "infiltration", "chest", "X-Ray"
        ),
        "mt-chest-004",
    ),
    (build_query("X-Ray image of the chest showing a mass", ["Mass"], "mass", "lung", "X-Ray"), "mt-chest-005"),
    (build_query("X-Ray image of the chest showing a nodule", ["Nodule"], "nodule", "lung", "X-Ray"), "mt-chest-006"),
    (
        build_query("X-Ray image of the chest showing pneumonia", ["Pneumonia"], "pneumonia", "lung", "X-Ray"),
        "mt-chest-007",
    ),
    (
        build_query("X-Ray image of the chest showing lung opacity", ["Lung Opacity"], "lung opacity", "lung", "X-Ray"),
        "mt-chest-009",
    ),
    (
        build_query(
            "X-Ray image of the chest showing pneumothorax", ["Pneumothorax"], "pneumothorax", "chest", "X-Ray"
        ),
        "mt-chest-010",
    ),
    (
        build_query(
            "X-Ray image of the chest showing consolidation", ["Consolidation"], "consolidation", "lung", "X-Ray"
        ),
        "mt-chest-011",
    ),
    (build_query("X-Ray image of the chest showing edema", ["Edema"], "edema", "lung", "X-Ray"), "mt-chest-012"),
    (
        build_query("X-Ray image of the chest showing emphysema", ["Emphysema"], "emphysema", "lung", "X-Ray"),
        "mt-chest-013",
    ),
    (
        build_query("X-Ray image of the chest showing fibrosis", ["Fibrosis"], "fibrosis", "lung", "X-Ray"),
        "mt-chest-014",
    ),
    (
        build_query(
            "X-Ray image of the chest showing pleural thickening", ["Pleural_Thickening"], None, "chest", "X-Ray"
        ),
        "mt-chest-015",
    ),
    (build_query("X-Ray image of the chest showing hernia", ["Hernia"], "hernia", "chest", "X-Ray"), "mt-chest-016"),
    (build_query("X-Ray image of the chest", ["Lung Lesion"], "lung lesion", "lung", "X-Ray"), "mt-chest-017"),
    (build_query("X-Ray image of the chest", ["Fracture"], "fracture", "chest", "X-Ray"), "mt-chest-018"),
    (build_query("X-Ray image of the chest", ["Support Devices"], None, "chest", "X-Ray"), "mt-chest-019"),
    (build_query("X-Ray image of the chest", ["Enlarged Cardiomediastinum"], None, "chest", "X-Ray"), "mt-chest-020"),
    (build_query("X-Ray image of the chest", ["No Finding"], None, "chest", "X-Ray"), "mt-anatomy-004"),
    ("CXR of a child with viral pneumonia", "mt-chest-008"),
    ("CT chest ground-glass opacities", "mt-chest-021"),
    # breast ultrasound (BUSI)
    (
        build_query(
            "Ultrasound image of the breast showing a benign lesion",
            ["benign"],
            "benign breast lesion",
            "breast",
            "Ultrasound",
        ),
        "mt-breast-001",
    ),
    (
        build_query(
            "Ultrasound image of the breast showing a malignant lesion",
            ["malignant"],
            "malignant breast lesion",
            "breast",
            "Ultrasound",
        ),
        "mt-breast-002",
    ),
    (build_query("Ultrasound image of the breast", ["normal"], None, "breast", "Ultrasound"), "mt-breast-008"),
    # skin (ISIC / HAM10000 codes)
    (
        build_query("Dermoscopy image of the skin showing melanoma", ["MEL"], "melanoma", "skin", "Dermoscopy"),
        "mt-skin-001",
    ),
    (build_query("Dermoscopy image of the skin", ["NV"], "nevus", "skin", "Dermoscopy"), "mt-skin-002"),
    (build_query("Dermoscopy image of the skin", ["BCC"], None, "skin", "Dermoscopy"), "mt-skin-003"),
    (build_query("Dermoscopy image of the skin", ["AKIEC"], "actinic keratosis", "skin", "Dermoscopy"), "mt-skin-004"),
    (build_query("Dermoscopy image of the skin", ["BKL"], "benign keratosis", "skin", "Dermoscopy"), "mt-skin-005"),
    (build_query("Dermoscopy image of the skin", ["DF"], "dermatofibroma", "skin", "Dermoscopy"), "mt-skin-006"),
    (build_query("Dermoscopy image of the skin", ["VASC"], "vascular lesion", "skin", "Dermoscopy"), "mt-skin-007"),
    # endoscopy (Kvasir)
    (
        build_query("Endoscopy image of the colon showing a polyp", ["polyp"], "polyp", "colon", "Endoscopy"),
        "mt-gi-001",
    ),
    (
        build_query("Endoscopy image of the colon", ["ulcerative-colitis"], "ulcerative colitis", "colon", "Endoscopy"),
        "mt-gi-008",
    ),
    (
        build_query("Endoscopy image of the esophagus", ["esophagitis"], "esophagitis", "esophagus", "Endoscopy"),
        "mt-gi-009",
    ),
    # brain MRI (BraTS)
    (build_query("MRI image of the brain showing glioma", ["glioma"], "glioma", "brain", "MRI"), "mt-brain-001"),
    (build_query("MRI image of the brain", ["NCR"], "glioma", "brain", "MRI"), "mt-brain-004"),
    (build_query("MRI image of the brain", ["ED"], "glioma", "brain", "MRI"), "mt-brain-005"),
    (build_query("MRI image of the brain", ["ET"], "glioma", "brain", "MRI"), "mt-brain-006"),
    ("CT head acute hyperdense haemorrhage", "mt-brain-011"),
    # kidney and liver CT (KiTS, LiTS)
    (
        build_query("CT image of the kidney showing kidney tumor", ["kidney", "tumor"], "kidney tumor", "kidney", "CT"),
        "mt-kidney-007",
    ),
    (build_query("CT image of the kidney showing a cyst", ["cyst"], "renal cyst", "kidney", "CT"), "mt-kidney-003"),
    (
        build_query("CT image of the liver showing liver tumor", ["liver", "tumor"], "liver tumor", "liver", "CT"),
        "mt-liver-001",
    ),
    ("fatty liver ultrasound", "mt-liver-007"),
    # histology (NCT-CRC-HE codes)
    (build_query("Histopathology image of the colon", ["ADI"], None, "colon", "Histopathology"), "mt-pathology-002"),
    (build_query("Histopathology image of the colon", ["BACK"], None, "colon", "Histopathology"), "mt-pathology-003"),
    (build_query("Histopathology image of the colon", ["DEB"], None, "colon", "Histopathology"), "mt-pathology-004"),
    (build_query("Histopathology image of the colon", ["LYM"], None, "colon", "Histopathology"), "mt-pathology-005"),
    (build_query("Histopathology image of the colon", ["MUC"], None, "colon", "Histopathology"), "mt-pathology-006"),
    (build_query("Histopathology image of the colon", ["MUS"], None, "colon", "Histopathology"), "mt-pathology-007"),
    (build_query("Histopathology image of the colon", ["NORM"], None, "colon", "Histopathology"), "mt-pathology-008"),
    (build_query("Histopathology image of the colon", ["STR"], None, "colon", "Histopathology"), "mt-pathology-009"),
    (build_query("Histopathology image of the colon", ["TUM"], None, "colon", "Histopathology"), "mt-pathology-010"),
    # eye (fundus, OCT)
    (
        build_query(
            "Fundus image of the retina showing diabetic retinopathy",
            ["DR grade 2"],
            "diabetic retinopathy",
            "retina",
            "Fundus",
        ),
        "mt-eye-001",
    ),
    (
        build_query(
            "Fundus image of the retina showing microaneurysms", ["MA"], "diabetic retinopathy", "retina", "Fundus"
        ),
        "mt-eye-003",
    ),
    (
        build_query("Fundus image of the eye", ["optic disc", "optic cup"], None, "optic disc", "Fundus"),
        "mt-anatomy-023",
    ),
    ("glaucoma cup-to-disc ratio", "mt-eye-008"),
    ("OCT drusen DME CNV", "mt-eye-012"),
    # modalities and organs
    ("hypodense lesion on CT", "mt-modality-002"),
    ("T2 hyperintense lesion on MR", "mt-modality-005"),
    ("hypoechoic mass with posterior acoustic shadowing on US", "mt-modality-007"),
    ("radiolucent and radiopaque densities on a radiograph", "mt-modality-009"),
    ("H&E stained tissue section", "mt-modality-017"),
    ("IHC brown DAB staining", "mt-modality-018"),
    ("fluorescence microscopy DAPI nuclei", "mt-modality-019"),
    ("FDG PET hypermetabolic uptake", "mt-modality-021"),
    ("bone scintigraphy hot spot", "mt-modality-022"),
    ("dermoscopy pigment network", "mt-modality-014"),
    ("normal pancreas anatomy", "mt-anatomy-012"),
    ("spleen", "mt-anatomy-013"),
    ("thyroid gland anatomy", "mt-anatomy-019"),
    ("prostate zones", "mt-anatomy-018"),
    ("X-ray of the wrist showing a fracture", "mt-bone-001"),
    ("knee osteoarthritis joint space narrowing", "mt-bone-003"),
]


def _passages(*texts: str) -> list[dict]:
    return [{"id": f"p{i}", "title": f"title {i}", "text": text} for i, text in enumerate(texts)]


def test_labelled_queries_find_their_passage_in_top_three():
    index = default_index()
    missed = []
    for query, expected in LABELLED_QUERIES:
        ids = [p.id for p in index.search(query, k=3)]
        if expected not in ids:
            missed.append((query, expected, ids))
    topics = {expected for _, expected in LABELLED_QUERIES}
    assert len(topics) >= 25
    recall = 1 - len(missed) / len(LABELLED_QUERIES)
    assert recall >= 0.9, f"recall@3 {recall:.2f}; missed: {missed}"


def test_search_returns_ordered_float_scores_and_respects_k():
    results = default_index().search("pleural effusion meniscus costophrenic angle", k=5)
    assert len(results) == 5
    assert results[0].id == "mt-chest-003"
    assert all(isinstance(p, Passage) and type(p.score) is float and p.score > 0 for p in results)
    assert [p.score for p in results] == sorted((p.score for p in results), reverse=True)


def test_empty_and_unknown_queries_return_nothing():
    index = default_index()
    assert index.search("") == []
    assert index.search("   \n") == []
    assert index.search("the of and") == []  # stopwords only
    assert index.search("zzzqqq xylophone") == []
    assert index.search("pneumothorax", k=0) == []


def test_k_larger_than_corpus_returns_every_matching_passage(tmp_path):
    index = KnowledgeIndex.build(_passages("liver lesion on CT", "liver cyst", "kidney stone"))
    assert len(index) == 3
    results = index.search("liver", k=50)
    assert [p.id for p in results] == ["p1", "p0"]  # shorter passage scores higher; kidney has no match
    index = default_index()
    with_ct = sum("ct" in passage_tokens(p.title, p.text) for p in map(index.get, _core_ids()))
    results = index.search("CT", k=10_000)
    assert 0 < len(results) == with_ct < len(index)
    assert len({p.id for p in results}) == len(results)


def _core_ids() -> list[str]:
    return [json.loads(line)["id"] for line in CORE.read_text(encoding="utf-8").splitlines()]


def test_get_returns_the_passage_by_id():
    index = default_index()
    passage = index.get("mt-chest-010")
    assert passage is not None
    assert passage.title == "Pneumothorax"
    assert passage.text.startswith("A pneumothorax is air in the pleural space")
    assert passage.score == 0.0
    assert index.get("mt-nope-999") is None


def test_returned_passages_are_copies_not_cache_entries():
    index = default_index()
    first = index.search("cardiomegaly", k=1)
    first[0].text = "edited by a caller"
    assert index.search("cardiomegaly", k=1)[0].text.startswith("Cardiomegaly is enlargement")


def test_save_load_round_trip_gives_identical_results(tmp_path):
    index = default_index()
    index.save(tmp_path / "kb")
    assert (tmp_path / "kb" / META_FILE).is_file()
    for mmap in (True, False):
        loaded = KnowledgeIndex.load(tmp_path / "kb", mmap=mmap)
        assert len(loaded) == len(index)
        for query, _ in LABELLED_QUERIES[::3]:
            assert loaded.search(query, k=5) == index.search(query, k=5)
        assert loaded.get("mt-skin-003") == index.get("mt-skin-003")
    assert load_index(str(tmp_path / "kb")).search("melanoma") == index.search("melanoma")


def test_index_survives_pickling_for_process_pools():
    index = KnowledgeIndex.build(_passages("optic disc and cup", "retinal microaneurysm"))
    clone = pickle.loads(pickle.dumps(index))
    assert clone.search("microaneurysms") == index.search("microaneurysms")
    assert [p.id for p in clone.search("microaneurysms")] == ["p1"]


def test_load_index_none_is_the_cached_default():
    assert load_index(None) is default_index()


def test_load_index_rejects_paths_that_are_not_indexes(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load_index(str(tmp_path / "missing"))
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "title": "t", "text": "x"}\n')
    with pytest.raises(UserError, match="not a directory"):
        load_index(str(tmp_path / "corpus.jsonl"))
    with pytest.raises(UserError, match="not a knowledge index"):
        load_index(str(tmp_path))
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(UserError, match="not readable JSON"):
        load_index(str(tmp_path))
    (tmp_path / META_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UserError, match="does not describe"):
        load_index(str(tmp_path))


def test_load_rejects_an_incomplete_or_foreign_index(tmp_path):
    KnowledgeIndex.build(_passages("a passage about the liver")).save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "analyser": "porter-v0"}))
    with pytest.raises(UserError, match="rebuild"):
        KnowledgeIndex.load(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    (tmp_path / "passages.arrow").unlink()
    with pytest.raises(UserError, match="incomplete or damaged"):
        KnowledgeIndex.load(tmp_path)


@pytest.mark.parametrize(
    ("passages", "message"),
    [
        ([], "no passages"),
        ([{"id": "a", "title": "t", "text": "x"}, {"id": "a", "title": "u", "text": "y"}], "appears twice"),
        ([{"title": "t", "text": "x"}], "no string 'id'"),
        ([{"id": "a", "title": "t", "text": ""}], "no string 'text'"),
        ([{"id": "a", "title": 3, "text": "x"}], "non-string 'title'"),
        (["just a string"], "expected an object"),
    ],
)
def test_build_rejects_bad_passages(passages, message):
    with pytest.raises(UserError, match=message):
        KnowledgeIndex.build(passages)


def test_core_corpus_lines_are_valid_with_unique_ids():
    lines = CORE.read_text(encoding="utf-8").splitlines()
    assert 120 <= len(lines) <= 200
    ids = []
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"id", "title", "text", "source"}
        assert re.fullmatch(r"mt-[a-z]+-\d{3}", record["id"]), record["id"]
        assert record["source"] == "medtrinity core corpus"
        assert record["title"].strip() and record["text"].strip()
        sentences = re.findall(r"[.!?](?:\s|$)", record["text"])
        assert 2 <= len(sentences) <= 5, record["id"]
        ids.append(record["id"])
    assert len(ids) == len(set(ids))


MODALITY_PASSAGES = {
    "CT": {"mt-modality-001"},
    "MRI": {"mt-modality-004"},
    "X-Ray": {"mt-modality-009", "mt-modality-010"},
    "Ultrasound": {"mt-modality-007"},
    "Endoscopy": {"mt-modality-013"},
    "Dermoscopy": {"mt-modality-014"},
    "Fundus": {"mt-modality-015"},
    "OCT": {"mt-modality-016"},
    "Histopathology": {"mt-modality-017"},
    "Microscopy": {"mt-modality-019"},
    "PET": {"mt-modality-021"},
    "Nuclear Medicine": {"mt-modality-022"},
}


def test_core_corpus_has_a_passage_for_every_imaging_modality():
    assert set(MODALITY_PASSAGES) == set(MODALITIES) - {"Other"}
    index = default_index()
    for modality, expected in MODALITY_PASSAGES.items():
        top = {p.id for p in index.search(f"{modality} imaging", k=3)}
        assert top & expected, (modality, top)


def test_default_index_builds_fast():
    start = time.perf_counter()
    KnowledgeIndex.build(json.loads(line) for line in CORE.read_text(encoding="utf-8").splitlines())
    assert time.perf_counter() - start < 1.0


def test_analyser_unifies_spelling_plurals_and_xray():
    assert analyse("Tumours and tumors") == ["tumor", "tumor"]
    assert analyse("haemorrhage hemorrhage") == ["hemorrhag", "hemorrhag"]
    assert analyse("X-ray x ray xrays") == ["xray", "xray", "xray"]
    assert analyse("enhancing enhanced enhance") == ["enhanc", "enhanc", "enhanc"]
    assert analyse("metastases metastasis") == ["metastasis", "metastasis"]
    assert analyse("Opacities opacity") == ["opacity", "opacity"]
    assert analyse("T1 T2 of the") == ["t1", "t2"]
    assert light_stem("mass") == "mass" and light_stem("masses") == "mass"
    assert light_stem("nevus") == "nevus" and light_stem("nevi") == "nevus"
    assert analyse("normalised normalized") == ["normaliz", "normaliz"]


@pytest.mark.parametrize("n", [3, 300, 5000])
@pytest.mark.parametrize("k", [1, 3, 7, 50, 400])
def test_partial_selection_ranks_as_a_full_sort_with_ties_in_corpus_order(k, n):
    import numpy as np

    from medtrinity.knowledge.index import top_rows

    rng = np.random.default_rng(k)
    # Few distinct values, so many rows tie at the k-th score; a third of the rows share no term (score 0).
    scores = rng.integers(0, 6, n).astype(np.float64) * rng.choice([0.0, 1.0], n, p=[1 / 3, 2 / 3])
    scores[rng.integers(0, n)] = 9.5  # one clear winner, in whichever block it falls
    positive = np.flatnonzero(scores > 0)
    expected = sorted(positive.tolist(), key=lambda row: (-scores[row], row))[:k]
    assert top_rows(scores, k).tolist() == expected


def test_partial_selection_of_a_query_matching_fewer_passages_than_k():
    import numpy as np

    from medtrinity.knowledge.index import top_rows

    scores = np.zeros(1000)
    scores[[900, 17, 400]] = [2.5, 2.5, 7.0]
    assert top_rows(scores, 10).tolist() == [400, 17, 900]
    assert top_rows(scores, 2).tolist() == [400, 17]
    assert top_rows(np.zeros(5), 3).tolist() == []


def test_weighted_search_ranks_exactly_as_float64_scores_times_weights_sorted_in_full():
    import random

    import numpy as np

    rng = random.Random(3)
    words = [
        "liver",
        "lesion",
        "cyst",
        "kidney",
        "stone",
        "lung",
        "nodule",
        "effusion",
        "brain",
        "glioma",
        "edema",
        "mass",
    ]
    passages = [
        {
            "id": f"p{i}",
            "title": rng.choice(words),
            "text": " ".join(rng.choices(words, k=rng.randint(3, 9))),
            "weight": rng.choice([0.5, 1.0, 1.0, 1.7, 3.0]),
        }
        for i in range(700)
    ]
    index = KnowledgeIndex.build(passages)
    weights = np.array([p["weight"] for p in passages], dtype=np.float32).astype(np.float64)
    for query in ("liver cyst", "lung nodule effusion", "glioma", "kidney stone mass"):
        raw = index._retriever.get_scores_from_ids(index._retriever.get_tokens_ids(analyse(query)))
        scores = np.asarray(raw, dtype=np.float64) * weights
        rows = np.flatnonzero(scores > 0)
        expected = [(f"p{row}", float(scores[row])) for row in rows[np.lexsort((rows, -scores[rows]))][:5]]
        assert [(p.id, p.score) for p in index.search(query, k=5)] == expected
