"""A build folder written directly from images: the records `eval leakage` reads (id, source, split, image,
origin), in the build's own schema, without running the pipeline over hundreds of images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from medtrinity.image_codec import encode_png
from medtrinity.records import Origin, Sample, rows_to_table, sample_id, sample_to_row


def write_build(folder: Path, images: list[tuple[str, str | None, str, np.ndarray | bytes]]) -> list[str]:
    """(source, split, file, pixels or encoded bytes) per record; returns the record ids in order."""
    rows, ids = [], []
    for source, split, file, image in images:
        data = image if isinstance(image, bytes) else encode_png(image)
        rid = sample_id(source, file)
        sample = Sample(
            id=rid,
            source=source,
            split=split,
            origin=Origin(file=file),
            modality="CT",
            width=1,
            height=1,
            image_bytes=data,
        )
        rows.append(sample_to_row(sample))
        ids.append(rid)
    (folder / "data").mkdir(parents=True)
    pq.write_table(rows_to_table(rows), folder / "data" / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps({"config": {"sources": []}, "totals": {"seen": len(rows)}}))
    return ids
