"""Ctrl-C stops a multi-worker build at once, keeps the finished shards, and --resume completes it exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fixtures.image_mask import make_image_mask_dataset
from fixtures.build import build_command

SHARDS, SHARD_SIZE = 4, 300  # 4 shards = 2×workers: all of them are handed to the pool at the start


def two_workers(source: str, out: Path, *extra: str) -> list[str]:
    return build_command(source, out, "--workers", "2", "--shard-size", str(SHARD_SIZE), *extra)


def records(out: Path) -> dict[str, list[tuple]]:
    """Every record by id with its description, and every quarantined one with its reason, in shard order."""

    def rows(folder: str, columns: list[str]) -> list[tuple]:
        return [
            tuple(row.values())
            for path in sorted((out / folder).glob("part-*.parquet"))
            for row in pq.read_table(path, columns=columns).to_pylist()
        ]

    return {"data": rows("data", ["id", "description"]), "quarantine": rows("quarantine", ["id", "stage", "reason"])}


def markers(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "_progress").glob("part-*.json"))


def live_members(pgid: int) -> list[int]:
    """Processes of a group that still run (a dead one that its new parent has not reaped yet does not count)."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def group_ended(pgid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not live_members(pgid)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="Ctrl-C is a signal to the process group on POSIX")
def test_ctrl_c_with_two_workers_exits_within_3_s_and_resume_is_exact(tmp_path):
    root = tmp_path / "images"
    recipe = make_image_mask_dataset(root, SHARDS * SHARD_SIZE, size=64)
    source = f"{recipe}:{root}"
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert subprocess.run(two_workers(source, whole), capture_output=True, env=env).returncode in (0, 1)
    assert markers(whole) == [f"part-{i:05d}.json" for i in range(SHARDS)]

    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the workers too.
    build = subprocess.Popen(
        two_workers(source, interrupted),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not markers(interrupted) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the first finished shard: the workers are busy with the next ones
    assert build.poll() is None, build.communicate()[1]
    os.killpg(build.pid, signal.SIGINT)
    sent = time.monotonic()
    try:
        _, stderr = build.communicate(timeout=10)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
    assert time.monotonic() - sent < 3.0
    assert build.returncode == 130
    assert "Traceback" not in stderr
    assert (
        stderr.strip().splitlines()[-1]
        == "medtrinity: interrupted; finished shards are kept — rerun with --resume to continue"
    )
    # The queued shards were cancelled, not run to the end as before.
    assert 1 <= len(markers(interrupted)) < SHARDS
    assert not (interrupted / "manifest.json").exists()
    assert group_ended(build.pid, within=2.0)  # no worker is left behind

    resumed = subprocess.run(two_workers(source, interrupted, "--resume"), capture_output=True, text=True, env=env)
    assert resumed.returncode in (0, 1), resumed.stderr
    assert records(interrupted) == records(whole)
    assert sum(len(v) for v in records(whole).values()) == SHARDS * SHARD_SIZE
    assert not list(interrupted.rglob(".*.tmp-*"))
