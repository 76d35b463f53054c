"""`export coco`: one COCO instances JSON per split (`<split>.json`) and the image files (`images/`).

`images` carry file_name (under images/), width, height and the record id; `annotations` one per ROI with
`bbox` [x, y, w, h], `area` (mask pixels), `segmentation` (the ROI's RLE; a box-only ROI gets its box as the
mask), `iscrowd` 0 and `category_id`; `categories` are the ROI labels with the modality as `supercategory`,
the same ids in every split (selection.scan collects them first). Only the sources' own annotations are
written unless `--include-expert`, whose ROIs carry the expert's `score`. pycocotools' `COCO` loads the
file and `annToMask` gives back each ROI's mask exactly. The lists are spooled to files while records stream
in and joined at the end, so a large split is never held in memory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from medtrinity.records import image_extension


def roi_rle(roi: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """The ROI's COCO RLE; for a box-only ROI, the RLE of its box."""
    if roi["mask"] is not None:
        return {"size": list(roi["mask"]["size"]), "counts": roi["mask"]["counts"]}
    import numpy as np
    from pycocotools import mask as mask_utils

    x0, y0, x1, y1 = roi["bbox"]
    box = np.zeros((height, width), np.uint8, order="F")
    box[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(box)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_area(rle: dict[str, Any]) -> int:
    from pycocotools import mask as mask_utils

    return int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))


class _Split:
    """One split's images and annotations, each spooled as JSON fragments to a file."""

    def __init__(self, spool: Path, split: str) -> None:
        self.split = split
        self.images_path, self.annotations_path = spool / f"{split}.images", spool / f"{split}.annotations"
        # open until `finish`: records stream in one at a time
        self.images = open(self.images_path, "w", encoding="utf-8")  # noqa: SIM115
        self.annotations = open(self.annotations_path, "w", encoding="utf-8")  # noqa: SIM115
        self.image_count = self.annotation_count = 0

    def add_image(self, entry: dict[str, Any]) -> None:
        self.images.write(("," if self.image_count else "") + json.dumps(entry, ensure_ascii=False))
        self.image_count += 1

    def add_annotation(self, entry: dict[str, Any]) -> None:
        self.annotations.write(("," if self.annotation_count else "") + json.dumps(entry))
        self.annotation_count += 1

    def finish(self, path: Path, head: str, categories: list[dict[str, Any]]) -> None:
        self.images.close()
        self.annotations.close()
        with open(path, "w", encoding="utf-8") as out:
            out.write(head + ',"images":[')
            with open(self.images_path, encoding="utf-8") as part:
                shutil.copyfileobj(part, out)
            out.write('],"annotations":[')
            with open(self.annotations_path, encoding="utf-8") as part:
                shutil.copyfileobj(part, out)
            out.write('],"categories":' + json.dumps(categories, ensure_ascii=False) + "}\n")


class Writer:
    def __init__(self, folder: Path, options, catalog, build) -> None:
        self.folder = folder
        (folder / "images").mkdir()
        self.spool = folder / ".spool"
        self.spool.mkdir()
        self.include_expert = options.include_expert
        self.category_ids = {key: i + 1 for i, key in enumerate(catalog.categories)}
        self.categories = [
            {"id": i + 1, "name": label, "supercategory": modality}
            for i, (label, modality) in enumerate(catalog.categories)
        ]
        created = build.manifest.get("created", "")
        self.info = {
            "description": f"medtrinity export of {build.folder.name}",
            "version": build.manifest.get("medtrinity", ""),
            "date_created": created,
            "year": int(created[:4]) if created[:4].isdigit() else 0,
        }
        self.splits: dict[str, _Split] = {}

    def add(self, row: dict[str, Any]) -> None:
        from medtrinity.export.selection import split_of

        split = split_of(row["split"])
        if split not in self.splits:
            self.splits[split] = _Split(self.spool, split)
        target = self.splits[split]
        data = row["image"]["bytes"]
        file_name = f"{row['id']}.{image_extension(data)}"
        (self.folder / "images" / file_name).write_bytes(data)
        image_id = target.image_count + 1
        target.add_image(
            {
                "id": image_id,
                "file_name": file_name,
                "width": row["width"],
                "height": row["height"],
                "record_id": row["id"],
                "source": row["source"],
                "modality": row["modality"],
            }
        )
        for roi in row["rois"]:
            if roi["source"] != "annotation" and not self.include_expert:
                continue
            x0, y0, x1, y1 = roi["bbox"]
            rle = roi_rle(roi, row["height"], row["width"])
            annotation = {
                "id": target.annotation_count + 1,
                "image_id": image_id,
                "category_id": self.category_ids[(roi["label"], row["modality"])],
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": rle_area(rle),
                "segmentation": rle,
                "iscrowd": 0,
                "roi_source": roi["source"],
                "kind": roi["kind"],
            }
            if roi["source"] != "annotation":
                annotation["score"] = roi["score"]
            target.add_annotation(annotation)

    def close(self) -> tuple[dict[str, int], dict[str, Any]]:
        head = '{"info":' + json.dumps(self.info, ensure_ascii=False) + ',"licenses":[]'
        for split, target in self.splits.items():
            target.finish(self.folder / f"{split}.json", head, self.categories)
        shutil.rmtree(self.spool)
        annotations = {split: s.annotation_count for split, s in sorted(self.splits.items())}
        return (
            {split: s.image_count for split, s in self.splits.items()},
            {"annotations": annotations, "categories": len(self.categories)},
        )
