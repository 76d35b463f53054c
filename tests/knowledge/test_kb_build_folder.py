"""`kb build --out`: an index is replaced only with --overwrite, other files never, nothing is left half-done."""

from __future__ import annotations

import argparse
import json

import pytest
from fixtures.corpora import write_jsonl

from medtrinity.errors import UserError
from medtrinity.knowledge.cli import add_kb_commands, run_kb
from medtrinity.knowledge.index import META_FILE, KnowledgeIndex


def _build(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="medtrinity")
    add_kb_commands(parser.add_subparsers(dest="command"))
    return run_kb(parser.parse_args(["kb", "build", *argv]))


def _corpus(folder, *passages: tuple[str, str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notes.jsonl"
    path.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in passages))
    return path


@pytest.fixture()
def built(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus")
    out = tmp_path / "kb"
    assert _build(str(corpus), "--out", str(out)) == 0
    return corpus, out


def test_an_existing_index_is_refused_without_overwrite_and_left_as_it_was(built, tmp_path):
    _, out = built
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    other = _corpus(tmp_path / "other", ("x", "Hepatic cyst", "A water-density liver lesion."))
    with pytest.raises(UserError, match=r"already holds a knowledge index; pass --overwrite to replace it"):
        _build(str(other), "--out", str(out))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_overwrite_replaces_the_whole_index_including_a_stale_dense_part(built, tmp_path, capsys):
    _, out = built
    (out / "dense").mkdir()
    (out / "dense" / "dense.json").write_text("{}")  # as an earlier `--dense` build leaves it
    other = _corpus(tmp_path / "other", ("x", "Hepatic cyst", "A water-density liver lesion."))
    assert _build(str(other), "--out", str(out), "--overwrite") == 0
    assert capsys.readouterr().out.startswith(f"indexed 1 passages from 1 files into {out} in ")
    assert not (out / "dense").exists()
    index = KnowledgeIndex.load(out)
    assert len(index) == 1 and index.get("x").title == "Hepatic cyst"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "kb", "other"]  # no staging folder left
    assert out.stat().st_mode & 0o777 == (tmp_path / "other").stat().st_mode & 0o777  # as mkdir makes folders


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_of_other_files_is_never_written_into(tmp_path, overwrite):
    corpus = _corpus(tmp_path / "corpus", ("a", "Renal cyst", "An anechoic renal lesion."))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"holds files that are not a knowledge index; give a new or empty folder"):
        _build(str(corpus), "--out", str(out), *overwrite)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_file_is_not_an_index_folder(tmp_path):
    corpus = _corpus(tmp_path / "corpus", ("a", "Renal cyst", "An anechoic renal lesion."))
    with pytest.raises(UserError, match="is a file; give a folder"):
        _build(str(corpus), "--out", str(corpus))


def test_an_empty_folder_and_an_index_cut_short_can_be_written(tmp_path):
    corpus = _corpus(tmp_path / "corpus", ("a", "Renal cyst", "An anechoic renal lesion."))
    out = tmp_path / "kb"
    out.mkdir()
    assert _build(str(corpus), "--out", str(out)) == 0
    (out / META_FILE).unlink()  # what a save interrupted midway leaves: index files without the marker
    with pytest.raises(UserError, match="pass --overwrite"):
        _build(str(corpus), "--out", str(out))
    assert _build(str(corpus), "--out", str(out), "--overwrite") == 0
    assert KnowledgeIndex.load(out).get("a").title == "Renal cyst"


def test_a_failed_build_leaves_no_folder_and_keeps_the_old_index(built, tmp_path):
    _, out = built
    missing = tmp_path / "no-such-corpus.jsonl"
    target = tmp_path / "new" / "deeper" / "kb"
    with pytest.raises(UserError, match="does not exist"):
        _build(str(missing), "--out", str(target))
    assert not (tmp_path / "new").exists()
    before = len(KnowledgeIndex.load(out))
    with pytest.raises(UserError, match="does not exist"):
        _build(str(missing), "--out", str(out), "--overwrite")
    assert len(KnowledgeIndex.load(out)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "kb"]


def test_a_wrong_dense_model_is_refused_before_anything_is_written(tmp_path):
    corpus = _corpus(tmp_path / "corpus", ("a", "Renal cyst", "An anechoic renal lesion."))
    with pytest.raises(UserError, match="not a local folder nor an installed model package"):
        _build(str(corpus), "--out", str(tmp_path / "kb"), "--dense", str(tmp_path / "no-model"))
    assert not (tmp_path / "kb").exists()
