"""Hybrid retrieval: BM25 and dense rankings fused with reciprocal rank fusion (RRF), and `open_kb`.

RRF scores a passage by sum(1 / (RRF_K + rank)) over the rankings it appears in. It needs no score
calibration (BM25 scores and cosine similarities live on different scales) and rewards passages both
retrievers agree on; RRF_K = 60 is the constant of Cormack et al. (2009).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from medtrinity.knowledge.index import QUERY_CACHE_SIZE, KnowledgeIndex, default_index, load_index
from medtrinity.records import Passage

RRF_K = 60
FUSION_DEPTH = 50  # how deep each ranking is read before fusing


class IdRetriever(Protocol):
    def search(self, query: str, k: int = 3) -> list[tuple[str, float]]: ...


def rrf_fuse(rankings: Sequence[Sequence[str]], k: int, rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked id lists: the `k` best (id, RRF score); ties go to the id ranked first in the earliest list."""
    scores: dict[str, float] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        for rank, pid in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (rrf_k + rank)
            first_seen.setdefault(pid, (rank, which))
    order = sorted(scores, key=lambda pid: (-scores[pid], first_seen[pid]))
    return [(pid, scores[pid]) for pid in order[:k]]


class HybridIndex:
    """BM25 (`KnowledgeIndex`) + a dense retriever, fused with RRF; same `search`/`get` as KnowledgeIndex."""

    def __init__(self, lexical: KnowledgeIndex, dense: IdRetriever, depth: int = FUSION_DEPTH) -> None:
        self.lexical, self.dense, self.depth = lexical, dense, depth
        self._ranked = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._rank)

    def __len__(self) -> int:
        return len(self.lexical)

    def _rank(self, query: str, k: int) -> tuple[tuple[str, float], ...]:
        depth = max(k, self.depth)
        lexical = [p.id for p in self.lexical.search(query, depth)]
        dense = [pid for pid, _ in self.dense.search(query, depth)]
        return tuple(rrf_fuse([lexical, dense], k))

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The `k` best passages by fused rank; `score` is the RRF score."""
        if k <= 0 or not query.strip():
            return []
        found = []
        for pid, score in self._ranked(query, k):
            passage = self.lexical.get(pid)
            if passage is not None:
                passage.score = score
                found.append(passage)
        return found

    def get(self, passage_id: str) -> Passage | None:
        return self.lexical.get(passage_id)


def open_kb(path: str | None, dense: bool = True) -> KnowledgeIndex | HybridIndex:
    """A knowledge base by name or folder: None/"default" (core + HPO + ICD-10-CM, built into the user cache
    on first use), "core" (the bundled corpus alone), or a folder from `kb build` — hybrid when it has a
    dense index and `dense` is set.
    """
    if path in (None, "default"):
        from medtrinity.knowledge.default_kb import default_plus_index

        return default_plus_index()
    if path == "core":
        return default_index()
    lexical = load_index(path)
    from medtrinity.knowledge.dense import DenseIndex

    if dense and DenseIndex.exists(Path(path)):
        return HybridIndex(lexical, DenseIndex.load(Path(path)))
    return lexical
