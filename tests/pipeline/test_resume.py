"""A build killed with SIGKILL mid-shard, then resumed, yields exactly the records of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from fixtures.build import build_command


def medtrinity(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, env=env)


def ids(out: Path) -> list[str]:
    return [
        i for p in sorted((out / "data").glob("*.parquet")) for i in pq.read_table(p, columns=["id"])["id"].to_pylist()
    ]


def test_sigkill_mid_shard_then_resume_gives_the_uninterrupted_records(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert medtrinity("build", "--source", source, "--out", str(whole), "--shard-size", "3").returncode == 0

    # Killed after 8 items: shards 0 and 1 (items 0–5) are finished, shard 2 dies half done.
    killed = medtrinity(
        "build",
        "--source",
        source,
        "--out",
        str(crashed),
        "--shard-size",
        "3",
        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "8"},
    )
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
    assert again.stderr == (
        f"medtrinity: error: {out} was built with other settings (--shard-size 3 -> 4); "
        "resume with the same ones, or pass --overwrite to start again\n"
    )


def test_resume_refuses_changed_settings_and_changed_input_files(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    out = tmp_path / "out"
    killed = medtrinity(
        "build",
        "--source",
        source,
        "--out",
        str(out),
        "--shard-size",
        "3",
        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "4"},
    )
    assert killed.returncode == -signal.SIGKILL
    other_setting = medtrinity(
        "build",
        "--source",
        source,
        "--out",
        str(out),
        "--shard-size",
        "3",
        "--resume",
        "--top-k",
        "0",
        "--expert-mode",
        "add",
    )
    assert other_setting.returncode == 2
    assert "(--top-k 3 -> 0; recipe toy-ultrasound: expert_mode fill -> add)" in other_setting.stderr
    (root / "images" / "case000.png").rename(root / "images" / "case000b.png")
    (root / "masks" / "case000.png").rename(root / "masks" / "case000b.png")
    other_files = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3", "--resume")
    assert other_files.returncode == 2
    assert "(input files: 12 -> 12 items listed (same count, other files))" in other_files.stderr
    (root / "images" / "case001.png").unlink()
    fewer = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3", "--resume")
    assert "(input files: 12 -> 11 items listed)" in fewer.stderr


def test_spelling_out_defaults_resumes_the_same_build(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert medtrinity("build", "--source", source, "--out", str(whole), "--shard-size", "3").returncode == 0
    killed = medtrinity(
        "build",
        "--source",
        source,
        "--out",
        str(out),
        "--shard-size",
        "3",
        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "4"},
    )
    assert killed.returncode == -signal.SIGKILL
    # The defaults written out, and the recipe and dataset named by paths relative to another folder.
    (tmp_path / "elsewhere").mkdir()
    resumed = subprocess.run(
        build_command(
            f"../{recipe.name}:../{root.name}/",
            out,
            "--shard-size",
            "3",
            "--resume",
            "--expert-mode",
            "fill",
            "--kb",
            "default",
            "--top-k",
            "3",
            "--describer",
            "grounded",
            "--on-contradiction",
            "repair",
            "--max-tokens",
            "1024",
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path / "elsewhere",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert ids(out) == ids(whole)


def test_resume_removes_temp_files_left_at_every_level(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    source = f"{recipe}:{root}"
    out = tmp_path / "out"
    killed = medtrinity(
        "build",
        "--source",
        source,
        "--out",
        str(out),
        "--shard-size",
        "3",
        env_extra={"MEDTRINITY_FAULT_KILL_AFTER_ITEMS": "4"},
    )
    assert killed.returncode == -signal.SIGKILL
    # What kills at other instants leave: a half-written manifest in the root, a marker, a shard.
    planted = [
        out / ".manifest.json.tmp-4242",
        out / "_progress" / ".part-00001.json.tmp-4242",
        out / "quarantine" / ".part-00001.parquet.tmp-4242",
    ]
    for path in planted:
        path.write_bytes(b"partial")
    keep = out / "data" / "notes.tmp-1"  # not a name this program writes: left alone
    keep.write_text("mine")
    resumed = medtrinity("build", "--source", source, "--out", str(out), "--shard-size", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [p for p in planted if p.exists()] == []
    assert keep.read_text() == "mine"
    assert len(ids(out)) == 12
