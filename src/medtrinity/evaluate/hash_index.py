"""Hamming-radius search over 64-bit hashes without comparing all pairs: multi-index hashing.

Norouzi, Punjani and Fleet (CVPR 2012): a hash is cut into m substrings of 64/m bits, and each substring
indexes its own table. Two hashes within distance r differ by at most floor(r/m) bits in at least one
substring (pigeonhole), so probing each table with every key within floor(r/m) bits of the query's
substring finds every neighbour; the candidates are then checked on the full hash. Substrings of about
log2(n) bits keep about one hash per key: for 100k hashes and r = 8, m = 4 (16 bits), and a query probes
4 x 137 keys and checks under a thousand candidates instead of 100k; for 1M hashes, m = 3 (21-22 bits). Exact: no neighbour within r is ever missed. Tables are sorted arrays and queries go in
batches through numpy (searchsorted over every probe at once), so the cost per query is a few hundred
operations in compiled code, not a Python loop over the index.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

QUERY_BATCH = 1024  # queries expanded at once: bounds the candidate arrays' memory
MAX_PROBES = 4000  # keys probed per query, over all tables: more substrings are used before more probes


def popcount(values: np.ndarray) -> np.ndarray:
    """Bits set in each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values).astype(np.int64)
    as_bytes = values.astype(np.uint64).view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1).astype(np.int64)


def _widths(parts: int) -> list[int]:
    """64 bits cut into `parts` substrings as equal as can be (21, 21, 22)."""
    return [64 // parts + (1 if i >= parts - 64 % parts else 0) for i in range(parts)]


def _probe_count(width: int, radius: int) -> int:
    from math import comb

    return sum(comb(width, k) for k in range(radius + 1))


def choose_parts(size: int, radius: int) -> int:
    """Substrings of about log2(size) bits, more of them where a substring's probes would be too many."""
    from math import log2

    parts = min(16, max(2, round(64 / max(8.0, log2(size + 1)))))
    while parts < 16 and sum(_probe_count(w, radius // parts) for w in _widths(parts)) > MAX_PROBES:
        parts += 1
    return parts


def _masks(bits: int, radius: int) -> np.ndarray:
    """Every `bits`-bit XOR mask with at most `radius` bits set."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << p for p in positions) for positions in combinations(range(bits), k)]
    return np.array(masks, dtype=np.uint64)


class HashIndex:
    """64-bit hashes (ids: their positions in `values`); `query` finds every one within `radius` of each query."""

    def __init__(self, values, radius: int, parts: int | None = None) -> None:
        if not 0 <= radius <= 64:
            raise ValueError("radius must be between 0 and 64")
        self.values = np.asarray(values, dtype=np.uint64).ravel()
        self.radius = radius
        self.parts = parts or choose_parts(len(self.values), radius)
        widths = _widths(self.parts)
        self._shifts = [sum(widths[:i]) for i in range(self.parts)]
        self._masks = [np.uint64((1 << w) - 1) for w in widths]
        self._probes = [_masks(w, radius // self.parts) for w in widths]
        self._keys, self._order = [], []
        for part in range(self.parts):
            keys = self._substring(self.values, part)
            order = np.argsort(keys, kind="stable")
            self._keys.append(keys[order])
            self._order.append(order)
        self.compared = 0  # full-hash comparisons made by queries (for the benchmark)

    def _substring(self, values: np.ndarray, part: int) -> np.ndarray:
        return (values >> np.uint64(self._shifts[part])) & self._masks[part]

    def query(self, queries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query position, id, distance) of every pair within the radius, sorted by query then id."""
        queries = np.asarray(queries, dtype=np.uint64).ravel()
        found = [], [], []
        n = len(self.values)
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start : start + QUERY_BATCH]
            pair_q, pair_i = [], []
            for part in range(self.parts):
                masks = self._probes[part]
                probes = (self._substring(batch, part)[:, None] ^ masks[None, :]).ravel()
                low = np.searchsorted(self._keys[part], probes, "left")
                counts = np.searchsorted(self._keys[part], probes, "right") - low
                total = int(counts.sum())
                if not total:
                    continue
                ends = np.cumsum(counts)
                positions = np.repeat(low - (ends - counts), counts) + np.arange(total)
                pair_q.append(np.repeat(np.arange(len(batch)).repeat(len(masks)), counts))
                pair_i.append(self._order[part][positions])
            if not pair_q or n == 0:
                continue
            q, i = np.concatenate(pair_q), np.concatenate(pair_i)
            self.compared += len(q)  # a pair found through several tables is checked again: cheaper than deduplicating
            d = popcount(batch[q] ^ self.values[i])
            keep = d <= self.radius
            keys, first = np.unique(q[keep].astype(np.int64) * n + i[keep], return_index=True)
            found[0].append(keys // n + start)
            found[1].append(keys % n)
            found[2].append(d[keep][first])
        if not found[0]:
            return tuple(np.zeros(0, np.int64) for _ in range(3))
        return tuple(np.concatenate(arrays) for arrays in found)

    def near(self, value: int) -> list[tuple[int, int]]:
        """(id, distance) of every hash within the radius of one value, by id."""
        _, ids, distances = self.query([value])
        return [(int(i), int(d)) for i, d in zip(ids, distances)]

    def __len__(self) -> int:
        return len(self.values)
