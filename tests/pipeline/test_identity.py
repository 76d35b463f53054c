"""The resume identity holds what shapes the records of this build, and nothing that only says how it runs."""

from __future__ import annotations

import pytest

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.identity import identity_changes, run_identity
from medtrinity.pipeline.runner import listing_fingerprint, open_sources


def identity(toy_dataset, tmp_path, **settings) -> dict:
    recipe, root = toy_dataset
    config = BuildConfig(sources=[f"{recipe}:{root}"], out=str(tmp_path / "out"), **settings)
    layouts = open_sources(config)
    return run_identity(config, layouts, listing_fingerprint(layouts, config.limit))


@pytest.mark.parametrize("describer", ["grounded", "transformers"])
def test_openai_request_settings_are_no_part_of_another_describers_identity(toy_dataset, tmp_path, describer):
    model = {"model": "/models/llava-med"} if describer == "transformers" else {}
    plain = identity(toy_dataset, tmp_path, describer=describer, **model)
    other = identity(toy_dataset, tmp_path, describer=describer, structured_output="none", max_image_side=512, **model)
    assert "structured_output" not in plain and "max_image_side" not in plain
    assert identity_changes(plain, other) == []


def test_openai_request_settings_shape_an_openai_build(toy_dataset, tmp_path):
    server = {"describer": "openai", "model": "Qwen2-VL-7B", "base_url": "http://127.0.0.1:8000/v1"}
    plain = identity(toy_dataset, tmp_path, **server)
    other = identity(toy_dataset, tmp_path, **server, structured_output="none", max_image_side=512)
    assert identity_changes(plain, other) == ["--max-image-side 1024 -> 512", "--structured-output auto -> none"]


def test_retry_transient_and_how_fast_a_build_runs_change_nothing(toy_dataset, tmp_path):
    plain = identity(toy_dataset, tmp_path)
    other = identity(toy_dataset, tmp_path, resume=True, retry_transient=True, workers=4, concurrency=32)
    assert "retry_transient" not in other
    assert identity_changes(plain, other) == []


def test_retry_transient_needs_resume(tmp_path):
    with pytest.raises(
        ValueError, match="--retry-transient retries the quarantined records of an earlier build: give it with --resume"
    ):
        BuildConfig(sources=["demo:."], out=str(tmp_path / "out"), retry_transient=True)
