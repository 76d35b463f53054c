"""Generic layout: a CSV table with one row per image or per box (path, label, box, caption, split).

    name: my-table
    layout: csv-table
    modality: X-Ray
    organ: chest
    disease: lung nodule
    expert: auto
    options:
      csv: labels.csv                   # the table, relative to the source folder
      images: images                    # folder the path column is relative to (default: the source folder)
      path: image                       # column with the image path (required)
      label: finding                    # optional column; several labels in a cell split on label_separator
      label_separator: "|"
      normal: ["No Finding"]            # label values meaning "no finding"
      box: {x0: xmin, y0: ymin, x1: xmax, y1: ymax}   # or {x: x, y: y, w: w, h: h}; pixels; empty cells = no box
      caption: caption                  # optional column -> reference_text
      split: split                      # optional column (train / val / test), else the recipe's split

Several rows with the same path are several boxes of one image. A row whose box cells are not numbers,
a path that names no file, and a box outside the image quarantine the image with the CSV line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from pydantic import Field, field_validator

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import PixelBox, parse_float
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, layout_options

BOX_KEYS = ({"x0", "y0", "x1", "y1"}, {"x", "y", "w", "h"})


class CsvTableOptions(LayoutOptions):
    csv: str = Field(examples=["labels.csv"])  # the table, relative to the source folder
    path: str = Field(examples=["image"])  # column with the image path
    images: str = ""  # folder the path column is relative to
    label: str | None = None  # column of labels
    label_separator: str = "|"
    normal: list[str] = []  # label values meaning "no finding"
    box: dict[str, str] | None = None  # {x0, y0, x1, y1} or {x, y, w, h} -> column names
    caption: str | None = None  # column -> reference_text
    split: str | None = None  # column with train / val / test

    @field_validator("box")
    @classmethod
    def _box_keys(cls, box: dict[str, str] | None) -> dict[str, str] | None:
        if box and set(box) not in BOX_KEYS:
            raise ValueError("needs keys x0, y0, x1, y1 or x, y, w, h")
        return box


@register_layout("csv-table")
class CsvTableLayout:
    Options = CsvTableOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.csv = opts.csv
        self.path_column = opts.path
        self.images = opts.images.strip("/")
        self.label_column = opts.label
        self.separator = opts.label_separator
        self.normal = set(opts.normal)
        self.box: dict = opts.box or {}
        self.caption_column = opts.caption
        self.split_column = opts.split

    def check(self) -> None:
        if not (self.root / self.csv).is_file():
            raise UserError(f"recipe {self.recipe.name} expects {self.csv} under {self.root}: it is missing")
        with open(self.root / self.csv, newline="") as f:
            header = next(csv.reader(f), [])
        wanted = [self.path_column, self.label_column, self.caption_column, self.split_column, *self.box.values()]
        missing = [c for c in wanted if c and c not in header]
        if missing:
            raise UserError(f"{self.csv} under {self.root} has no column(s) {', '.join(missing)}")

    def _box(self, row: dict, label: str, where: str):
        try:
            values = {k: parse_float(row.get(column), column) for k, column in self.box.items()}
        except ValueError as e:  # names the column, never the cell (it may hold an identifier)
            return SourceProblem(f"{where}: {e}")
        if all(v is None for v in values.values()):
            return None
        if any(v is None for v in values.values()):
            return SourceProblem(f"{where}: the box is incomplete")
        if "x0" in values:
            return PixelBox(values["x0"], values["y0"], values["x1"], values["y1"], label, where)
        return PixelBox(values["x"], values["y"], values["x"] + values["w"], values["y"] + values["h"], label, where)

    def _records(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        with open(self.root / self.csv, newline="") as f:
            for number, row in enumerate(csv.DictReader(f), start=2):
                where = f"{self.csv} line {number}"
                path = (row.get(self.path_column) or "").strip()
                key = f"{self.images}/{path}" if self.images and path else (path or f"{self.csv}:line {number}")
                rec = records.setdefault(key, {"labels": [], "annotations": [], "captions": [], "split": None})
                if not path:
                    rec["annotations"].append(SourceProblem(f"{where}: the {self.path_column} cell is empty"))
                    continue
                cell = (row.get(self.label_column) or "").strip() if self.label_column else ""
                labels = [v.strip() for v in cell.split(self.separator) if v.strip()] if cell else []
                rec["labels"] += [v for v in labels if v not in rec["labels"]]
                if self.box:
                    box_label = (
                        ", ".join(v for v in labels if v not in self.normal)
                        or self.recipe.label
                        or "region of interest"
                    )
                    box = self._box(row, box_label, where)
                    if box is not None:
                        rec["annotations"].append(box)
                caption = (row.get(self.caption_column) or "").strip() if self.caption_column else ""
                if caption and caption not in rec["captions"]:
                    rec["captions"].append(caption)
                if self.split_column and (row.get(self.split_column) or "").strip():
                    rec["split"] = row[self.split_column].strip()
        return records

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        for file, rec in sorted(self._records().items()):
            findings = [v for v in rec["labels"] if v not in self.normal]
            has_finding = bool(findings or rec["annotations"])
            # "normal" only where the table says so (a value listed in options.normal), never for an empty cell.
            normal = not findings and any(v in self.normal for v in rec["labels"])
            labels = findings + (["normal"] if normal else [])
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=file,
                modality=r.modality,
                organ=r.organ,
                disease=r.disease if has_finding else None,
                labels=labels,
                split=rec["split"] or r.split,
                reference_text=" ".join(rec["captions"]) or None,
                annotations=rec["annotations"],
                expert=r.expert,
                label_kinds={"normal": "normal"} if normal else {},
            )
