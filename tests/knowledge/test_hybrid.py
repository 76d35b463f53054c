"""Reciprocal rank fusion: exact scores and order, and HybridIndex over a real BM25 index."""

from __future__ import annotations

import pytest

from medtrinity.knowledge.hybrid import RRF_K, HybridIndex, open_kb, rrf_fuse
from medtrinity.knowledge.index import KnowledgeIndex, default_index


def test_rrf_scores_and_order_are_exact():
    fused = rrf_fuse([["a", "b", "c"], ["c", "a", "d"]], k=4)
    assert [pid for pid, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused[1][1] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[2][1] == pytest.approx(1 / (RRF_K + 2))
    assert rrf_fuse([["a", "b", "c"], ["c", "a", "d"]], k=1) == [fused[0]]


def test_rrf_ties_go_to_the_earlier_rank():
    # b and x appear only once, both at rank 2: b was seen in the first list.
    assert [pid for pid, _ in rrf_fuse([["a", "b"], ["y", "x"]], k=4)] == ["a", "y", "b", "x"]
    assert rrf_fuse([[], []], k=3) == []


class _FixedRanking:
    """A dense side whose ranking is known in advance, so the fused order can be stated exactly."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.calls = 0

    def search(self, query: str, k: int = 3) -> list[tuple[str, float]]:
        self.calls += 1
        return [(pid, 1.0 - i / 10) for i, pid in enumerate(self.ids[:k])]


def test_hybrid_fuses_bm25_with_the_dense_side_and_caches():
    lexical = KnowledgeIndex.build(
        [
            {"id": "p0", "title": "liver", "text": "liver lesion seen on CT"},
            {"id": "p1", "title": "liver cyst", "text": "a simple liver cyst"},
            {"id": "p2", "title": "kidney", "text": "renal stone"},
        ]
    )
    dense = _FixedRanking(["p2", "p1"])
    hybrid = HybridIndex(lexical, dense)
    # BM25 ranks p1, p0 for "liver cyst"; dense ranks p2, p1: p1 is in both and wins.
    results = hybrid.search("liver cyst", k=3)
    assert [p.id for p in results] == ["p1", "p2", "p0"]
    assert results[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert results[1].text == "renal stone"  # a passage BM25 missed is still returned in full
    assert hybrid.search("liver cyst", k=3) == results and dense.calls == 1
    assert hybrid.search("", k=3) == [] and hybrid.search("liver", k=0) == []
    assert hybrid.get("p0") == lexical.get("p0") and len(hybrid) == 3


def test_open_kb_without_dense_folder_is_plain_bm25(tmp_path):
    from medtrinity.knowledge.default_kb import default_plus_index

    assert open_kb("core") is default_index()
    assert open_kb(None) is default_plus_index() and open_kb("default") is default_plus_index()
    KnowledgeIndex.build([{"id": "a", "title": "t", "text": "liver"}]).save(tmp_path)
    assert isinstance(open_kb(str(tmp_path)), KnowledgeIndex)
