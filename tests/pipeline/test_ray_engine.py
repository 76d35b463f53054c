"""The Ray engine runs the same shards as the local one: the same records, counts and quarantine; it refuses an
unreachable cluster before the output folder exists, and leaves no process or temporary file behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from medtrinity.pipeline import runner
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.ray_watchdog import session_processes
from medtrinity.pipeline.runner import run_build

from fixtures.build import build_command, read_rows
from fixtures.image_mask import make_image_mask_dataset

pytest.importorskip("ray")


def test_ray_engine_writes_the_records_of_the_local_engine(toy_dataset, tmp_path, monkeypatch):
    recipe, root = toy_dataset
    (root / "images" / "zz_broken.png").write_bytes(b"")  # one bad input: quarantined on Ray too
    (root / "masks" / "zz_broken.png").write_bytes((root / "masks" / "case000.png").read_bytes())
    source = f"{recipe}:{root}"
    local = run_build(BuildConfig(sources=[source], out=str(tmp_path / "local"), shard_size=4), show_progress=False)
    engines, make_engine = [], runner._engine

    def recording_engine(config):
        engines.append(make_engine(config))
        return engines[-1]

    monkeypatch.setattr(runner, "_engine", recording_engine)
    on_ray = run_build(
        BuildConfig(sources=[source], out=str(tmp_path / "ray"), shard_size=4, engine="ray", workers=2),
        show_progress=False,
    )
    assert on_ray["sources"] == local["sources"] == {"toy-ultrasound": {"seen": 13, "written": 12, "quarantined": 1}}
    assert read_rows(tmp_path / "ray") == read_rows(tmp_path / "local")
    assert read_rows(tmp_path / "ray", "quarantine") == read_rows(tmp_path / "local", "quarantine")
    # Ray's session lived in a temporary folder of its own, gone with its processes once the build ended.
    temp_dir = engines[0].temp_dir
    assert temp_dir and Path(temp_dir).name.startswith("medtrinity-ray-")
    assert not Path(temp_dir).exists()
    assert session_processes(temp_dir, spare={os.getpid()}) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ray_address_is_one_line_within_30_s_and_creates_nothing(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    out = tmp_path / "out"
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        build_command(f"{recipe}:{root}", out, "--engine", "ray", "--ray-address", address),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert result.stderr == (
        f"medtrinity: error: cannot reach the Ray cluster at {address} (connection refused); "
        "start it with `ray start --head` or drop --ray-address to run Ray on this machine\n"
    )
    assert not out.exists()


def watchdog_of(pid: int) -> tuple[int, str] | None:
    """The Ray watchdog a build started, and the session's temp folder it guards."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and "medtrinity.pipeline.ray_watchdog" in argv:
            return int(entry.name), argv[argv.index("medtrinity.pipeline.ray_watchdog") + 1]
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the session's processes through /proc")
def test_a_killed_ray_build_leaves_no_ray_process_or_temp_folder(tmp_path):
    root = tmp_path / "images"
    recipe = make_image_mask_dataset(root, 60, size=64)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    build = subprocess.Popen(
        build_command(f"{recipe}:{root}", out, "--engine", "ray", "--workers", "2", "--shard-size", "5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "_progress" / "run.json").exists() and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the folder is prepared once Ray runs
        found = watchdog_of(build.pid)
        assert found is not None and build.poll() is None, build.stderr.read() if build.poll() is not None else ""
        watchdog, temp_dir = found
        assert session_processes(temp_dir, spare={build.pid, watchdog})  # Ray's own processes, to be ended
        build.send_signal(signal.SIGKILL)  # the main process only, as `kill -9 PID` does
        build.wait(timeout=10)
    finally:
        if build.poll() is None:
            build.kill()
    deadline = time.monotonic() + 20
    while (Path(temp_dir).exists() or session_processes(temp_dir, spare=set())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(temp_dir, spare=set()) == []
    assert not Path(temp_dir).exists()
