"""Model-backed stages on Ray: the `transformers` describer loads its model once per model actor, however many
shards the actor serves, the shard tasks load none, and the records are those of the local engine. A Ray
build killed half-way resumes to exactly the records of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from fixtures.build import build_command, read_rows
from fixtures.image_mask import make_image_mask_dataset

from medtrinity.pipeline import runner
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build

pytest.importorskip("ray")


def test_a_transformers_describer_on_ray_loads_once_per_actor_and_writes_the_local_records(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from fixtures.tiny_llava import save_tiny_llava

    model = save_tiny_llava(tmp_path / "tiny-llava", scripted=True)
    root = tmp_path / "images"
    recipe = make_image_mask_dataset(root, 8, size=64)
    settings = {
        "sources": [f"{recipe}:{root}"],
        "describer": "transformers",
        "model": str(model),
        "shard_size": 2,
        "on_contradiction": "keep",
    }
    local = run_build(BuildConfig(out=str(tmp_path / "local"), **settings), show_progress=False)
    engines, make_engine = [], runner._engine

    def recording_engine(config):
        engines.append(make_engine(config))
        return engines[-1]

    monkeypatch.setattr(runner, "_engine", recording_engine)
    on_ray = run_build(BuildConfig(out=str(tmp_path / "ray"), engine="ray", workers=2, **settings), show_progress=False)
    assert on_ray["sources"] == local["sources"] == {"toy-ultrasound": {"seen": 8, "written": 8, "quarantined": 0}}
    rows = read_rows(tmp_path / "ray")
    assert rows == read_rows(tmp_path / "local")
    assert {row["describer"].split()[0] for row in rows} == {"transformers:tiny-llava"}
    engine = engines[0]
    # two actors (one per worker), four shards between them: each actor loaded the model exactly once
    assert len(engine.model_actors) == 2
    assert [actor["model_loads"] for actor in engine.model_actors] == [1, 1]
    assert sorted(s for actor in engine.model_actors for s in actor["shards"]) == [0, 1, 2, 3]
    assert all(len(actor["shards"]) == 2 for actor in engine.model_actors)  # shard k goes to actor k mod 2
    assert len({actor["pid"] for actor in engine.model_actors}) == 2
    assert engine.task_model_loads == 0  # the shard tasks never loaded it


def test_a_ray_build_killed_half_way_resumes_to_the_records_of_an_uninterrupted_build(tmp_path):
    root = tmp_path / "images"
    recipe = make_image_mask_dataset(root, 40, size=48)
    source = f"{recipe}:{root}"
    run_build(BuildConfig(sources=[source], out=str(tmp_path / "whole"), shard_size=4), show_progress=False)
    out = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = build_command(source, out, "--engine", "ray", "--workers", "2", "--shard-size", "4")
    build = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180
        progress = out / "_progress"
        while build.poll() is None and time.monotonic() < deadline:
            if len(list(progress.glob("part-*.json"))) >= 2:  # some shards finished, the others not yet
                break
            time.sleep(0.01)
        assert build.poll() is None, "the build ended before it could be killed: " + build.stderr.read()
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=10)
    finally:
        if build.poll() is None:
            build.kill()
    finished = len(list((out / "_progress").glob("part-*.json")))
    assert 2 <= finished < 10
    resumed = subprocess.run([*command, "--resume"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_rows(out) == read_rows(tmp_path / "whole")
    assert read_rows(out, "quarantine") == read_rows(tmp_path / "whole", "quarantine")
