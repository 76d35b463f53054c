"""`kb build` / `kb search` through the command functions and through `python -m medtrinity.knowledge.cli`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from fixtures.corpora import write_jsonl, write_markdown, write_medrag, write_obo, write_pubmed

from medtrinity.errors import UserError
from medtrinity.knowledge.cli import add_kb_commands, main, run_kb
from medtrinity.knowledge.index import KnowledgeIndex


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="medtrinity")
    add_kb_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["kb", *argv])


@pytest.fixture()
def kbdir(tmp_path, capsys):
    corpora = tmp_path / "corpora"
    write_medrag(corpora / "medrag")
    write_pubmed(corpora / "pubmed")
    write_obo(corpora / "obo")
    write_jsonl(corpora / "notes")
    write_markdown(corpora / "markdown")
    out = tmp_path / "kb"
    assert run_kb(_parse("build", str(corpora), "--out", str(out))) == 0
    printed = capsys.readouterr().out
    # 6 MedRAG + 3 PubMed + 2 HPO + 2 JSONL + 5 Markdown; skips counted by reason.
    assert printed.startswith(
        "indexed 18 passages from 9 files; skipped 2 malformed term, 1 no PMID, 1 no abstract, 1 no definition, "
        "1 no id, 1 no text, 1 not JSON, 1 not a JSON object, 1 obsolete term into "
    )
    return out


def test_build_then_search_prints_ranked_hits(kbdir, capsys):
    assert len(KnowledgeIndex.load(kbdir)) == 18
    assert run_kb(_parse("search", str(kbdir), "collapsed lung", "-k", "2")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[HP:0002107] Pneumothorax  (score ")
    assert (
        lines[1]
        == '    Accumulation of air in the pleural cavity leading to a "collapsed lung". Synonyms: Collapsed lung.'
    )
    assert len(lines) == 4


def test_search_by_id_and_json_output(kbdir, capsys):
    assert run_kb(_parse("search", str(kbdir), "--id", "PMID:10000002", "--json")) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "id": "PMID:10000002",
        "title": "Hepatic steatosis on ultrasound.",
        "text": "Fatty liver appears brighter than the renal cortex on ultrasound.",
        "score": 0.0,
    }
    with pytest.raises(UserError, match="no passage with id 'PMID:1'"):
        run_kb(_parse("search", str(kbdir), "--id", "PMID:1"))


def test_search_the_bundled_core_and_the_default(capsys):
    assert run_kb(_parse("search", "core", "CXR pneumothorax", "-k", "1")) == 0
    assert capsys.readouterr().out.startswith("[mt-chest-010] Pneumothorax  (score ")
    assert run_kb(_parse("search", "default", "--id", "HP:0002107")) == 0
    assert capsys.readouterr().out.startswith("[HP:0002107] Pneumothorax\n")
    assert run_kb(_parse("search", "default", "--id", "mt-chest-010")) == 0
    assert capsys.readouterr().out.startswith("[mt-chest-010] Pneumothorax\n    A pneumothorax is air")


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="give at least one CORPUS"):
        run_kb(_parse("build", "--out", str(tmp_path / "kb")))
    with pytest.raises(UserError, match="give a query"):
        run_kb(_parse("search", "default"))
    with pytest.raises(UserError, match="not a directory"):
        run_kb(_parse("search", str(tmp_path / "nope"), "liver"))
    with pytest.raises(UserError, match="choose a kb command"):
        run_kb(_parse())
    with pytest.raises(UserError, match="give no CORPUS"):
        run_kb(_parse("build", str(tmp_path), "--default", "--out", str(tmp_path / "kb")))


def test_module_entry_point_builds_and_searches(tmp_path):
    corpus = write_jsonl(tmp_path)
    out = tmp_path / "kb"
    built = subprocess.run(
        [sys.executable, "-m", "medtrinity.knowledge.cli", "build", str(corpus), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    assert "skipped 4 malformed items" in built.stderr  # the counted warning reaches the user
    found = subprocess.run(
        [sys.executable, "-m", "medtrinity.knowledge.cli", "search", str(out), "renal cyst"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0 and found.stdout.startswith("[note-1] Renal cyst  (score ")
    assert main(["search", str(tmp_path / "missing"), "x"]) == 2
