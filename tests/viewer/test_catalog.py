"""The catalog follows a build that is still writing: a shard that appears is in the next answer."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from viewer.large_build import expected, make_large_build, png_bytes, record_row

from medtrinity.records import SCHEMA
from medtrinity.viewer.build_folder import BuildFolder
from medtrinity.viewer.catalog import Catalog
from medtrinity.viewer.filters import Filters


def test_new_shards_are_indexed_and_searched(tmp_path):
    build = make_large_build(tmp_path / "build", records=300, shard_size=100)
    catalog = Catalog(BuildFolder.open(build))
    search = Filters({"modality": "CT"}, "marker4")
    before = catalog.count(search)
    assert before == sum(
        1 for i in range(300) if expected(i)["modality"] == "CT" and expected(i)["marker"] == "marker4"
    )
    rows = [record_row(i, png_bytes(8, 50)) for i in range(300, 420)]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), build / "data" / "part-00003.parquet")
    assert catalog.count(Filters()) == 420
    assert catalog.count(search) == sum(
        1 for i in range(420) if expected(i)["modality"] == "CT" and expected(i)["marker"] == "marker4"
    )
    assert catalog.page(Filters(), size=5, after="part-00002:99").records[0]["id"] == "r00300"
    (build / "data" / "part-00000.parquet").unlink()
    assert catalog.count(Filters()) == 320 and catalog.locate("r00000") is None
