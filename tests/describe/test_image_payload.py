"""What image the `openai` describer sends: the stored JPEG bytes as they are, resized only when asked, and
never a change to what is stored."""

from __future__ import annotations

import base64
import io

import numpy as np
import pyarrow.parquet as pq
from fixtures import model_servers
from fixtures.chat_server import ChatServer
from fixtures.image_mask import make_image_mask_dataset
from fixtures.model_servers import nodule_sample
from PIL import Image

from medtrinity.describe.image_payload import fitted_size, image_payload
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build
from medtrinity.pipeline.stages import ReadStage
from medtrinity.sources.base import load_recipe, open_source


def jpeg_dataset(tmp_path, n: int = 3):
    """The toy image+mask dataset with its images saved as JPEG files (as Kvasir-SEG and ISIC ship them)."""
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, n)
    for png in sorted((root / "images").glob("*.png")):
        Image.open(png).save(png.with_suffix(".jpg"), quality=85)
        png.unlink()
    recipe.write_text(recipe.read_text().replace('"images/*.png"', '"images/*.jpg"'))
    return recipe, root


def sent_image(request: dict) -> tuple[str, bytes]:
    url = request["messages"][1]["content"][0]["image_url"]["url"]
    head, data = url.split(",", 1)
    return head, base64.b64decode(data)


def test_fitted_size_keeps_the_aspect_and_leaves_small_images_alone():
    assert fitted_size(2000, 1500, 1024) == (1024, 768)
    assert fitted_size(1500, 2000, 1024) == (768, 1024)
    assert fitted_size(800, 600, 1024) == (800, 600)
    assert fitted_size(2000, 1500, 0) == (2000, 1500)


def test_a_jpeg_read_as_stored_goes_out_as_its_own_bytes_and_is_resized_only_above_the_side(tmp_path):
    recipe, root = jpeg_dataset(tmp_path, 1)
    (item,) = open_source(load_recipe(str(recipe)), str(root)).items()
    read = ReadStage()(item)
    stored = (root / "images" / "case000.jpg").read_bytes()

    payload = image_payload(read, max_side=1024)
    assert (payload.mime, payload.data, payload.width, payload.height) == ("image/jpeg", stored, 96, 96)

    smaller = image_payload(read, max_side=48)
    assert smaller.mime == "image/jpeg" and Image.open(io.BytesIO(smaller.data)).size == (48, 48)
    assert len(smaller.data) < len(stored)

    outlined = image_payload(read, max_side=1024, overlay=True)  # drawn on a copy: lossless, never the file
    assert outlined.mime == "image/png" and outlined.data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(read.pixels, np.asarray(Image.open(root / "images" / "case000.jpg")))


def test_pixels_that_are_not_a_stored_jpeg_go_out_as_png():
    payload = image_payload(nodule_sample(), max_side=30)
    assert payload.mime == "image/png" and (payload.width, payload.height) == (30, 20)
    assert np.asarray(Image.open(io.BytesIO(payload.data))).shape == (20, 30)


def test_a_build_sends_the_resized_jpeg_and_stores_the_original_bytes(tmp_path):
    recipe, root = jpeg_dataset(tmp_path)
    behaviour = model_servers.llama_server()
    with ChatServer(behaviour, models=behaviour.models) as server:
        config = BuildConfig(
            sources=[f"{recipe}:{root}"],
            out=str(tmp_path / "out"),
            describer="openai",
            model="tiny.gguf",
            base_url=server.url,
            max_image_side=64,
            request_timeout=5,
        )
        manifest = run_build(config, show_progress=False)
        build = [r for r in server.requests if r["max_tokens"] != 1]
    assert manifest["totals"]["written"] == 3
    for request in build:
        head, data = sent_image(request)
        assert head == "data:image/jpeg;base64" and Image.open(io.BytesIO(data)).size == (64, 64)
    stored = {r["origin"]["file"]: r["image"]["bytes"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert stored == {f"images/case{i:03d}.jpg": (root / "images" / f"case{i:03d}.jpg").read_bytes() for i in range(3)}
    assert {r["width"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist()} == {96}
