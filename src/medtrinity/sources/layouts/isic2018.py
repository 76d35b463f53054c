"""ISIC 2018 (challenge2018.isic-archive.com), Task 1 lesion segmentation, as the archives unpack.

    ISIC2018_Task1-2_Training_Input/ISIC_<n>.jpg              also _Validation_ and _Test_ (-> split)
    ISIC2018_Task1_Training_GroundTruth/ISIC_<n>_segmentation.png   white = lesion
    ISIC2018_Task3_Training_GroundTruth.csv                   optional, at the root or in its own
    ISIC2018_Task3_Training_GroundTruth/ folder (also _Validation_): image,MEL,NV,BCC,AKIEC,BKL,DF,VASC
                                                              one-hot 1.0/0.0 -> the diagnosis

The Task 3 images (HAM10000, ISIC_0024306 …) are mostly other images than Task 1's, so a diagnosis is
attached only where the ids match; other images keep the recipe's disease ("skin lesion").
A split whose GroundTruth folder is absent (e.g. the Test masks not downloaded) has no source ROI: the
expert (auto: the skin-lesion expert) outlines the lesion. Where the GroundTruth folder is there but an
image's mask is not, the record is quarantined naming the missing mask. A Task 3 row that matches an
image but is not a valid one-hot row quarantines that image with the CSV name and row number.
Every ISIC image shows a lesion, so a mask that marks nothing is quarantined ("mask … is empty: …") unless
the recipe sets `options.empty_mask: unlocalised` (then the record keeps its lesion without a region).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.annotations import MaskFile, SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import EmptyMask, LayoutOptions, layout_options

SPLITS = {"Training": "train", "Validation": "validation", "Test": "test"}
DIAGNOSES = {
    "MEL": "melanoma",
    "NV": "melanocytic nevus",
    "BCC": "basal cell carcinoma",
    "AKIEC": "actinic keratosis / Bowen's disease (intraepithelial carcinoma)",
    "BKL": "benign keratosis",
    "DF": "dermatofibroma",
    "VASC": "vascular lesion",
}
_IMAGE = re.compile(r"^ISIC_\d+\.jpe?g$", re.IGNORECASE)


def input_folder(split: str) -> str:
    return f"ISIC2018_Task1-2_{split}_Input"


def mask_folder(split: str) -> str:
    return f"ISIC2018_Task1_{split}_GroundTruth"


def diagnosis_csvs(root: Path) -> list[str]:
    """The Task 3 ground-truth CSVs present, at the root or in the folder its archive unpacks to."""
    found = []
    for split in SPLITS:
        name = f"ISIC2018_Task3_{split}_GroundTruth"
        for rel in (f"{name}.csv", f"{name}/{name}.csv"):
            if (root / rel).is_file():
                found.append(rel)
                break
    return found


def read_diagnoses(root: Path, rel: str) -> dict[str, tuple[str, str | None, str | None]]:
    """image id -> (where, diagnosis code, problem); a bad header is a layout problem (UserError)."""
    with open(root / rel, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("image", *DIAGNOSES) if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"{root / rel} lacks the column(s) {', '.join(missing)} (expected image,{','.join(DIAGNOSES)})"
            )
        table = {}
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{rel}: row {number}"
            try:
                values = {code: float(row[code]) for code in DIAGNOSES}
            except (TypeError, ValueError):
                table[row["image"]] = (where, None, "a diagnosis column is not a number")
                continue
            positive = [code for code, v in values.items() if v == 1.0]
            if len(positive) != 1 or any(v not in (0.0, 1.0) for v in values.values()):
                table[row["image"]] = (where, None, f"expected exactly one of {', '.join(DIAGNOSES)} to be 1.0")
            else:
                table[row["image"]] = (where, positive[0], None)
        return table


class Isic2018Options(LayoutOptions):
    empty_mask: EmptyMask = "quarantine"


@register_layout("isic2018")
class Isic2018Layout:
    Options = Isic2018Options

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.label = recipe.label or "skin lesion"
        opts = layout_options(self, recipe)
        self.empty = f"ISIC 2018 images each show a {self.label}" if opts.empty_mask == "quarantine" else None

    def _splits(self) -> list[str]:
        return [s for s in SPLITS if (self.root / input_folder(s)).is_dir()]

    def check(self) -> None:
        if not self._splits():
            raise UserError(
                f"isic2018 expects {input_folder('Training')}/ (or the _Validation_/_Test_ one) under {self.root}: "
                "none is there"
            )

    def items(self) -> Iterator[SourceItem]:
        diagnoses: dict = {}
        for rel in diagnosis_csvs(self.root):
            diagnoses.update(read_diagnoses(self.root, rel))
        for split in self._splits():
            has_masks = (self.root / mask_folder(split)).is_dir()
            images = sorted(p.name for p in (self.root / input_folder(split)).iterdir() if _IMAGE.match(p.name))
            for name in images:
                yield self._item(split, name, has_masks, diagnoses.get(Path(name).stem))

    def _item(self, split: str, name: str, has_masks: bool, diagnosis) -> SourceItem:
        r = self.recipe
        image_id = Path(name).stem
        annotations: list = []
        if has_masks:
            mask = f"{mask_folder(split)}/{image_id}_segmentation.png"
            annotations.append(MaskFile(mask, self.label, empty=self.empty))
        disease, labels = r.disease, [self.label]
        if diagnosis is not None:
            where, code, problem = diagnosis
            if problem:
                annotations.insert(0, SourceProblem(f"{where}: {problem}"))  # quarantines the image
            else:
                disease, labels = DIAGNOSES[code], [self.label, code]
        return SourceItem(
            source=r.name,
            root=str(self.root),
            file=f"{input_folder(split)}/{name}",
            modality=r.modality,
            organ=r.organ,
            disease=disease,
            labels=labels,
            split=SPLITS[split],
            annotations=annotations,
            expert=r.expert,
        )
