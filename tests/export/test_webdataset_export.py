"""`export webdataset`: the shards read back with `webdataset.WebDataset(urls).decode("pil")`."""

from __future__ import annotations

import pytest
from fixtures.exporting import export

from medtrinity.export.selection import split_of

webdataset = pytest.importorskip("webdataset")


def test_webdataset_iterates_every_sample_and_decodes_every_image(mini_build, mini_rows, tmp_path):
    summary = export("webdataset", mini_build, tmp_path / "wds", shard_size=10)
    expected = {row["id"]: row for row in mini_rows if split_of(row["split"]) != "test"}
    train = sorted((tmp_path / "wds").glob("train-*.tar"))
    assert len(train) == -(-summary.written["train"] // 10)  # shards of ten samples
    assert summary.details["shards"]["train"] == f"train-{{000000..{len(train) - 1:06d}}}.tar"
    urls = [str(p) for p in sorted((tmp_path / "wds").glob("*.tar"))]
    seen = {}
    for sample in webdataset.WebDataset(urls, shardshuffle=False).decode("pil"):
        image = sample.get("png", sample.get("jpg"))
        row = expected[sample["__key__"]]
        assert image.size == (row["width"], row["height"])
        assert sample["txt"] == row["description"]
        assert sample["json"] == {k: v for k, v in row.items() if k != "image"}  # every column, masks as RLE
        seen[sample["__key__"]] = image
    assert set(seen) == set(expected)


def test_shard_pattern_expands_to_the_shards(mini_build, tmp_path):
    summary = export("webdataset", mini_build, tmp_path / "wds", shard_size=1000)
    assert summary.details["shards"] == {"train": "train-000000.tar", "val": "val-000000.tar"}
    dataset = webdataset.WebDataset(str(tmp_path / "wds" / summary.details["shards"]["val"]), shardshuffle=False)
    assert len(list(dataset)) == summary.written["val"]
