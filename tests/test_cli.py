"""A bad command fails at once with one clear line, exit status 2, and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medtrinity: error: "), result.stderr
    for text in expected:
        assert text in lines[0]


def test_missing_source_folder(tmp_path):
    result = run("build", "--source", f"demo.yaml:{tmp_path}/nope", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "recipe file not found: demo.yaml")
    result = run("build", "--source", f"{_recipe(tmp_path)}:{tmp_path}/nope", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "source folder not found", "nope")


def test_unknown_recipe(tmp_path):
    assert_one_line_error(
        run("build", "--source", f"kvasir-segg:{tmp_path}", "--out", str(tmp_path / "o")),
        "unknown recipe 'kvasir-segg'",
        "medtrinity recipes",
    )


def test_source_without_path_and_missing_out(tmp_path):
    assert_one_line_error(run("build", "--source", "demo", "--out", str(tmp_path)), "RECIPE:PATH")
    assert_one_line_error(run("build", "--source", f"{_recipe(tmp_path)}:{tmp_path}"), "--out")


def test_folder_that_is_not_the_layout(tmp_path):
    (tmp_path / "data").mkdir()
    result = run("build", "--source", f"{_recipe(tmp_path)}:{tmp_path / 'data'}", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "no file matching 'images/*.png'")


def test_malformed_config_and_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [x\n")
    assert_one_line_error(run("build", str(bad)), "not valid UTF-8 YAML")
    unknown_key = tmp_path / "k.yaml"
    unknown_key.write_text(f"sources: ['{_recipe(tmp_path)}:{tmp_path}']\nout: {tmp_path}/o\nshardsize: 3\n")
    assert_one_line_error(run("build", str(unknown_key)), "shardsize")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nlayout: image-mask\nmodality: Xray\n")
    assert_one_line_error(run("build", "--source", f"{recipe}:{tmp_path}", "--out", str(tmp_path / "o")), "Xray")


def test_unknown_option_is_one_line():
    assert_one_line_error(run("build", "--sauce", "x"), "--sauce")


@pytest.mark.parametrize("command", [["--help"], ["build", "--help"], ["demo", "--help"], ["recipes"]])
def test_help_and_recipes(command):
    result = run(*command)
    assert result.returncode == 0 and result.stdout


def _recipe(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nlayout: image-mask\nmodality: CT\noptions:\n  images: 'images/*.png'\n  masks: 'masks/{stem}.png'\n"
    )
    return path


def test_unknown_expert_fails_before_the_output_folder_is_made(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "images" / "a.png")
    result = run(
        "build", "--source", f"{_recipe(tmp_path)}:{tmp_path}", "--out", str(tmp_path / "o"), "--expert", "nosuchexpert"
    )
    assert_one_line_error(result, "unknown expert 'nosuchexpert'")
    assert not (tmp_path / "o").exists()


def test_a_bad_knowledge_base_does_not_leave_a_half_made_output_folder(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "images" / "a.png")
    Image.new("L", (16, 16)).save(tmp_path / "masks" / "a.png")
    source = f"{_recipe(tmp_path)}:{tmp_path}"
    (tmp_path / "notakb").write_text("x")
    assert_one_line_error(
        run("build", "--source", source, "--out", str(tmp_path / "o"), "--kb", str(tmp_path / "notakb")),
        "not a directory",
    )
    assert run("build", "--source", source, "--out", str(tmp_path / "o")).returncode == 0


def test_output_that_is_a_file_and_bad_demo_workers(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(run("demo", "--out", str(tmp_path / "afile")), "is a file")
    assert_one_line_error(run("demo", "--out", str(tmp_path / "d"), "--workers", "0"), "workers")


def test_recipe_option_mistakes_and_undecodable_files(tmp_path):
    (tmp_path / "images").mkdir()
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: t\nlayout: image-mask\noptions:\n  images: 'images/*.png'\n  masks: 'masks/{stm}.png'\n")
    assert_one_line_error(
        run("build", "--source", f"{typo}:{tmp_path}", "--out", str(tmp_path / "o")), "unknown placeholder", "{stem}"
    )
    absolute = tmp_path / "abs.yaml"
    absolute.write_text("name: a\nlayout: image-mask\noptions:\n  images: '/etc/*'\n  masks: 'm/{stem}.png'\n")
    assert_one_line_error(
        run("build", "--source", f"{absolute}:{tmp_path}", "--out", str(tmp_path / "o")),
        "relative to the source folder",
    )
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert_one_line_error(run("build", str(binary)), "not valid UTF-8 YAML")
    assert_one_line_error(
        run("build", "--source", f"{binary}:{tmp_path}", "--out", str(tmp_path / "o")), "not valid UTF-8 YAML"
    )


def test_demo_refuses_an_existing_build_without_overwrite(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "images" / "a.png")
    Image.new("L", (16, 16)).save(tmp_path / "masks" / "a.png")
    out = tmp_path / "o"
    assert run("build", "--source", f"{_recipe(tmp_path)}:{tmp_path}", "--out", str(out)).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert_one_line_error(
        run("demo", "--out", str(out)),
        f"{out} already holds a build; pass --overwrite to replace it, or give another --out",
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert "--overwrite" in run("demo", "--help").stdout
