"""A generated build of many records (tiny images) with known facet values, for paging and filter tests.

Record i (ids in build order `r00000…`): modality MODALITIES[i % 5]; organ ORGANS[i % 3] (None every third);
split "train"/"test" by i % 4; one ROI from the source's annotation when i is even, from an expert
when odd, none when i % 10 == 9; the "side" check fails when i % 7 == 0; the description holds the word
`marker{i % 11}`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medtrinity.records import SCHEMA

MODALITIES = ("CT", "MRI", "X-Ray", "Ultrasound", "Endoscopy")
ORGANS = ("liver", "lung", None)
EXPERT = "expert:foreground@2.0"


def png_bytes(side: int, shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side), shade, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def expected(i: int) -> dict:
    """What record i holds, as the tests compare it."""
    return {
        "id": f"r{i:05d}",
        "modality": MODALITIES[i % 5],
        "organ": ORGANS[i % 3],
        "split": "train" if i % 4 else "test",
        "roi_source": None if i % 10 == 9 else ("annotation" if i % 2 == 0 else EXPERT),
        "failed": ["side"] if i % 7 == 0 else [],
        "marker": f"marker{i % 11}",
    }


def record_row(i: int, image: bytes) -> dict:
    facts = expected(i)
    rois = []
    if facts["roi_source"]:
        rois.append(
            {
                "bbox": [2, 2, 6, 6],
                "mask": None,
                "label": "lesion",
                "source": facts["roi_source"],
                "score": None,
                "position": {"horizontal": "center", "vertical": "middle"},
                "area_ratio": 25.0,
                "kind": "finding",
            }
        )
    checks = [
        {"name": "modality", "ok": True, "detail": f"text names {facts['modality']}, as recorded", "status": "pass"},
        {
            "name": "side",
            "ok": not facts["failed"],
            "detail": "text says left, the record says right" if facts["failed"] else "stated sides agree: right",
            "status": "fail" if facts["failed"] else "pass",
        },
    ]
    return {
        "id": facts["id"],
        "source": "generated",
        "split": facts["split"],
        "image": {"bytes": image, "path": f"{facts['id']}.png"},
        "width": 8,
        "height": 8,
        "modality": facts["modality"],
        "organ": facts["organ"],
        "disease": None,
        "labels": [],
        "label_kinds": [],
        "origin": {"file": f"images/{i:05d}.png"},
        "rois": rois,
        "coarse_caption": f"{facts['modality']} image.",
        "knowledge": [],
        "description": f"This is a {facts['modality']} image, case {facts['marker']}.",
        "attributes": {"modality": f"This is a {facts['modality']} image, case {facts['marker']}."},
        "reference_text": None,
        "describer": "grounded@2 prompt=none",
        "checks": checks,
        "claims": [],
    }


def make_large_build(out: Path, records: int = 10_000, shard_size: int = 2_000) -> Path:
    (out / "data").mkdir(parents=True)
    (out / "quarantine").mkdir()
    image = png_bytes(8, 100)
    for shard, start in enumerate(range(0, records, shard_size)):
        rows = [record_row(i, image) for i in range(start, min(records, start + shard_size))]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=SCHEMA), out / "data" / f"part-{shard:05d}.parquet", row_group_size=128
        )
    counts = {"seen": records, "written": records, "quarantined": 0}
    (out / "manifest.json").write_text(
        json.dumps({"medtrinity": "0.1.0", "sources": {"generated": counts}, "totals": counts})
    )
    return out
