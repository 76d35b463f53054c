"""`export medtrinity-25m`: a build as rows in MedTrinity-25M's own columns, for code written for the release.

    OUT/data/<split>-00000-of-00002.parquet     image, id, file_name, caption, source, bboxes
    OUT/export.json

The columns are the release's (25M_full's `id`, `file_name`, `caption`, `source`; 25M_demo's `image`, the HF
`Image` struct {bytes, path}) plus `bboxes`: the record's boxes as [x0, y0, x1, y1] pixels, x1/y1 exclusive —
the coordinates the release drew into its pixels instead of giving. `image` is the stored image: for records
read from the release, the clean one (outlines removed). The files are named as Hugging Face names a split's
shards, so `datasets.load_dataset(OUT)` reads them with `image` decoded.

Records read from the release (a source whose recipe uses the medtrinity-25m layout) get the release's values
back: `id` = the row's id (origin.source_id), `file_name` = origin.file (a 25M_demo row has none: its id, as
origin.file holds it), `caption` = the released caption (reference_text, never this build's description) and
`source` = the row's source (origin.source_dataset; null for 25M_demo rows, which name none). Other records:
`id` = the record id, `file_name` = origin.file, `caption` = the description, `source` = the record's source.

`bboxes` holds the sources' own annotations and boxes recovered from the released pixels ("recovered:…"),
which are the release's own; an expert's proposals only with --include-expert, as the COCO and LLaVA exports.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from medtrinity.describe.reference_audit import contradicted
from medtrinity.export.hf import hf_split
from medtrinity.export.output import SplitFiles
from medtrinity.export.selection import Selection, split_of
from medtrinity.records import IMAGE_TYPE, image_extension

LAYOUT = "medtrinity-25m"  # the layout that reads the release
COLUMNS = ("image", "id", "file_name", "caption", "source", "bboxes")


def release_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("image", IMAGE_TYPE),
            ("id", pa.string()),
            ("file_name", pa.string()),
            ("caption", pa.string()),
            ("source", pa.string()),
            ("bboxes", pa.list_(pa.list_(pa.int32()))),
        ],
        metadata={b"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}}}}).encode()},
    )


def release_sources(manifest: dict) -> set[str]:
    """The build's sources read by the medtrinity-25m layout (by their recipes, as the manifest names them)."""
    from medtrinity.errors import UserError
    from medtrinity.sources.base import load_recipe

    found = set()
    for spec in (manifest.get("config") or {}).get("sources") or []:
        try:
            recipe = load_recipe(spec["recipe"])
        except (UserError, KeyError, OSError, ValueError):  # a recipe file moved since the build
            if spec.get("recipe") == LAYOUT:
                found.add(LAYOUT)
            continue
        if recipe.layout == LAYOUT:
            found.add(recipe.name)
    return found


def release_row(row: dict[str, Any], from_release: bool, selection: Selection) -> dict[str, Any]:
    """One build row in the release's columns (see the module's text for which value goes where)."""
    origin = row["origin"] or {}
    data = row["image"]["bytes"]
    if from_release:
        record_id = origin.get("source_id") or row["id"]
        caption, source = row["reference_text"], origin.get("source_dataset")
    else:
        record_id, caption, source = row["id"], row["description"], row["source"]
    file_name = origin.get("file")
    stem = Path(file_name).stem if file_name else record_id
    boxes = [
        list(roi["bbox"])
        for roi in row["rois"] or []
        if roi["source"].startswith("recovered:") or selection.roi_included(roi)
    ]
    return {
        "image": {"bytes": data, "path": f"{stem}.{image_extension(data)}"},
        "id": record_id,
        "file_name": file_name,
        "caption": caption,
        "source": source,
        "bboxes": boxes,
    }


class Writer:
    def __init__(self, folder: Path, options, catalog, build) -> None:
        self.folder, self.size, self.catalog = folder, options.shard_size, catalog
        self.selection = Selection(include_expert=options.include_expert)
        self.release = release_sources(build.manifest)
        (folder / "data").mkdir()
        self.splits: dict[str, SplitFiles] = {}
        self.release_rows = 0
        self.contradicted = Counter()  # source dataset -> release rows whose released caption failed its audit

    def add(self, row: dict[str, Any]) -> None:
        split = hf_split(row["split"])
        if split not in self.splits:
            files = max(1, -(-self.catalog.splits[split_of(row["split"])] // self.size))  # n of "-of-n", known now
            self.splits[split] = SplitFiles(
                self.folder,
                split,
                self.size,
                release_schema(),
                lambda name, k: f"{name}-{k:05d}-of-{files:05d}.parquet",
            )
        from_release = row["source"] in self.release
        self.splits[split].add(release_row(row, from_release, self.selection))
        if from_release:
            self.release_rows += 1
            if contradicted(row["checks"] or []):
                self.contradicted[(row["origin"] or {}).get("source_dataset") or "(none)"] += 1

    def close(self) -> tuple[dict[str, int], dict[str, Any]]:
        for files in self.splits.values():
            files.close()
        written = {split: files.count for split, files in self.splits.items()}
        details: dict[str, Any] = {
            "parquet_files": sum(f.files for f in self.splits.values()),
            "rows_from_the_release": self.release_rows,
        }
        if self.release_rows:
            details["released_captions_contradicted"] = dict(sorted(self.contradicted.items()))
        return written, details
