"""The Ray engine runs the same shards as the local one: the same records, counts and quarantine."""

from __future__ import annotations

import pytest

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build

from fixtures.build import read_rows

pytest.importorskip("ray")


def test_ray_engine_writes_the_records_of_the_local_engine(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    (root / "images" / "zz_broken.png").write_bytes(b"")  # one bad input: quarantined on Ray too
    (root / "masks" / "zz_broken.png").write_bytes((root / "masks" / "case000.png").read_bytes())
    source = f"{recipe}:{root}"
    local = run_build(BuildConfig(sources=[source], out=str(tmp_path / "local"), shard_size=4), show_progress=False)
    on_ray = run_build(BuildConfig(sources=[source], out=str(tmp_path / "ray"), shard_size=4, engine="ray", workers=2),
                       show_progress=False)
    assert on_ray["sources"] == local["sources"] == {"toy-ultrasound": {"seen": 13, "written": 12, "quarantined": 1}}
    assert read_rows(tmp_path / "ray") == read_rows(tmp_path / "local")
    assert read_rows(tmp_path / "ray", "quarantine") == read_rows(tmp_path / "local", "quarantine")
