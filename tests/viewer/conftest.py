"""Builds the viewer tests look at (made once per session) and a server over one of them."""

from __future__ import annotations

import os

import pytest
from fixtures.miniatures import build_miniatures
from viewer.http_client import serving
from viewer.large_build import make_large_build

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def large_build(tmp_path_factory):
    return make_large_build(tmp_path_factory.mktemp("large") / "build")


@pytest.fixture(scope="session")
def miniature_build(tmp_path_factory):
    """The demo and every recipe miniature: real records, and one quarantined VQA-RAD input."""
    return build_miniatures(tmp_path_factory.mktemp("miniatures"))


@pytest.fixture(scope="session")
def large_url(large_build):
    with serving(large_build) as url:
        yield url


@pytest.fixture(scope="session")
def miniature_url(miniature_build):
    with serving(miniature_build) as url:
        yield url
