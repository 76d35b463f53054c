"""A lexical (BM25) index over medical passages, and the default index built from the bundled corpus.

The index is a bm25s retriever plus the passages themselves in an Arrow IPC file, so a saved index of
millions of passages can be memory-mapped instead of read into memory. Text is analysed the same way on
both sides: lower case, "x ray"/"X-ray" joined into one token, stopwords dropped, British spellings
unified with American ones, and a light suffix stemmer written here (deterministic, no PyStemmer needed,
so an index saved on one machine searches identically on another). A passage's title counts twice, and
the words its text negates are not indexed (negation.py). Dense and hybrid retrievers sit beside this class
with the same `search`/`get` interface (dense.py, hybrid.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from medtrinity.errors import UserError
from medtrinity.knowledge.negation import drop_negated
from medtrinity.knowledge.query import normalise_terms
from medtrinity.records import Passage

FORMAT = "medtrinity-kb"
FORMAT_VERSION = 2  # 2: passages carry a ranking weight
ANALYSER = "medtrinity-light-v2"  # bump when `analyse` or `passage_tokens` changes: saved indexes then
# ask to be rebuilt. v2: negated words in passage texts are not indexed.
META_FILE = "medtrinity_kb.json"  # written last by `save`: its presence marks a complete index
PASSAGES_FILE = "passages.arrow"
BM25_DIR = "bm25"
QUERY_CACHE_SIZE = 4096

# `weight` scales a passage's BM25 score: a curated corpus can outrank large generic ones (HPO, ICD-10-CM)
# whose short entries otherwise win on term density alone.
_PASSAGE_SCHEMA = pa.schema(
    [("id", pa.string()), ("title", pa.string()), ("text", pa.string()), ("weight", pa.float32())]
)

# bm25s's English list plus function words frequent in captions and abstracts.
_STOPWORDS = frozenset(
    """
a an and are as at be but by for if in into is it no not of on or such that the their then there these they
this to was will with from which its has have had been also than when where while both each other more most
can may might often usually typically within without between over under about after before during
""".split()
)

# Word-start spellings: British -> American, so "haemorrhage" and "hemorrhage" meet.
_SPELLING_PREFIXES = (
    ("haem", "hem"),
    ("oedem", "edem"),
    ("oesophag", "esophag"),
    ("caec", "cec"),
    ("anaem", "anem"),
    ("paediatr", "pediatr"),
    ("orthopaed", "orthoped"),
    ("ischaem", "ischem"),
    ("leukaem", "leukem"),
    ("naev", "nev"),
    ("tumour", "tumor"),
    ("colour", "color"),
    ("fibre", "fiber"),
    ("centre", "center"),
    ("oestrogen", "estrogen"),
    ("foetal", "fetal"),
)
_ISE_SUFFIX = re.compile(r"(?<=\w{3})is(e|ed|es|ing|ation|ations)$")  # normalise/normalize
# Latin and Greek plurals the suffix rules cannot reach.
_IRREGULAR = {
    "metastases": "metastasis",
    "diagnoses": "diagnosis",
    "stenoses": "stenosis",
    "fibroses": "fibrosis",
    "necroses": "necrosis",
    "anastomoses": "anastomosis",
    "nevi": "nevus",
    "bronchi": "bronchus",
    "emboli": "embolus",
    "thrombi": "thrombus",
    "calculi": "calculus",
    "foci": "focus",
    "nuclei": "nucleus",
    "sulci": "sulcus",
    "vertebrae": "vertebra",
    "bullae": "bulla",
    "lacunae": "lacuna",
    "septa": "septum",
    "carcinomata": "carcinoma",
    "adenomata": "adenoma",
}
_XRAY = re.compile(r"\bx[\s-]?rays?\b")
_TOKEN = re.compile(r"[a-z0-9]+")


def light_stem(token: str) -> str:
    """A small suffix stemmer: plurals, -ing/-ed and a final -e, so "enhancing", "enhanced" and "enhance" meet."""
    if token in _IRREGULAR:
        return _IRREGULAR[token]
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        token = token[:-3] + "y"
    elif token.endswith("sses"):
        token = token[:-2]
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            token = token[: -len(suffix)]
            break
    if token.endswith("e") and len(token) > 4:
        token = token[:-1]
    return token


def _unify_spelling(token: str) -> str:
    for british, american in _SPELLING_PREFIXES:
        if token.startswith(british):
            token = american + token[len(british) :]
            break
    return _ISE_SUFFIX.sub(r"iz\1", token)


@functools.lru_cache(maxsize=1 << 16)
def _term(token: str) -> str:
    # Cached: a corpus repeats a small vocabulary, and the spelling and suffix rules are the analyser's cost.
    return light_stem(_unify_spelling(token))


def analyse(text: str) -> list[str]:
    """The tokens BM25 sees for a passage or a query."""
    text = _XRAY.sub("xray", text.lower())
    return [_term(token) for token in _TOKEN.findall(text) if len(token) > 1 and token not in _STOPWORDS]


def passage_tokens(title: str, text: str) -> list[str]:
    """The tokens BM25 indexes for a passage: the title twice, then the text without what it negates."""
    # The title names the passage's topic in a few words, the text wanders more. Findings the text rules out
    # ("no pneumothorax is seen") are not its topic (see negation.py).
    return analyse(f"{title}\n{title}\n{drop_negated(text)}")


def passages_digest(table: pa.Table) -> str:
    """A digest of the passages' ids, titles, texts and weights, from the Arrow buffers (no per-row Python)."""
    digest = hashlib.sha1()
    for column in table.combine_chunks().columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()[:16]


def _passage_table(passages: Iterable[Mapping[str, Any]]) -> pa.Table:
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    weights: list[float] = []
    seen: set[str] = set()
    for number, item in enumerate(passages, start=1):
        if not isinstance(item, Mapping):
            raise UserError(f"passage {number} is a {type(item).__name__}, expected an object with id, title, text")
        pid, title, text = item.get("id"), item.get("title", ""), item.get("text")
        if not isinstance(pid, str) or not pid.strip():
            raise UserError(f"passage {number} has no string 'id'")
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"passage {pid!r} has no string 'text'")
        if title is None:
            title = ""
        if not isinstance(title, str):
            raise UserError(f"passage {pid!r} has a non-string 'title'")
        if pid in seen:
            raise UserError(f"passage id {pid!r} appears twice; ids must be unique")
        seen.add(pid)
        ids.append(pid)
        titles.append(title)
        texts.append(text)
        weight = item.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or not weight > 0:
            raise UserError(f"passage {pid!r} has a 'weight' that is not a positive number")
        weights.append(float(weight))
    if not ids:
        raise UserError("no passages to index")
    return pa.Table.from_arrays(
        [pa.array(ids), pa.array(titles), pa.array(texts), pa.array(weights, pa.float32())], schema=_PASSAGE_SCHEMA
    )


_BLOCK = 256  # rows per block when finding the k-th score's lower bound from block maxima


def candidate_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows that may be among the `k` highest positive scores (every row tied with the k-th included), in corpus
    order: a partial selection, linear in the corpus and cheaper than argpartition, which moves the whole array.
    The k largest block maxima are k distinct scores, so the k-th of them is a lower bound for the k-th score,
    and one vectorised pass keeps the rows at or above it."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    whole = n - n % _BLOCK
    maxima = scores[:whole].reshape(-1, _BLOCK).max(axis=1) if whole else scores[:0]
    if whole < n:
        maxima = np.append(maxima, scores[whole:].max())
    count = maxima.shape[0]
    if count <= k:  # no bound to be had: every matching row
        return np.flatnonzero(scores > 0)
    bound = np.partition(maxima, count - k)[count - k]
    return np.flatnonzero(scores >= bound) if bound > 0 else np.flatnonzero(scores > 0)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the `k` highest positive scores, highest first, equal scores in corpus order."""
    rows = candidate_rows(scores, k)
    return rows[np.lexsort((rows, -scores[rows]))][:k]


class KnowledgeIndex:
    """BM25 over passage title + text. Build it with `build` or `load`, not the constructor."""

    def __init__(self, retriever: Any, passages: pa.Table, digest: str | None = None) -> None:
        self._retriever = retriever
        self._passages = passages
        # What the passages are, for a build's manifest; computed at build time, stored by `save`.
        self.digest = digest if digest is not None else passages_digest(passages)
        self._row_of: dict[str, int] | None = None  # id -> row, made on the first `get`
        weights = passages.column("weight").to_numpy().astype(np.float64)
        self._weights = None if np.all(weights == 1.0) else weights
        self._weights32 = None if self._weights is None else weights.astype(np.float32)
        self._ranked = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._rank)

    # -------------------------------------------------------------- construction
    @classmethod
    def build(cls, passages: Iterable[Mapping[str, Any]]) -> KnowledgeIndex:
        """Index dicts with `id`, `title`, `text` (other keys are ignored). Raises UserError on a bad passage."""
        import bm25s

        table = _passage_table(passages)
        corpus_tokens = [
            passage_tokens(title, text)
            for title, text in zip(table.column("title").to_pylist(), table.column("text").to_pylist())
        ]
        retriever = bm25s.BM25()
        retriever.index(corpus_tokens, show_progress=False)
        return cls(retriever, table)

    def save(self, directory: str | Path) -> None:
        """Write the index to `directory` (created if needed); `load` reads it back."""
        import bm25s

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / META_FILE).unlink(missing_ok=True)  # an overwrite that fails midway leaves no valid-looking index
        self._retriever.save(str(directory / BM25_DIR), show_progress=False)
        with pa.OSFile(str(directory / PASSAGES_FILE), "wb") as sink:
            with pa.ipc.new_file(sink, _PASSAGE_SCHEMA) as writer:
                writer.write_table(self._passages)
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "analyser": ANALYSER,
            "passages": len(self),
            "digest": self.digest,
            "bm25s": bm25s.__version__,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> KnowledgeIndex:
        """Read an index written by `save`; with `mmap` the arrays and passages stay on disk until touched."""
        import bm25s

        directory = Path(directory)
        meta = _read_meta(directory)
        if meta.get("analyser") != ANALYSER:
            raise UserError(
                f"{directory}: index was built with analyser {meta.get('analyser')!r}, this version uses "
                f"{ANALYSER!r}; rebuild it with `medtrinity kb build`"
            )
        try:
            retriever = bm25s.BM25.load(str(directory / BM25_DIR), mmap=mmap, load_vocab=True, show_progress=False)
            passages_path = str(directory / PASSAGES_FILE)
            source = pa.memory_map(passages_path) if mmap else pa.OSFile(passages_path)
            passages = pa.ipc.open_file(source).read_all()
        except (OSError, ValueError, pa.ArrowInvalid) as error:
            raise UserError(f"{directory}: knowledge index is incomplete or damaged ({error}); rebuild it") from error
        if passages.num_rows != int(retriever.scores["num_docs"]) or passages.schema != _PASSAGE_SCHEMA:
            raise UserError(f"{directory}: passages file does not match the BM25 index; rebuild it")
        return cls(retriever, passages, digest=meta.get("digest"))

    # -------------------------------------------------------------- lookup
    def __len__(self) -> int:
        return self._passages.num_rows

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The `k` best passages for `query`, best first; only passages sharing a term with it (score > 0)."""
        if k <= 0 or not query.strip():
            return []
        return [self._passage_at(row, score) for row, score in self._ranked(query, k)]

    def get(self, passage_id: str) -> Passage | None:
        """The passage with this id (score 0.0), or None."""
        if self._row_of is None:
            self._row_of = {pid: row for row, pid in enumerate(self._passages.column("id").to_pylist())}
        row = self._row_of.get(passage_id)
        return None if row is None else self._passage_at(row, 0.0)

    def _rank(self, query: str, k: int) -> tuple[tuple[int, float], ...]:
        tokens = analyse(normalise_terms(query))
        token_ids = self._retriever.get_tokens_ids(tokens)
        if not token_ids:
            return ()
        raw = np.asarray(self._retriever.get_scores_from_ids(token_ids))
        if self._weights is None:  # float32 ranks as float64 does: no copy
            return tuple((int(row), float(raw[row])) for row in top_rows(raw, k))
        # Weighted: chosen in float32 (rounding keeps the order, so every true top-k row is at or above the
        # bound), then the few candidates are scored exactly in float64 and ranked.
        rows = candidate_rows(raw.astype(np.float32, copy=False) * self._weights32, k)
        exact = raw[rows].astype(np.float64) * self._weights[rows]
        keep = exact > 0
        rows, exact = rows[keep], exact[keep]
        order = np.lexsort((rows, -exact))[:k]
        return tuple((int(rows[i]), float(exact[i])) for i in order)

    def _passage_at(self, row: int, score: float) -> Passage:
        # A fresh Passage each call: callers may edit theirs without touching the query cache.
        return Passage(
            id=self._passages.column("id")[row].as_py(),
            title=self._passages.column("title")[row].as_py(),
            text=self._passages.column("text")[row].as_py(),
            score=score,
        )

    # The query cache wraps a bound method, which cannot be pickled: process pools get a fresh one.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_ranked"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._ranked = functools.lru_cache(maxsize=QUERY_CACHE_SIZE)(self._rank)


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise UserError(
            f"{directory} is not a knowledge index (no {META_FILE}); build one with "
            f"`medtrinity kb build CORPUS --out DIR`"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{meta_path} is not readable JSON ({error}); rebuild the index") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{meta_path} does not describe a {FORMAT} index; rebuild it")
    if meta.get("version") != FORMAT_VERSION:
        raise UserError(
            f"{directory}: index format version {meta.get('version')}, expected {FORMAT_VERSION}; rebuild it"
        )
    return meta


def _read_bundled_passages() -> list[dict[str, Any]]:
    passages: list[dict[str, Any]] = []
    kb = resources.files("medtrinity.knowledge") / "kb"
    for entry in sorted((e for e in kb.iterdir() if e.name.endswith(".jsonl")), key=lambda e: e.name):
        for number, line in enumerate(entry.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    passages.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise UserError(f"bundled corpus {entry.name}:{number} is not valid JSON ({error})") from error
    return passages


@functools.lru_cache(maxsize=1)
def default_index() -> KnowledgeIndex:
    """The index over the bundled corpus (knowledge/kb/*.jsonl), built once per process."""
    return KnowledgeIndex.build(_read_bundled_passages())


def load_index(path: str | None) -> KnowledgeIndex:
    """The index a build uses: the bundled default for None, else a directory written by `KnowledgeIndex.save`."""
    if path is None:
        return default_index()
    directory = Path(path)
    if not directory.is_dir():
        raise UserError(
            f"knowledge index {path} is not a directory; "
            f"pass a directory made by `medtrinity kb build CORPUS --out DIR`"
        )
    return KnowledgeIndex.load(directory)
