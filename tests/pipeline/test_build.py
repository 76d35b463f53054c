"""A build end to end over a generated image+mask dataset: geometry, schema, quarantine, counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build
from medtrinity.records import HORIZONTAL_WORDS, SCHEMA, VERTICAL_WORDS, row_to_sample, sample_id, sample_to_row
from medtrinity.roi.geometry import rle_area

from fixtures.build import read_rows
from fixtures.image_mask import lesion_box


def build(recipe: Path, root: Path, out: Path, **kw) -> dict:
    config = BuildConfig(sources=[f"{recipe}:{root}"], out=str(out), **kw)
    return run_build(config, show_progress=False)


def test_build_writes_one_record_per_image_with_the_known_geometry(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    manifest = build(recipe, root, tmp_path / "out", shard_size=5)

    assert manifest["sources"] == {"toy-ultrasound": {"seen": 12, "written": 12, "quarantined": 0}}
    assert manifest["shards"]["data"] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["totals"]["written"] == 12
    rows = read_rows(tmp_path / "out")
    assert [r["origin"]["file"] for r in rows] == [f"images/case{i:03d}.png" for i in range(12)]
    for i, row in enumerate(rows):
        assert row["id"] == sample_id("toy-ultrasound", f"images/case{i:03d}.png")
        assert (row["modality"], row["organ"], row["disease"]) == ("Ultrasound", "breast", "breast mass")
        assert len(row["rois"]) == 1
        roi = row["rois"][0]
        x0, y0, x1, y1 = lesion_box(i)
        assert roi["bbox"] == [x0, y0, x1, y1]
        assert rle_area(roi["mask"]) == (x1 - x0) * (y1 - y0)
        assert roi["area_ratio"] == pytest.approx(round(100 * (x1 - x0) * (y1 - y0) / (96 * 96), 1))
        # The bin of the box centre: the number of edges (0.2, 0.4, 0.6, 0.8) at or below it.
        column, row_bin = (sum(c >= edge for edge in (0.2, 0.4, 0.6, 0.8)) for c in ((x0 + x1) / 192, (y0 + y1) / 192))
        assert roi["position"] == {"horizontal": HORIZONTAL_WORDS[column], "vertical": VERTICAL_WORDS[row_bin]}
        assert roi["source"] == "annotation" and roi["label"] == "mass"
        assert all(row["attributes"][k].strip() for k in ("modality", "structures", "roi", "texture", "local_global"))
        assert "hypoechoic" in row["attributes"]["texture"]
        assert row["coarse_caption"] == "Ultrasound image of the breast showing a breast mass."
        assert row["knowledge"] and all(p["id"] for p in row["knowledge"])
        assert all(c["ok"] for c in row["checks"])
        stored = np.asarray(Image.open(__import__("io").BytesIO(row["image"]["bytes"])))
        assert stored.shape == (96, 96)
        np.testing.assert_array_equal(stored, np.asarray(Image.open(root / row["origin"]["file"])))


def test_output_loads_with_hugging_face_datasets_and_decodes_images(toy_dataset, tmp_path):
    datasets = pytest.importorskip("datasets")
    recipe, root = toy_dataset
    build(recipe, root, tmp_path / "out", shard_size=5)
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(tmp_path / "out" / "data" / "*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )  # not the shared cache
    assert len(ds) == 12
    assert type(ds.features["image"]).__name__ == "Image"
    assert ds[0]["image"].size == (96, 96)
    assert ds[3]["rois"][0]["bbox"] == list(lesion_box(3))


def test_bad_inputs_are_quarantined_with_reasons_and_counts_reconcile(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    (root / "images" / "zz_empty.png").write_bytes(b"")
    (root / "masks" / "zz_empty.png").write_bytes((root / "masks" / "case000.png").read_bytes())
    good = (root / "images" / "case001.png").read_bytes()
    (root / "images" / "zz_truncated.png").write_bytes(good[: len(good) // 3])
    (root / "masks" / "zz_truncated.png").write_bytes((root / "masks" / "case001.png").read_bytes())
    (root / "images" / "zz_garbage.png").write_bytes(np.random.default_rng(1).bytes(500))
    (root / "masks" / "zz_garbage.png").write_bytes((root / "masks" / "case001.png").read_bytes())
    (root / "images" / "zz_wrongmask.png").write_bytes(good)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(root / "masks" / "zz_wrongmask.png")
    (root / "images" / "zz_nomask.png").write_bytes(good)

    manifest = build(recipe, root, tmp_path / "out", shard_size=4)

    assert manifest["sources"]["toy-ultrasound"] == {"seen": 17, "written": 12, "quarantined": 5}
    bad = {r["file"]: r for r in read_rows(tmp_path / "out", "quarantine")}
    assert set(bad) == {f"images/zz_{n}.png" for n in ("empty", "truncated", "garbage", "wrongmask", "nomask")}
    assert bad["images/zz_empty.png"]["stage"] == "read" and "empty" in bad["images/zz_empty.png"]["reason"]
    assert bad["images/zz_truncated.png"]["stage"] == "read"
    assert bad["images/zz_garbage.png"]["stage"] == "read"
    assert bad["images/zz_wrongmask.png"]["stage"] == "locate"
    assert "50x40" in bad["images/zz_wrongmask.png"]["reason"] and "96x96" in bad["images/zz_wrongmask.png"]["reason"]
    assert bad["images/zz_nomask.png"]["reason"] == "mask file masks/zz_nomask.png is missing"
    assert all(r["id"] == sample_id("toy-ultrasound", r["file"]) for r in bad.values())
    assert not any("unexpected" in r["reason"] for r in bad.values())


def test_schema_round_trip_through_parquet(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    build(recipe, root, tmp_path / "out", limit=2)
    table = pq.read_table(tmp_path / "out" / "data" / "part-00000.parquet")
    assert table.schema.remove_metadata() == SCHEMA.remove_metadata()
    for row in table.to_pylist():
        again = sample_to_row(row_to_sample(row))
        assert again == row


def test_a_process_pool_writes_the_same_records_as_one_process(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    build(recipe, root, tmp_path / "one", shard_size=3)
    build(recipe, root, tmp_path / "pool", shard_size=3, workers=2)
    one, pool = read_rows(tmp_path / "one"), read_rows(tmp_path / "pool")
    assert [r["id"] for r in one] == [r["id"] for r in pool]
    assert [r["description"] for r in one] == [r["description"] for r in pool]


def test_a_jpeg_read_as_stored_keeps_its_own_bytes_and_other_images_become_png(tmp_path):
    root = tmp_path / "polyps"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(3)
    photo = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(root / "images" / "a.jpg", quality=90)
    Image.fromarray(photo[..., 0]).save(root / "images" / "b.png")
    for name in ("a", "b"):
        mask = np.zeros((40, 48), np.uint8)
        mask[10:20, 10:30] = 255
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\nlayout: image-mask\nmodality: Endoscopy\noptions: {images: 'images/*', masks: 'masks/{stem}.png'}\n"
    )
    build(recipe, root, tmp_path / "out")
    by_file = {r["origin"]["file"]: r for r in read_rows(tmp_path / "out")}
    jpeg, png = by_file["images/a.jpg"]["image"], by_file["images/b.png"]["image"]
    assert jpeg["bytes"] == (root / "images" / "a.jpg").read_bytes() and jpeg["path"].endswith(".jpg")
    assert png["bytes"][:8] == b"\x89PNG\r\n\x1a\n" and png["path"].endswith(".png")


def test_a_batch_stage_that_raises_quarantines_its_batch_and_the_run_goes_on(toy_dataset, tmp_path):
    from medtrinity.pipeline.shard import process_batch
    from medtrinity.sources.base import load_recipe, open_source

    recipe, root = toy_dataset
    items = list(open_source(load_recipe(str(recipe)), root).items())[:3]

    class BrokenBatchStage:
        name = "describe"

        def process_batch(self, records):
            raise AttributeError("'int' object has no attribute 'strip'")

    rows, bad = process_batch(items, [BrokenBatchStage()], tmp_path / "errors.log")
    assert rows == [] and [b["stage"] for b in bad] == ["describe"] * 3
    assert bad[0]["reason"] == "unexpected AttributeError: 'int' object has no attribute 'strip'"
    assert "AttributeError" in (tmp_path / "errors.log").read_text()
