"""The demo build, made once per session, for the card tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory):
    from medtrinity.pipeline.config import BuildConfig
    from medtrinity.pipeline.runner import run_build

    out = tmp_path_factory.mktemp("demo") / "medtrinity-demo"
    run_build(BuildConfig(sources=["demo:."], out=str(out)), show_progress=False)
    return out
