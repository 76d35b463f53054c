"""Kvasir-SEG as published (datasets.simula.no/kvasir-seg): polyp images and their JPEG masks.

    Kvasir-SEG/
      images/<id>.jpg
      masks/<id>.jpg                 same name as the image; white = polyp (JPEG, so thresholded)
      kavsir_bboxes.json             optional; the publisher's spelling:
                                     {"<id>": {"height": H, "width": W,
                                               "bbox": [{"label": "polyp", "xmin": .., "ymin": .., "xmax": .., "ymax": ..}]}}

How masks and boxes combine: the mask is the ROI (pixel-precise; each 8-connected component is one
polyp, and JPEG speckles under the geometry's minimum component size are dropped). The JSON boxes are
used only where an image has no mask file, as box ROIs; where the JSON entry exists but states another
image size, or a box leaves the image, the record is quarantined naming kavsir_bboxes.json and the id.
An image with neither a mask nor a JSON entry is quarantined ("mask file masks/<id>.jpg is missing").
Every Kvasir-SEG image shows a polyp, so an all-black mask is a broken annotation, quarantined ("mask
masks/<id>.jpg is empty: …"); `options.empty_mask: unlocalised` keeps such an image as a polyp record
without a region instead.

    options:
      threshold: 127            # JPEG masks: a pixel > 127 is polyp
      empty_mask: quarantine    # or unlocalised
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pydantic import Field

from medtrinity.errors import StageError, UserError
from medtrinity.records import Region
from medtrinity.sources.annotations import MaskFile
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import EmptyMask, LayoutOptions, layout_options, list_files

BBOX_JSON = "kavsir_bboxes.json"


@dataclass
class KvasirBoxes:
    """The boxes of one image from kavsir_bboxes.json, checked against the image they describe."""

    image_id: str
    height: int | None
    width: int | None
    boxes: list[tuple[float, float, float, float, str]]
    problem: str | None = None  # a malformed JSON entry, reported when the record is located

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        where = f"{BBOX_JSON}: entry {self.image_id}"
        if self.problem:
            raise StageError(f"{where}: {self.problem}")
        height, width = shape
        if (self.height, self.width) != (height, width):
            raise StageError(f"{where} says {self.width}x{self.height} but {item.file} is {width}x{height}")
        regions = []
        for x0, y0, x1, y1, label in self.boxes:
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise StageError(
                    f"{where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] lies outside the {width}x{height} image"
                )
            regions.append(Region(label=label, bbox=(x0, y0, x1, y1)))
        return regions


def parse_bbox_entry(image_id: str, entry: object, default_label: str) -> KvasirBoxes:
    """One JSON entry as boxes; a malformed entry becomes a KvasirBoxes whose resolve quarantines the record."""
    try:
        boxes = [
            (
                float(b["xmin"]),
                float(b["ymin"]),
                float(b["xmax"]),
                float(b["ymax"]),
                str(b.get("label") or default_label),
            )
            for b in entry["bbox"]
        ]
        return KvasirBoxes(image_id, int(entry["height"]), int(entry["width"]), boxes)
    except (KeyError, TypeError, ValueError):
        problem = "malformed entry; expected height, width, bbox[xmin, ymin, xmax, ymax]"
        return KvasirBoxes(image_id, None, None, [], problem=problem)


class KvasirSegOptions(LayoutOptions):
    threshold: int = Field(127, ge=0, le=255)
    empty_mask: EmptyMask = "quarantine"


@register_layout("kvasir-seg")
class KvasirSegLayout:
    Options = KvasirSegOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.threshold = opts.threshold
        self.label = recipe.label or "polyp"
        self.empty = f"Kvasir-SEG images each show a {self.label}" if opts.empty_mask == "quarantine" else None

    def check(self) -> None:
        for folder in ("images", "masks"):
            if not (self.root / folder).is_dir():
                raise UserError(f"kvasir-seg expects images/ and masks/ under {self.root}: {folder}/ is missing")
        bbox_json = self.root / BBOX_JSON
        if bbox_json.exists():
            try:
                data = json.loads(bbox_json.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise UserError(f"{bbox_json} is not readable JSON: {err}") from None
            if not isinstance(data, dict):
                raise UserError(f"{bbox_json} must be a JSON object keyed by image id")

    def _boxes(self) -> dict:
        path = self.root / BBOX_JSON
        return json.loads(path.read_text()) if path.is_file() else {}

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        boxes = self._boxes()
        for image in list_files(self.root, "images/*"):
            if Path(image).suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            image_id = Path(image).stem
            mask = f"masks/{Path(image).name}"
            if (self.root / mask).exists() or image_id not in boxes:
                annotation = MaskFile(mask, self.label, threshold=self.threshold, empty=self.empty)
            else:  # no mask: the publisher's box is the ROI
                annotation = parse_bbox_entry(image_id, boxes[image_id], self.label)
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=image,
                modality=r.modality,
                organ=r.organ,
                disease=r.disease,
                labels=[self.label],
                split=r.split,
                annotations=[annotation],
                expert=r.expert,
            )
