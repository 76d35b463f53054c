"""Which knowledge base a build used, as its manifest records it, so a reader can tell where passages came from.

`--kb` unset means the default KB, so the manifest's config says `"kb": null`; this names it and pins its
contents: the default KB's version (medtrinity, analyser, HPO and ICD-10-CM package versions, core corpus
digest), or a `kb build` folder's absolute path, and for every KB the number of passages and their digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def kb_provenance(kb: str | None) -> dict[str, Any]:
    """{"name", "version" or "path", "passages", "digest"} (and "dense_model" for a hybrid folder) for `--kb`."""
    from medtrinity.knowledge.hybrid import HybridIndex, open_kb

    index = open_kb(kb)  # the same call RetrieveStage makes; default and core are cached in the process
    lexical = index.lexical if isinstance(index, HybridIndex) else index
    found: dict[str, Any] = {"name": kb if kb in ("default", "core") else "default" if kb is None else "folder"}
    if found["name"] == "default":
        from medtrinity.knowledge.default_kb import default_plus_dir

        found["version"] = default_plus_dir().name.removeprefix("kb-")
    elif found["name"] == "core":
        from medtrinity import __version__
        from medtrinity.knowledge.default_kb import bundled_corpus_digest

        found["version"] = f"{__version__}-core{bundled_corpus_digest()}"
    else:
        found["path"] = str(Path(kb).resolve())
    found["passages"] = len(lexical)
    found["digest"] = lexical.digest
    if isinstance(index, HybridIndex):
        found["dense_model"] = index.dense.model_path
    return found
