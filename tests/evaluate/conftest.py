"""One real build of the demo and every recipe miniature, shared by the alignment tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.build import read_rows
from fixtures.miniatures import build_miniatures


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory) -> Path:
    return build_miniatures(tmp_path_factory.mktemp("eval-miniatures"))


@pytest.fixture(scope="session")
def mini_rows(mini_build) -> list[dict]:
    return read_rows(mini_build)
