"""Streaming corpus loaders: files on disk -> passage dicts `{"id", "title", "text", "source"}`.

Formats: MedRAG chunk JSONL (`{"id", "title", "content", "contents"}`, one file per corpus: pubmed,
statpearls, textbooks, wikipedia), PubMed baseline XML (optionally gzipped, read with iterparse and each
article cleared once read, so a 30 MB baseline file never sits in memory as a tree), OBO ontologies
([Term] name, def, synonyms), plain JSONL (`{"id", "title", "text"}`) and Markdown folders (one passage
per section). Every loader yields passages one at a time; a malformed line, article or term is skipped and
counted in a `LoadReport`, and one warning per file says how many and why.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from medtrinity.errors import UserError

log = logging.getLogger(__name__)

Passage = dict[str, Any]  # id, title, text, source: str; weight (JSONL, default KB): float
FORMATS = ("auto", "medrag", "pubmed", "obo", "jsonl", "markdown")
MEDRAG_CORPORA = ("pubmed", "statpearls", "textbooks", "wikipedia")
_EXAMPLES_PER_FILE = 3  # malformed items quoted in a file's warning; the rest are only counted


@dataclass
class LoadReport:
    """What the loaders read: passages yielded, and items skipped by reason (e.g. "not JSON": 2)."""

    files: int = 0
    passages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.passages} passages from {self.files} files" + (f"; skipped {reasons}" if reasons else "")


class _FileTally:
    """Skips within one file, so the file gets one warning with a few examples instead of one per line."""

    def __init__(self, path: Path, report: LoadReport | None) -> None:
        self.path, self.report = path, report if report is not None else LoadReport()
        self.skipped = 0  # malformed items only: the ones a warning is about
        self.examples: list[str] = []

    def skip(self, reason: str, where: str, malformed: bool = True) -> None:
        """Count a skipped item; a malformed one also goes into the file's warning (obsolete terms do not)."""
        self.report.skipped[reason] += 1
        if not malformed:
            return
        self.skipped += 1
        if len(self.examples) < _EXAMPLES_PER_FILE:
            self.examples.append(f"{where}: {reason}")

    def passage(self, passage: Passage) -> Passage:
        self.report.passages += 1
        return passage

    def close(self) -> None:
        self.report.files += 1
        if self.skipped:
            log.warning(
                "%s: skipped %d malformed items (%s%s)",
                self.path,
                self.skipped,
                "; ".join(self.examples),
                "; …" if self.skipped > len(self.examples) else "",
            )


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")  # -sig: a byte-order mark is not text


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _clean(text: Any) -> str:
    return re.sub(r"\s+", " ", text).strip() if isinstance(text, str) else ""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".xml", ".obo", ".md"):
        name = name.removesuffix(suffix)
    return name


# ------------------------------------------------------------------ JSONL (MedRAG chunks and plain)
def _json_lines(path: Path, tally: _FileTally) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                tally.skip("not JSON", f"line {number}")
                continue
            if not isinstance(item, dict):
                tally.skip("not a JSON object", f"line {number}")
                continue
            yield number, item


def _medrag_source(path: Path) -> str:
    # MedRAG keeps each corpus in its own folder (statpearls/chunk/article-1.jsonl) or file (pubmed23n0001.jsonl).
    for part in (path.name, *(p.name for p in path.parents)):
        for corpus in MEDRAG_CORPORA:
            if part.lower().startswith(corpus):
                return f"MedRAG {corpus}"
    return f"MedRAG {_stem(path)}"


def read_medrag(path: str | Path, report: LoadReport | None = None) -> Iterator[Passage]:
    """MedRAG chunks: `content` is the chunk, `contents` the title and chunk joined (used when content is absent)."""
    path = Path(path)
    tally, source = _FileTally(path, report), _medrag_source(path)
    for number, item in _json_lines(path, tally):
        pid, title = item.get("id"), _clean(item.get("title"))
        text = _clean(item.get("content")) or _clean(item.get("contents"))
        if not isinstance(pid, (str, int)) or not str(pid).strip():
            tally.skip("no id", f"line {number}")
        elif not text:
            tally.skip("no content", f"line {number}")
        else:
            yield tally.passage({"id": str(pid).strip(), "title": title, "text": text, "source": source})
    tally.close()


def _is_weight(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")


def read_jsonl(path: str | Path, report: LoadReport | None = None) -> Iterator[Passage]:
    """Plain passages `{"id", "title", "text"}`, one JSON object a line; an optional `source` is kept, and an
    optional `weight` (a positive number, default 1) scales the passage's ranking score."""
    path = Path(path)
    tally = _FileTally(path, report)
    for number, item in _json_lines(path, tally):
        pid, title, text = item.get("id"), item.get("title", ""), _clean(item.get("text"))
        if not isinstance(pid, (str, int)) or not str(pid).strip():
            tally.skip("no id", f"line {number}")
        elif not text:
            tally.skip("no text", f"line {number}")
        elif title is not None and not isinstance(title, str):
            tally.skip("non-string title", f"line {number}")
        elif "weight" in item and not _is_weight(item["weight"]):
            tally.skip("weight not a positive number", f"line {number}")
        else:
            source = item.get("source") if isinstance(item.get("source"), str) else _stem(path)
            passage = {"id": str(pid).strip(), "title": _clean(title), "text": text, "source": source}
            if "weight" in item:
                passage["weight"] = float(item["weight"])
            yield tally.passage(passage)
    tally.close()


# ------------------------------------------------------------------ PubMed baseline XML
_NOT_MALFORMED = frozenset({"no abstract", "obsolete term", "no definition"})  # expected in real files


def _article_passage(article: Any) -> tuple[Passage | None, str]:
    citation = article.find("MedlineCitation")
    if citation is None:
        return None, "no MedlineCitation"
    pmid = _clean("".join(citation.findtext("PMID") or ""))
    if not pmid.isdigit():
        return None, "no PMID"
    title_element = citation.find("Article/ArticleTitle")
    title = _clean("".join(title_element.itertext())) if title_element is not None else ""
    sections = []
    for abstract_text in citation.iterfind("Article/Abstract/AbstractText"):
        # itertext keeps text inside inline markup (<i>, <sup>) that .text would cut off.
        body = _clean("".join(abstract_text.itertext()))
        if body:
            label = _clean(abstract_text.get("Label"))
            sections.append(f"{label.rstrip(':').upper()}: {body}" if label else body)
    if not sections:
        return None, "no abstract"
    if not title:
        return None, "no title"
    return {"id": f"PMID:{pmid}", "title": title, "text": " ".join(sections), "source": "PubMed"}, ""


def read_pubmed(path: str | Path, report: LoadReport | None = None) -> Iterator[Passage]:
    """PubmedArticleSet/PubmedArticle -> one passage per article with an abstract; id `PMID:<n>`.

    Articles without a PMID, title or abstract are skipped and counted. A file cut short (truncated gzip,
    broken XML) keeps the articles read before the break and counts one "unreadable XML" skip.
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    tally = _FileTally(path, report)
    number = 0
    try:
        with _open_binary(path) as stream:
            root = None
            for event, element in ET.iterparse(stream, events=("start", "end")):
                if root is None:
                    root = element  # the PubmedArticleSet, cleared as articles finish so the tree stays small
                    if element.tag != "PubmedArticleSet":
                        tally.skip(f"root <{element.tag}> is not PubmedArticleSet", "file")
                        break
                if event != "end" or element.tag not in ("PubmedArticle", "PubmedBookArticle", "DeleteCitation"):
                    continue
                if element.tag == "PubmedArticle":
                    number += 1
                    passage, reason = _article_passage(element)
                    if passage is None:
                        tally.skip(reason, f"article {number}", reason not in _NOT_MALFORMED)
                    else:
                        yield tally.passage(passage)
                root.clear()
    except (ET.ParseError, EOFError, OSError) as error:
        tally.skip("unreadable XML", f"after article {number} ({error})")
    tally.close()


# ------------------------------------------------------------------ OBO ontologies
_OBO_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"')
_OBO_ESCAPES = re.compile(r"\\(.)")


def _obo_string(value: str) -> str | None:
    match = _OBO_QUOTED.match(value.strip())
    if not match:
        return None
    return _OBO_ESCAPES.sub(lambda m: {"n": " ", "t": " "}.get(m.group(1), m.group(1)), match.group(1))


def _obo_stanzas(lines: Iterable[str]) -> Iterator[tuple[int, str, list[tuple[str, str]]]]:
    """(line number, stanza type, [(tag, value)]) for each stanza; the header comes first as type ''."""
    kind, start, tags = "", 1, []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("[") and line.endswith("]"):
            yield start, kind, tags
            kind, start, tags = line[1:-1], number, []
        elif ":" in line:
            tag, value = line.split(":", 1)
            tags.append((tag.strip(), value.strip()))
        else:
            tags.append(("", line))  # not tag: value; the stanza is judged malformed below if it matters
    yield start, kind, tags


def _term_passage(tags: list[tuple[str, str]], source: str) -> tuple[Passage | None, str]:
    values: dict[str, list[str]] = {}
    for tag, value in tags:
        values.setdefault(tag, []).append(value)
    if values.get("is_obsolete") == ["true"]:
        return None, "obsolete term"
    term_id, name = values.get("id", [""])[0], _clean(values.get("name", [""])[0])
    if not term_id or not name or "" in values:
        return None, "malformed term"
    definition = _obo_string(values["def"][0]) if "def" in values else None
    if definition is None:
        return None, "malformed term" if "def" in values else "no definition"
    synonyms = []
    for value in values.get("synonym", []):
        synonym = _obo_string(value)
        if synonym is None:
            return None, "malformed term"
        if _clean(synonym).lower() != name.lower() and _clean(synonym) not in synonyms:
            synonyms.append(_clean(synonym))
    text = _clean(definition) + (f" Synonyms: {'; '.join(synonyms)}." if synonyms else "")
    return {"id": term_id, "title": name, "text": text, "source": source}, ""


def read_obo(path: str | Path, report: LoadReport | None = None) -> Iterator[Passage]:
    """One passage per [Term] with a definition: title = name, text = def plus synonyms, id = the term id.

    Obsolete terms and terms without a `def:` are skipped and counted, as are malformed stanzas.
    """
    path = Path(path)
    tally = _FileTally(path, report)
    source = _stem(path)
    with _open_text(path) as lines:
        for start, kind, tags in _obo_stanzas(lines):
            if kind == "":
                ontology = dict(tags).get("ontology")
                source = ontology.removesuffix(".obo").upper() if ontology else source
            elif kind == "Term":
                passage, reason = _term_passage(tags, source)
                if passage is None:
                    tally.skip(reason, f"line {start}", reason not in _NOT_MALFORMED)
                else:
                    yield tally.passage(passage)
    tally.close()


# ------------------------------------------------------------------ Markdown
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def read_markdown(path: str | Path, report: LoadReport | None = None, root: Path | None = None) -> Iterator[Passage]:
    """One passage per section (text under a heading, up to the next heading); id `<file>#<heading-slug>`.

    Text before the first heading is a section titled by the file name; headings inside code fences are text.
    """
    path = Path(path)
    tally = _FileTally(path, report)
    name = path.relative_to(root).with_suffix("").as_posix() if root else path.stem
    sections: list[tuple[str, list[str]]] = [(path.stem.replace("_", " ").replace("-", " "), [])]
    in_fence = False
    with _open_text(path) as lines:
        for line in lines:
            if _FENCE.match(line):
                in_fence = not in_fence
            heading = None if in_fence else _HEADING.match(line)
            if heading:
                sections.append((_clean(heading.group(2)), []))
            else:
                sections[-1][1].append(line)
    used: Counter[str] = Counter()
    for title, body in sections:
        text = _clean(" ".join(body))
        if not text:
            continue
        slug = _slug(title)
        used[slug] += 1
        anchor = slug if used[slug] == 1 else f"{slug}-{used[slug]}"
        yield tally.passage({"id": f"{name}#{anchor}", "title": title, "text": text, "source": name})
    tally.close()


# ------------------------------------------------------------------ format detection and whole corpora
def _jsonl_kind(path: Path) -> str:
    with _open_text(path) as lines:
        for _, line in zip(range(50), lines):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict):
                return "medrag" if "content" in item or "contents" in item else "jsonl"
    return "jsonl"


def detect_format(path: str | Path) -> str | None:
    """The format of one file from its name (and, for JSONL, its first object's keys); None if not a corpus."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".xml"):
        return "pubmed"
    if name.endswith(".obo"):
        return "obo"
    if name.endswith((".md", ".markdown")):
        return "markdown"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _jsonl_kind(path)
    return None


READERS: dict[str, Callable[..., Iterator[Passage]]] = {
    "medrag": read_medrag,
    "pubmed": read_pubmed,
    "obo": read_obo,
    "jsonl": read_jsonl,
    "markdown": read_markdown,
}


def _corpus_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    raise UserError(f"corpus {path} does not exist")


def read_corpus(paths: Iterable[str | Path], fmt: str = "auto", report: LoadReport | None = None) -> Iterator[Passage]:
    """Passages from files and folders (folders are walked, sorted); `fmt` forces one format for every file.

    A passage whose id was already seen is skipped and counted ("duplicate id"), so several corpora can be
    indexed together. Files of no known format inside a folder are skipped silently; given by name, they
    are an error.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
    report = report if report is not None else LoadReport()
    seen: set[str] = set()
    for given in map(Path, paths):
        files = _corpus_files(given)
        root = given if given.is_dir() else None
        for path in files:
            kind = fmt if fmt != "auto" else detect_format(path)
            if kind is None:
                if root is None:
                    raise UserError(
                        f"{path}: cannot tell the corpus format from the name; pass --format ({', '.join(FORMATS[1:])})"
                    )
                continue
            reader = READERS[kind]
            passages = reader(path, report, root=root) if kind == "markdown" else reader(path, report)
            duplicates = 0
            for passage in passages:
                if passage["id"] in seen:
                    duplicates += 1
                    report.passages -= 1
                    report.skipped["duplicate id"] += 1
                    continue
                seen.add(passage["id"])
                yield passage
            if duplicates:
                log.warning("%s: skipped %d passages whose id was already read", path, duplicates)
