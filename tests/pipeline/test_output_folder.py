"""The output folder is never silently replaced or mixed with other files, and a refused command creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medtrinity.pipeline.identity import identity_changes


def medtrinity(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, env=env)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_refuses_a_folder_of_other_files_and_leaves_it_as_it_was(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8 not ours")
    (out / "notes").mkdir()
    (out / "notes" / "todo.txt").write_text("keep")
    before = snapshot(out)
    for extra in ((), ("--overwrite",), ("--resume",)):
        refused = medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out), *extra)
        assert refused.returncode == 2
        assert refused.stderr == (
            f"medtrinity: error: --out {out} is not empty and holds no build (holiday.jpg, "
            "notes); give a new or empty folder\n"
        )
        assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["holiday.jpg", "notes"]


def test_build_writes_into_an_empty_folder_and_replaces_only_its_own_build(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "empty"
    out.mkdir()
    assert medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out)).returncode == 0
    (out / "README.txt").write_text("my notes on this build")  # a build folder may hold the user's own notes
    again = medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr == (
        f"medtrinity: error: {out} already holds a build: pass --resume to continue it or --overwrite to replace it\n"
    )
    assert medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out), "--overwrite").returncode == 0
    assert (out / "README.txt").read_text() == "my notes on this build"


@pytest.mark.parametrize(
    "mistake, message",
    [
        (["--resume", "--overwrite"], "not both"),
        (["--shard-size", "0"], "shard_size"),
        (["--expert", "nosuchexpert"], "unknown expert 'nosuchexpert'"),
        (["--describer", "openai"], "needs --model"),
    ],
)
def test_a_refused_command_creates_no_folder(toy_dataset, tmp_path, mistake, message):
    recipe, root = toy_dataset
    out = tmp_path / "new" / "out"
    refused = medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out), *mistake)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and message in refused.stderr
    assert not (tmp_path / "new").exists()


def test_identity_changes_name_each_setting_old_and_new():
    recipe = {"name": "toy", "organ": "breast", "expert": None, "expert_mode": "fill"}
    saved = {
        "shard_size": 1000,
        "top_k": 3,
        "kb": "default",
        "sources": [{"recipe": "toy", "path": "/d/toy"}],
        "recipes": [recipe],
        "listing": {"count": 30, "digest": "a"},
    }
    assert identity_changes(saved, saved) == []
    new = {
        **saved,
        "top_k": 0,
        "kb": "/kb/mine",
        "recipes": [{**recipe, "expert": {"CT": "ct-body"}}],
        "listing": {"count": 30, "digest": "b"},
    }
    assert identity_changes(saved, new) == [
        "--kb default -> /kb/mine",
        "--top-k 3 -> 0",
        'recipe toy: expert (none) -> {"CT": "ct-body"}',
        "input files: 30 -> 30 items listed (same count, other files)",
    ]
    other = {**saved, "sources": [{"recipe": "busi", "path": "/d/busi"}], "recipes": [{**recipe, "name": "busi"}]}
    assert identity_changes(saved, other) == [
        "--source toy:/d/toy -> busi:/d/busi",
        "source toy -> (none)",
        "source (none) -> busi",
    ]
