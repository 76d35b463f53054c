"""Settings validated as a whole, before anything is created: the build config's keys and relative paths,
experts' options and weights (`--expert-option`, `experts:`), and the summary's quarantine reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medtrinity.errors import UserError
from medtrinity.pipeline.config import load_config_file
from medtrinity.records import QUARANTINE_SCHEMA
from medtrinity.report_console import quarantine_lines

RECIPE = (
    "name: mine\nlayout: image-mask\nmodality: CT\norgan: liver\noptions:\n  images: 'images/*.png'\n"
    "  masks: 'masks/{stem}.png'\n"
)


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, cwd=cwd)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line.removeprefix("medtrinity: error: ")


def _dataset(folder: Path) -> Path:
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for k in range(2):
        pixels = np.full((24, 24), 60, np.uint8)
        pixels[4 + k : 14 + k, 6:16] = 200
        Image.fromarray(pixels).save(folder / "images" / f"s{k}.png")
        Image.fromarray(np.where(pixels > 100, 255, 0).astype(np.uint8)).save(folder / "masks" / f"s{k}.png")
    return folder


# ---------------------------------------------------------------- the build config
def test_a_config_files_relative_paths_mean_paths_beside_it(tmp_path, monkeypatch):
    project = tmp_path / "project"
    _dataset(project / "data" / "liver")
    (project / "recipes").mkdir()
    (project / "recipes" / "mine.yaml").write_text(RECIPE)
    config = project / "build.yaml"
    config.write_text(
        "sources:\n  - recipes/mine.yaml:data/liver\n  - {recipe: kvasir-seg, path: data/kvasir}\n"
        "out: out\nkb: kb\nexperts: {sam: {checkpoint: weights/sam.pth, prompt: image}}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    loaded = load_config_file("../project/build.yaml")
    here = Path("../project")
    assert [(s.recipe, s.path) for s in loaded.sources] == [
        (str(here / "recipes/mine.yaml"), str(here / "data/liver")),
        ("kvasir-seg", str(here / "data/kvasir")),
    ]
    assert (loaded.out, loaded.kb) == (str(here / "out"), str(here / "kb"))
    assert loaded.experts == {"sam": {"checkpoint": str(here / "weights/sam.pth"), "prompt": "image"}}
    # flags are paths on the command line: relative to the current folder, as everywhere
    assert load_config_file(config, out="flagged").out == "flagged"
    assert load_config_file(config, kb="default").kb == "default"

    config.write_text("sources: [recipes/mine.yaml:data/liver]\nout: out\n")
    result = run("build", str(config), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "manifest.json").is_file() and not (elsewhere / "out").exists()


def test_a_transformers_model_folder_beside_the_config_is_found_and_a_model_name_is_left_alone(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "models" / "llava-med").mkdir(parents=True)
    config = project / "build.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    body = "sources: ['kvasir-seg:data']\nout: out\ndescriber: {describer}\nmodel: {model}\n"
    config.write_text(body.format(describer="transformers", model="models/llava-med"))
    assert load_config_file("../project/build.yaml").model == str(Path("../project") / "models/llava-med")
    config.write_text(body.format(describer="transformers", model="microsoft/llava-med-v1.5-mistral-7b"))
    assert load_config_file(config).model == "microsoft/llava-med-v1.5-mistral-7b"  # no such folder: a name
    config.write_text(body.format(describer="openai", model="models/llava-med"))
    assert load_config_file(config).model == "models/llava-med"  # what a server serves is always a name


def test_a_recipe_files_weights_lie_beside_it(tmp_path, monkeypatch):
    from medtrinity.sources.base import load_recipe

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = recipes / "lesions.yaml"
    recipe.write_text(RECIPE + "expert: sam\nexpert_options: {checkpoint: weights/sam.pth, prompt: image}\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_recipe("recipes/lesions.yaml")
    assert loaded.expert_options == {"checkpoint": str(Path("recipes") / "weights/sam.pth"), "prompt": "image"}
    recipe.write_text(RECIPE + "expert: sam\nexpert_options: {checkpoint: /models/sam.pth}\n")
    assert load_recipe(str(recipe)).expert_options == {"checkpoint": "/models/sam.pth"}


def test_config_mistakes_are_one_line_in_plain_words(tmp_path):
    config = tmp_path / "c.yaml"
    cases = {
        "sources: ['kvasir-seg:/d']\nout: o\nworker: 2\n": "unknown key 'worker' — did you mean 'workers'?",
        "sources: ['kvasir-seg:/d']\nout: o\nworkers: 0\n": "workers must be at least 1 (got 0)",
        "sources: ['kvasir-seg:/d']\nout: o\nresume: true\noverwrite: true\n": "give --resume (continue the build in --out) or --overwrite (replace it), not both",
        "sources: ['kvasir-seg:/d']\nout: o\nexpert_mode: always\n": "expert_mode must be 'fill' or 'add' (got 'always')",
        "sources: ['kvasir-seg:/d']\n": "out is required",
        "sources: ['kvasir-seg:/d']\nout: o\nexperts: [sam]\n": "experts must be a mapping (key: value) (got ['sam'])",
    }
    for body, expected in cases.items():
        config.write_text(body)
        with pytest.raises(UserError) as err:
            load_config_file(config)
        assert str(err.value) == f"config {config}: {expected}"
    assert (
        error_line(run("build", "--source", "kvasir-seg:/d", "--out", "o", "--workers", "0"))
        == "build: workers must be at least 1 (got 0)"
    )


# ---------------------------------------------------------------- experts' options and weights
def test_an_expert_without_weights_refuses_the_command_and_creates_nothing(tmp_path):
    data, out = _dataset(tmp_path / "data"), tmp_path / "out"
    (tmp_path / "mine.yaml").write_text(RECIPE)
    source = ["build", "--source", f"{tmp_path / 'mine.yaml'}:{data}", "--out", str(out)]

    assert error_line(run(*source, "--expert", "sam")) == (
        "expert sam needs its weights: --expert-option checkpoint=PATH, or experts: {sam: {checkpoint: PATH}} "
        "in the build config"
    )
    missing = tmp_path / "absent.pth"
    assert (
        error_line(run(*source, "--expert", "sam", "--expert-option", f"checkpoint={missing}"))
        == f"expert sam: checkpoint {missing} does not exist (weights are never downloaded)"
    )
    assert (
        error_line(run(*source, "--expert", "sam", "--expert-option", "chekpoint=/m.pth"))
        == "--expert-option: unknown option 'chekpoint' — did you mean 'checkpoint'?"
    )
    assert error_line(run(*source, "--expert-option", "checkpoint=/m.pth")).startswith(
        "--expert-option sets an option of the --expert NAME expert"
    )
    assert (
        error_line(run(*source, "--expert", "sam", "--expert-option", "checkpoint"))
        == "--expert-option 'checkpoint' must be KEY=VALUE, e.g. checkpoint=/models/sam.pth"
    )
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(b"not an onnx graph")
    assert error_line(run(*source, "--expert", "onnx", "--expert-option", f"checkpoint={garbage}")).startswith(
        f"expert onnx: cannot load {garbage}"
    )  # the weights are loaded before the folder is touched
    assert not out.exists()


def test_expert_options_in_the_config_are_checked_per_expert(tmp_path):
    data, out = _dataset(tmp_path / "data"), tmp_path / "out"
    (tmp_path / "mine.yaml").write_text(RECIPE)
    config = tmp_path / "build.yaml"
    config.write_text(f"sources: ['mine.yaml:{data}']\nout: out\nexpert: sam\nexperts: {{sam: {{prmpt: image}}}}\n")
    assert error_line(run("build", str(config))) == "experts.sam: unknown option 'prmpt' — did you mean 'prompt'?"
    config.write_text(f"sources: ['mine.yaml:{data}']\nout: out\nexperts: {{cellpse: {{}}}}\n")
    assert error_line(run("build", str(config))) == "experts: unknown expert 'cellpse' — did you mean 'cellpose'?"
    assert not out.exists()


# ---------------------------------------------------------------- the summary
def _quarantine(out: Path, rows: list[tuple[str, str, str]]) -> None:
    (out / "quarantine").mkdir(parents=True)
    table = pa.Table.from_pylist(
        [{"id": f"i{k}", "source": "s", "file": f, "stage": st, "reason": r} for k, (f, st, r) in enumerate(rows)],
        schema=QUARANTINE_SCHEMA,
    )
    pq.write_table(table, out / "quarantine" / "part-00000.parquet")


def test_the_summary_counts_reasons_by_kind_and_names_every_kind_or_how_many_more(tmp_path):
    rows = [
        (f"images/{k}.jpg", "locate", f"mask masks/{k}.jpg is empty: ISIC 2018 images each show a skin lesion")
        for k in range(3)
    ]
    rows += [
        ("images/d.jpg", "read", "images/d.jpg is a directory, not an image file"),
        ("a.png", "locate", "mask m/a.png is 10x12 but the image is 8x8"),
        ("b.png", "locate", "mask m/b.png is 10x12 but the image is 9x9"),
    ]
    _quarantine(tmp_path / "six", rows)
    assert quarantine_lines(tmp_path / "six") == [
        "3 × locate: mask … is empty: ISIC 2018 images each show a skin lesion",
        "2 × locate: mask … is 10x12 but the image is #x#",
        "1 × read: images/d.jpg is a directory, not an image file",
    ]
    many = [(f"f{k}.png", "read", f"reason kind {chr(97 + k)}") for k in range(10)]
    _quarantine(tmp_path / "ten", many)
    lines = quarantine_lines(tmp_path / "ten")
    assert lines[:8] == [f"1 × read: reason kind {chr(97 + k)}" for k in range(8)]
    assert lines[8:] == ["+2 more reason kinds (2 records), in quarantine/"]
