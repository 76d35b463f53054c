"""NIH ChestX-ray14 (ChestX-ray8, Wang et al. CVPR 2017), read as published:

    Data_Entry_2017.csv   Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,
                          View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
                          (the bracketed names split into two CSV fields each; Data_Entry_2017_v2020.csv,
                          the 2020 re-release, is read the same way)
    BBox_List_2017.csv    Image Index,Finding Label,Bbox [x,y,w,h],,,  (so the coordinate columns are named
                          "Bbox [x", "y", "w", "h]", then three unnamed empty ones)
    images/<Image Index>  or images_001/images/ … images_012/images/ (the archives as unpacked)
    train_val_list.txt, test_list.txt   one Image Index per line

One item per Image Index (sorted). Labels: the finding labels ("A|B"; "No Finding" -> normal); boxes
(pixels, x y w h) where BBox_List lists them, for the other images the recipe's expert (auto) finds
the lungs. Split: train_val_list.txt -> "train" (the publisher's train+validation pool), test_list.txt
-> "test". Patient ID, age and gender are never copied into the record.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import PixelBox, parse_float
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.qa_text import patient_left_for_view
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import listable

ENTRY_CSVS = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")
BBOX_CSV = "BBox_List_2017.csv"
SPLIT_LISTS = {"train_val_list.txt": "train", "test_list.txt": "test"}
NO_FINDING = "No Finding"
BOX_COLUMNS = ("x", "y", "w", "h")  # BBox_List's "Bbox [x", "y", "w", "h]" in plain names


def finding_name(label: str) -> str:
    """The publisher's class name in plain words: 'Pleural_Thickening' -> 'pleural thickening'."""
    return label.strip().replace("_", " ").lower()


def entry_row_problem(row: list[str], header: list[str], needed: list[int], required: tuple[int, ...]) -> str | None:
    """Why a Data_Entry row cannot be read (too few fields, an empty required cell), or None.
    Names columns, never cell values: the row also holds the patient's ID, age and gender."""
    short = [i for i in needed if i >= len(row)]
    if short:
        i = min(short)
        return f"the row has {len(row)} field(s), too few to reach {header[i]} (field {i + 1})"
    empty = [i for i in required if not row[i].strip()]
    return f"{header[empty[0]]} is empty" if empty else None


@register_layout("chestx-ray14")
class ChestXray14Layout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root

    def _entry_csv(self) -> Path | None:
        return next((self.root / n for n in ENTRY_CSVS if (self.root / n).is_file()), None)

    def _image_dirs(self) -> list[Path]:
        return [
            d for d in [self.root / "images", *sorted(self.root.glob("images_[0-9][0-9][0-9]/images"))] if d.is_dir()
        ]

    def check(self) -> None:
        if self._entry_csv() is None:
            raise UserError(
                f"{self.recipe.name} expects {ENTRY_CSVS[0]} and images/ (or images_NNN/images/) under "
                f"{self.root}: {ENTRY_CSVS[0]} is missing"
            )
        if not self._image_dirs():
            raise UserError(
                f"{self.recipe.name} expects {ENTRY_CSVS[0]} and images/ (or images_NNN/images/) under "
                f"{self.root}: images/ is missing"
            )

    def _image_paths(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for folder in self._image_dirs():
            for path in sorted(folder.iterdir()):
                if listable(path):  # a folder named like an image too: the read stage says what it is
                    found.setdefault(path.name, path.relative_to(self.root).as_posix())
        return found

    def _splits(self) -> dict[str, str]:
        splits = {}
        for name, split in SPLIT_LISTS.items():
            path = self.root / name
            if path.is_file():
                splits.update({line.strip(): split for line in path.read_text().splitlines() if line.strip()})
        return splits

    def _entries(self) -> tuple[dict[str, dict], dict[str, str]]:
        """(Image Index -> {findings, view}, Image Index -> the first problem of its malformed row(s))."""
        path = self._entry_csv()
        entries: dict[str, dict] = {}
        problems: dict[str, str] = {}
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = [c.strip() for c in next(reader, [])]
            try:
                i_image, i_findings = header.index("Image Index"), header.index("Finding Labels")
            except ValueError:
                raise UserError(
                    f"{path.name} under {self.root} lacks 'Image Index' / 'Finding Labels' columns"
                ) from None
            i_view = header.index("View Position") if "View Position" in header else None
            needed = [i for i in (i_image, i_findings, i_view) if i is not None]
            for number, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                image = row[i_image].strip() if len(row) > i_image else ""
                problem = entry_row_problem(row, header, needed, required=(i_image, i_findings))
                if problem:
                    # A malformed row quarantines its image (or, without an Image Index, stands for itself).
                    problems.setdefault(image or f"\0{number}", f"{path.name} line {number}: {problem}")
                    continue
                findings = [f.strip() for f in row[i_findings].split("|") if f.strip()]
                view = row[i_view].strip() if i_view is not None else ""
                entries[image] = {"findings": findings, "view": view}
        return entries, problems

    def _boxes(self) -> dict[str, list]:
        """Image Index -> [PixelBox | SourceProblem]; the coordinate columns are read by position (2..5)."""
        path = self.root / BBOX_CSV
        boxes: dict[str, list] = defaultdict(list)
        if not path.is_file():
            return boxes
        with open(path, newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            for number, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{BBOX_CSV} line {number}"
                image = row[0].strip()
                try:
                    values = [parse_float(cell, name) for cell, name in zip(row[2:6], BOX_COLUMNS)]
                except ValueError as e:  # names the column, never the cell (it may hold an identifier)
                    boxes[image].append(SourceProblem(f"{where}: {e}"))
                    continue
                found = sum(v is not None for v in values)
                if found < len(BOX_COLUMNS):
                    boxes[image].append(SourceProblem(f"{where}: the box needs 4 numbers (x, y, w, h), found {found}"))
                    continue
                x, y, w, h = values
                boxes[image].append(PixelBox(x, y, x + w, y + h, finding_name(row[1]), where))
        return boxes

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        paths, splits, boxes = self._image_paths(), self._splits(), self._boxes()
        entries, problems = self._entries()
        for image in sorted(set(entries) | set(problems) | set(boxes)):
            entry = entries.get(image, {"findings": [], "view": ""})
            annotations = list(boxes.get(image, []))
            if image in problems:  # quarantined at the read stage with the row's problem
                file = (
                    f"{self._entry_csv().name}:line {image[1:]}"
                    if image.startswith("\0")
                    else paths.get(image, f"images/{image}")
                )
                yield SourceItem(
                    source=r.name,
                    root=str(self.root),
                    file=file,
                    modality=r.modality,
                    annotations=[SourceProblem(problems[image]), *annotations],
                )
                continue
            findings = [f for f in entry["findings"] if f != NO_FINDING]
            labels = [finding_name(f) for f in findings] or ["normal"]
            box_labels = [a.label for a in annotations if isinstance(a, PixelBox)]
            labels += [b for b in dict.fromkeys(box_labels) if b not in labels]
            shown = ", ".join(entry["findings"]) or ", ".join(dict.fromkeys(box_labels))
            text = f"Finding labels (mined from the report): {shown}." if shown else None
            if text and entry["view"]:
                text += f" View position: {entry['view']}."
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=paths.get(image, f"images/{image}"),
                modality=r.modality,
                organ=r.organ,
                disease=", ".join(label for label in labels if label != "normal") or None,
                labels=labels,
                split=splits.get(image, r.split),
                reference_text=text,
                annotations=annotations,
                expert=r.expert,
                orientation=view_position(entry["view"]),
                patient_left_on_image=patient_left_for_view(entry["view"]),
            )


def view_position(view: str) -> str | None:
    """The table's View Position when it is a known projection (PA, AP, …); free text is not copied."""
    from medtrinity.sources.imaging import VIEW_POSITIONS

    return view.upper() if view.upper() in VIEW_POSITIONS else None
