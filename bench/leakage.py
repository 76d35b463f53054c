"""The leakage index against brute force: comparisons/s over the same hashes (a benchmark, not a test).

    python bench/leakage.py [--index 100000] [--queries 1000] [--distance 8]

`eval leakage` finds near-duplicate images through a multi-index hash table (evaluate/hash_index.py). This
indexes `--index` 64-bit hashes, asks `--queries` queries within `--distance` bits, and reports the pairs it
covers per second (index size x queries / time) next to a brute force over the same hashes — every pair's
XOR and popcount, vectorised with numpy — with the ratio, and checks that both find the same pairs. The hashes
are pHashes of a build's kind: random 64-bit values with the queries drawn near a fifth of them (altered
copies) and the rest new.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from medtrinity.evaluate.hash_index import HashIndex, popcount


def hashes(n_index: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    index = rng.integers(0, 2**64, n_index, dtype=np.uint64)
    queries = rng.integers(0, 2**64, n_queries, dtype=np.uint64)
    near = rng.choice(n_index, n_queries // 5, replace=False)
    for q, i in enumerate(near):  # a copy: 0-6 bits flipped
        flips = rng.choice(64, rng.integers(0, 7), replace=False)
        queries[q] = index[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    return index, queries


def brute_force(index: np.ndarray, queries: np.ndarray, radius: int) -> tuple[set, float]:
    start, found = time.perf_counter(), set()
    for q, value in enumerate(queries):
        close = np.nonzero(popcount(index ^ value) <= radius)[0]
        found.update((q, int(i)) for i in close)
    return found, time.perf_counter() - start


def with_index(index: np.ndarray, queries: np.ndarray, radius: int) -> tuple[set, float, float, int]:
    start = time.perf_counter()
    table = HashIndex(index, radius)
    built = time.perf_counter() - start
    start = time.perf_counter()
    q, i, _ = table.query(queries)
    elapsed = time.perf_counter() - start
    return set(zip(q.tolist(), i.tolist())), built, elapsed, table.compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--distance", type=int, default=8)
    args = parser.parse_args()
    index, queries = hashes(args.index, args.queries)
    pairs = args.index * args.queries
    brute, brute_s = brute_force(index, queries, args.distance)
    found, built_s, query_s, compared = with_index(index, queries, args.distance)
    assert found == brute, "the index and brute force disagree"
    print(f"{args.index:,} indexed x {args.queries:,} queries, within {args.distance} bits: {len(found)} pairs")
    print(f"  brute force (numpy): {pairs / brute_s:,.0f} comparisons/s ({brute_s:.2f} s)")
    print(
        f"  index:               {pairs / query_s:,.0f} comparisons/s covered ({query_s:.2f} s; built in "
        f"{built_s:.2f} s; {compared:,} full-hash checks, {compared / pairs:.4%} of the pairs)"
    )
    print(f"  ratio index / brute force: {brute_s / query_s:.1f}x")


if __name__ == "__main__":
    main()
