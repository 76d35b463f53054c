"""Ground truth first: experts run only where the source gives no region, unless asked to add to it."""

from __future__ import annotations

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build

from fixtures.build import read_rows


def test_fill_mode_keeps_only_the_annotation(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    run_build(
        BuildConfig(sources=[f"{recipe}:{root}"], out=str(tmp_path / "o"), expert="focal-region", limit=3),
        show_progress=False,
    )
    rows = read_rows(tmp_path / "o")
    assert len(rows) == 3
    assert [[roi["source"] for roi in r["rois"]] for r in rows] == [["annotation"]] * 3


def test_add_mode_appends_the_experts_regions(toy_dataset, tmp_path):
    recipe, root = toy_dataset
    config = BuildConfig(
        sources=[f"{recipe}:{root}"], out=str(tmp_path / "o"), expert="foreground", expert_mode="add", limit=3
    )
    run_build(config, show_progress=False)
    rows = read_rows(tmp_path / "o")
    assert len(rows) == 3
    for row in rows:
        sources = [roi["source"] for roi in row["rois"]]
        assert sources[0] == "annotation"
        assert any(s.startswith("expert:foreground@") for s in sources[1:])


def test_an_image_without_region_gets_the_experts_and_none_turns_it_off(tmp_path):
    import numpy as np
    from PIL import Image

    root = tmp_path / "crc"
    (root / "TUM").mkdir(parents=True)
    tissue = np.full((64, 64, 3), 245, np.uint8)
    tissue[16:48, 12:52] = (180, 90, 160)  # H&E-like pink tissue on white glass
    Image.fromarray(tissue).save(root / "TUM" / "TUM-1.png")
    recipe = tmp_path / "crc.yaml"
    recipe.write_text("name: crc\nlayout: class-folder\nmodality: Histopathology\norgan: colon\n")
    run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(tmp_path / "auto")), show_progress=False)
    [row] = read_rows(tmp_path / "auto")
    tissue_rois = [roi for roi in row["rois"] if roi["label"] == "tissue"]
    assert tissue_rois and tissue_rois[0]["source"].startswith("expert:tissue@")
    x0, y0, x1, y1 = tissue_rois[0]["bbox"]  # the expert smooths: within a pixel or so of the drawn tissue
    inter = max(0, min(x1, 52) - max(x0, 12)) * max(0, min(y1, 48) - max(y0, 16))
    assert inter / ((x1 - x0) * (y1 - y0) + 40 * 32 - inter) >= 0.85
    run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(tmp_path / "none"), expert="none"), show_progress=False)
    assert read_rows(tmp_path / "none")[0]["rois"] == []
