"""SIIM-ACR Pneumothorax Segmentation (Kaggle, 2019), read as published:

    train-rle.csv                                        ImageId, EncodedPixels   (header and values as
                                                         shipped, with a space after the comma)
    dicom-images-train/<study UID>/<series UID>/<ImageId>.dcm

EncodedPixels is the competition's own RLE (see annotation_formats.decode_relative_rle): column-major,
each start offset relative to the end of the previous run. " -1" means no pneumothorax; several rows for
one ImageId are several regions. One item per ImageId (sorted); an image without a region is labelled
"no pneumothorax" (a negative: the source says nothing else about it, so never "normal") and gets the
recipe's expert (auto). A malformed RLE is quarantined with the CSV line and the problem.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import RelativeRle
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout

RLE_CSV = "train-rle.csv"
IMAGES_DIR = "dicom-images-train"
NO_REGION = "-1"


@register_layout("siim-acr-pneumothorax")
class SiimAcrPneumothoraxLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.label = recipe.label or recipe.disease or "pneumothorax"

    def check(self) -> None:
        for name in (RLE_CSV, IMAGES_DIR):
            if not (self.root / name).exists():
                raise UserError(
                    f"{self.recipe.name} expects {RLE_CSV} and {IMAGES_DIR}/ under {self.root}: {name} is missing"
                )

    def _dicoms(self) -> dict[str, str]:
        """ImageId -> path relative to root; the study/series folders are found, not assumed."""
        found = {}
        for path in sorted((self.root / IMAGES_DIR).rglob("*.dcm")):
            found.setdefault(path.stem, path.relative_to(self.root).as_posix())
        return found

    def _annotations(self) -> dict[str, list]:
        per_image: dict[str, list] = defaultdict(list)
        with open(self.root / RLE_CSV, newline="") as f:
            reader = csv.reader(f)
            header = [c.strip() for c in next(reader, [])]
            if header[:2] != ["ImageId", "EncodedPixels"]:
                raise UserError(f"{RLE_CSV} under {self.root} must start with the header 'ImageId, EncodedPixels'")
            for number, row in enumerate(reader, start=2):
                where = f"{RLE_CSV} line {number}"
                if not row or not any(cell.strip() for cell in row):
                    continue
                image_id = row[0].strip()
                if not image_id or len(row) != 2:
                    problem = (
                        "ImageId is empty"
                        if not image_id
                        else f"expected 2 fields (ImageId, EncodedPixels), got {len(row)}"
                    )
                    per_image[image_id or f"\0{number}"].append(SourceProblem(f"{where}: {problem}"))
                    continue
                per_image.setdefault(image_id, [])
                counts = row[1].strip()
                if counts != NO_REGION:
                    per_image[image_id].append(RelativeRle(counts, self.label, where))
        return per_image

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        dicoms = self._dicoms()
        for image_id, found in sorted(self._annotations().items()):
            if image_id.startswith("\0"):
                yield SourceItem(
                    source=r.name,
                    root=str(self.root),
                    file=f"{RLE_CSV}:line {image_id[1:]}",
                    modality=r.modality,
                    annotations=found,
                )
                continue
            # A missing DICOM keeps a pattern of the published place, so the quarantine names it.
            file = dicoms.get(image_id, f"{IMAGES_DIR}/*/*/{image_id}.dcm")
            has_region = bool(found)
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=file,
                modality=r.modality,
                organ=r.organ,
                disease=r.disease if has_region else None,
                labels=[self.label] if has_region else [f"no {self.label}"],
                split=r.split,
                annotations=found,
                expert=r.expert,
                label_kinds={self.label: "finding"} if has_region else {f"no {self.label}": "negative"},
            )
