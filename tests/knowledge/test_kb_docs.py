"""docs/KNOWLEDGE.md reads true: its JSONL example builds as it says, and its table names every format."""

from __future__ import annotations

import re
from pathlib import Path

from medtrinity.knowledge.corpus import FORMATS, LoadReport, read_corpus
from medtrinity.knowledge.index import KnowledgeIndex

DOC = Path(__file__).resolve().parents[2] / "docs" / "KNOWLEDGE.md"


def test_the_jsonl_example_indexes_as_documented(tmp_path):
    block = re.search(r"```jsonl\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text(block.group(1), encoding="utf-8")
    report = LoadReport()
    passages = list(read_corpus([corpus], report=report))
    assert [(p["id"], p["title"], p.get("weight"), p["source"]) for p in passages] == [
        ("rad-001", "Pneumothorax", None, "notes"),
        ("rad-002", "Simple renal cyst", None, "our teaching notes"),
        ("3", "Pleural effusion", 0.5, "notes"),
    ]
    assert report.summary() == "3 passages from 1 files"
    index = KnowledgeIndex.build(passages)
    assert [p.id for p in index.search("pleural", k=3)] == ["rad-001", "3"]  # weight 0.5 ranks the effusion down


def test_every_corpus_format_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for fmt in FORMATS[1:]:
        assert f"| `{fmt}` |" in text, fmt
