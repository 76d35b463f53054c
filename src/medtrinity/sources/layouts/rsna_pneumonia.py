"""RSNA Pneumonia Detection Challenge (Kaggle, 2018), read as published:

    stage_2_train_labels.csv          patientId,x,y,width,height,Target  (one row per box; Target 0 rows
                                      have empty x/y/width/height: no box)
    stage_2_detailed_class_info.csv   patientId,class  ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")
    stage_2_train_images/<patientId>.dcm

One item per patientId (sorted), one ROI per Target 1 row (label "lung opacity", disease pneumonia).
Images without a box are labelled as the class file says: "Normal" -> "normal"; "No Lung Opacity / Not
Normal" -> "no lung opacity" (a negative) and "abnormality other than lung opacity" (the source calls the
image not normal without naming what it shows); without a class row -> "no lung opacity" only (Target 0
says no more). The recipe's expert (auto) finds the lungs on those. The patientId is the publisher's file
name: it appears only in `origin.file`, never in text. The class statement becomes `reference_text`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import PixelBox, parse_float
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout

LABELS_CSV = "stage_2_train_labels.csv"
CLASS_CSV = "stage_2_detailed_class_info.csv"
IMAGES_DIR = "stage_2_train_images"
BOX_LABEL = "lung opacity"
NO_BOX_LABEL = "no lung opacity"
NOT_NORMAL_LABEL = "abnormality other than lung opacity"
# The class file's statement of an image without a box -> its labels.
NO_BOX_CLASSES = {"Normal": ["normal"], "No Lung Opacity / Not Normal": [NO_BOX_LABEL, NOT_NORMAL_LABEL]}
KINDS = {BOX_LABEL: "finding", "normal": "normal", NO_BOX_LABEL: "negative", NOT_NORMAL_LABEL: "finding"}
LABEL_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")


@register_layout("rsna-pneumonia")
class RsnaPneumoniaLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root

    def check(self) -> None:
        for name in (LABELS_CSV, IMAGES_DIR):
            if not (self.root / name).exists():
                raise UserError(
                    f"{self.recipe.name} expects {LABELS_CSV} and {IMAGES_DIR}/ under {self.root}: {name} is missing"
                )

    def _classes(self) -> dict[str, str]:
        path = self.root / CLASS_CSV
        if not path.is_file():
            return {}
        with open(path, newline="") as f:
            return {row["patientId"].strip(): (row.get("class") or "").strip() for row in csv.DictReader(f)}

    def _rows(self) -> dict[str, list]:
        """patientId -> its annotations (boxes, or problems of malformed rows), in file order."""
        per_patient: dict[str, list] = defaultdict(list)
        with open(self.root / LABELS_CSV, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{LABELS_CSV} under {self.root} lacks the column(s) {', '.join(missing)}")
            for number, row in enumerate(reader, start=2):  # line 1 is the header
                patient = (row["patientId"] or "").strip()
                where = f"{LABELS_CSV} line {number}"
                if not patient:
                    per_patient[f"\0{number}"].append(SourceProblem(f"{where}: no patientId"))
                    continue
                per_patient[patient].extend(_row_annotation(row, where))
        return per_patient

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        classes = self._classes()
        for patient, found in sorted(self._rows().items()):
            if patient.startswith("\0"):  # a row without a patientId: listed so the quarantine names it
                line = patient[1:]
                yield SourceItem(
                    source=r.name,
                    root=str(self.root),
                    file=f"{LABELS_CSV}:line {line}",
                    modality=r.modality,
                    annotations=found,
                )
                continue
            has_box = bool(found)
            statement = classes.get(patient) or ("Lung Opacity" if has_box else "")
            labels = (
                [BOX_LABEL] if has_box else list(NO_BOX_CLASSES.get(statement, [statement.lower() or NO_BOX_LABEL]))
            )
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=f"{IMAGES_DIR}/{patient}.dcm",
                modality=r.modality,
                organ=r.organ,
                disease=r.disease if has_box else None,
                labels=labels,
                split=r.split,
                reference_text=f"RSNA class: {statement}." if statement else None,
                annotations=found,
                expert=r.expert,
                label_kinds={k: v for k, v in KINDS.items() if k in labels},
            )


def _row_annotation(row: dict, where: str) -> list:
    """[] for a Target 0 row, [PixelBox] for a Target 1 row, [SourceProblem] for a malformed one."""
    target = (row.get("Target") or "").strip()
    # Reasons name the column, never the cell: a shifted row can put an identifier there.
    if target not in ("0", "1"):
        return [SourceProblem(f"{where}: Target is {'empty' if not target else 'not 0 or 1'}")]
    try:
        x, y, w, h = (parse_float(row.get(k), k) for k in ("x", "y", "width", "height"))
    except ValueError as e:
        return [SourceProblem(f"{where}: {e}")]
    if target == "0":
        return []
    if None in (x, y, w, h):
        return [SourceProblem(f"{where}: Target 1 but the box x, y, width, height is incomplete")]
    return [PixelBox(x, y, x + w, y + h, BOX_LABEL, where)]
