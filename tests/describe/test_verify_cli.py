"""`medtrinity verify DIR`: re-verifies a written build and counts pass / fail / not-verifiable per check and source."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures.build import build_source
from fixtures.kvasir_seg import make_kvasir_seg

from medtrinity.cli import main
from medtrinity.describe.verify_cli import tally

CHECKS = ["modality", "position", "area", "roi_count", "side", "organ"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify-cli")
    _, rows, _ = build_source(f"kvasir-seg:{make_kvasir_seg(root / 'kvasir')}", root / "out")
    return root / "out", len(rows)


def table_rows(output: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(source, check) -> (pass, fail, not-verifiable), read from the printed table."""
    found, source = {}, ""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 5 and cells[1] in CHECKS:
            source = cells[0] or source
            found[(source, cells[1])] = tuple(int(c) for c in cells[2:])
    return found


def test_every_check_of_every_record_is_counted(build, capsys):
    out, written = build
    assert main(["verify", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert rows == {
        **{("kvasir-seg", name): (written, 0, 0) for name in CHECKS},
        **{("all", name): (written, 0, 0) for name in CHECKS},
    }
    assert f"{written} records verified" in printed


def test_a_contradiction_written_into_the_build_is_counted_as_a_fail(build, tmp_path):
    out, written = build
    copy = tmp_path / "copy"
    (copy / "data").mkdir(parents=True)
    table = pq.read_table(next((out / "data").glob("part-*.parquet")))
    descriptions = table.column("description").to_pylist()
    descriptions[0] = "This gastroscopy image of the stomach shows three polyps, together covering 80% of the image."
    table = table.set_column(
        table.schema.get_field_index("description"), "description", pa.array(descriptions, pa.string())
    )
    pq.write_table(table, copy / "data" / "part-00000.parquet")
    verdicts, records = tally(copy)
    assert records[("kvasir-seg", "verified")] == written
    assert {name: verdicts[("kvasir-seg", name, "fail")] for name in CHECKS} == {
        "modality": 0,
        "position": 0,
        "area": 1,
        "roi_count": 1,
        "side": 0,
        "organ": 1,
    }


def test_another_text_column(build, capsys):
    out, written = build
    assert main(["verify", str(out), "--column", "reference_text"]) == 0
    printed = capsys.readouterr().out
    assert table_rows(printed) == {}
    assert f"0 records verified; {written} have no reference_text and were not verified" in printed


def test_a_folder_that_is_not_a_build_is_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"medtrinity: error: {tmp_path} is not a medtrinity build: it has no data/part-*.parquet"]
    assert main(["verify", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "--column", "labels"]) == 2
