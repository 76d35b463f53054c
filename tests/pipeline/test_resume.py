"""A build killed with SIGKILL mid-shard, then resumed, yields exactly the records of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq


def medtrinity(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, env=env)


def ids(out: Path) -> list[str]:
    return [i for p in sorted((out / "data").glob("*.parquet")) for i in pq.read_table(p, columns=["id"])["id"].to_pylist()]


def test_sigkill_mid_shard_then_resume_gives_the_uninterrupted_records(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert medtrinity("build", "--source", source, "--out", str(whole), "--shard-size", "3").returncode == 0

    # Killed after 8 items: shards 0 and 1 (items 0–5) are finished, shard 2 dies half done.
    killed = medtrinity("build", "--source", source, "--out", str(crashed), "--shard-size", "3",
                        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "8"})
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (crashed / "_progress").glob("part-*.json")) == ["part-00000.json", "part-00001.json"]
    assert not (crashed / "manifest.json").exists()
    # What a kill during the write of shard 2 would leave: a temp file and a data file without its marker.
    (crashed / "data" / ".part-00002.parquet.tmp-999").write_bytes(b"partial")
    (crashed / "data" / "part-00002.parquet").write_bytes((crashed / "data" / "part-00000.parquet").read_bytes())

    resumed = medtrinity("build", "--source", source, "--out", str(crashed), "--shard-size", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert ids(crashed) == ids(whole)
    assert len(set(ids(crashed))) == 12
    assert not list(crashed.glob("*/.*.tmp-*"))
    for name in ("part-00000.parquet", "part-00003.parquet"):
        assert pq.read_table(crashed / "data" / name).to_pylist() == pq.read_table(whole / "data" / name).to_pylist()


def test_resume_refuses_a_folder_built_with_other_settings(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    assert medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out), "--shard-size", "3").returncode == 0
    again = medtrinity("build", "--source", f"{recipe}:{root}", "--out", str(out), "--shard-size", "4", "--resume")
    assert again.returncode == 2
    assert "other settings, recipes or input files" in again.stderr


def test_resume_refuses_changed_settings_and_changed_input_files(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    out = tmp_path / "out"
    killed = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3",
                        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "4"})
    assert killed.returncode == -signal.SIGKILL
    other_setting = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3", "--resume",
                               "--top-k", "0")
    assert other_setting.returncode == 2 and "other settings" in other_setting.stderr
    (root / "images" / "case000.png").rename(root / "images" / "case000b.png")
    (root / "masks" / "case000.png").rename(root / "masks" / "case000b.png")
    other_files = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3", "--resume")
    assert other_files.returncode == 2 and "input files" in other_files.stderr
