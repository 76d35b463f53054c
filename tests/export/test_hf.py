"""`export hf`: `datasets.load_dataset(OUT)` loads the folder, split by split, images decoded."""

from __future__ import annotations

import pytest
import yaml
from fixtures.exporting import export

from medtrinity.export.selection import split_of

datasets = pytest.importorskip("datasets")


def test_load_dataset_reads_every_split_with_images_decoded(mini_build, mini_rows, tmp_path):
    summary = export("hf", mini_build, tmp_path / "hf", include_test=True, shard_size=40)
    # its own cache: the shared one may hold an earlier build of a folder at the same path
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "hf-cache"))
    names = {"train": "train", "val": "validation", "test": "test"}
    expected = {names[split_of(r["split"])]: 0 for r in mini_rows}
    for row in mini_rows:
        expected[names[split_of(row["split"])]] += 1
    assert {split: len(loaded[split]) for split in loaded} == expected == summary.written
    assert isinstance(loaded["train"].features["image"], datasets.Image)
    by_id = {row["id"]: row for row in mini_rows}
    for split in loaded:
        for record in loaded[split]:
            row = by_id[record["id"]]
            assert record["image"].size == (row["width"], row["height"])
            assert record["description"] == row["description"] and record["rois"] == row["rois"]
    assert len(list((tmp_path / "hf" / "data").glob("train-*.parquet"))) == -(-expected["train"] // 40)


def test_card_declares_configs_splits_features_and_licenses(mini_build, mini_rows, tmp_path):
    summary = export("hf", mini_build, tmp_path / "hf")
    text = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "validation", "path": "data/validation-*.parquet"},
            ],
        }
    ]
    assert {s["name"]: s["num_examples"] for s in front["dataset_info"]["splits"]} == summary.written
    assert {"name": "image", "dtype": "image"} in front["dataset_info"]["features"]
    assert "kvasir-seg: free for research and educational use" in front["license_details"]
    assert "| busi | 4 | not stated by the authors" in text  # the recipe's own words, never a guessed licence
