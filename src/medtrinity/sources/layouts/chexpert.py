"""CheXpert (Stanford ML Group), as the small release unpacks: `CheXpert-v1.0-small/train.csv`,
`valid.csv` and the image tree their `Path` column names (`CheXpert-v1.0-small/train/patient…/study…/
view1_frontal.jpg`).

PATH may be the `CheXpert-v1.0-small` folder or its parent. Items are rooted at the parent, so
`origin.file` is the CSV's own `Path` whichever folder was given. Labels: 1.0 → the finding, -1.0 →
"<finding> (uncertain)" (never counted as positive), 0.0/blank → nothing. Sex and Age are not copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, layout_options
from medtrinity.sources.qa_text import (
    CsvRow,
    problem_item,
    chexpert_labels,
    disease_from_labels,
    iter_sorted,
    patient_left_for_view,
    read_csv_rows,
)

FOLDER = "CheXpert-v1.0-small"
TABLES = {"train.csv": "train", "valid.csv": "val"}


class CheXpertOptions(LayoutOptions):
    folder: str = FOLDER  # the folder under PATH holding train.csv and valid.csv


@register_layout("chexpert")
class CheXpertLayout:
    Options = CheXpertOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.folder_name = layout_options(self, recipe).folder

    def dataset_folder(self) -> Path:
        """The folder holding train.csv/valid.csv: PATH itself or PATH/CheXpert-v1.0-small."""
        if any((self.root / t).is_file() for t in TABLES):
            return self.root
        return self.root / self.folder_name

    def check(self) -> None:
        folder = self.dataset_folder()
        if not any((folder / t).is_file() for t in TABLES):
            raise UserError(
                f"{self.recipe.name} expects {self.folder_name}/train.csv (or valid.csv) under {self.root}, "
                f"or PATH to be the {self.folder_name} folder: train.csv is missing"
            )

    def items(self) -> Iterator[SourceItem]:
        folder = self.dataset_folder()
        found: list[SourceItem] = []
        for table, split in TABLES.items():
            if (folder / table).is_file():
                _, rows = read_csv_rows(folder / table)
                found += [self._item(folder, table, split, row) for row in rows]
        yield from iter_sorted(found)

    def _item(self, folder: Path, table: str, split: str, row: CsvRow) -> SourceItem:
        r = self.recipe
        base = str(folder.parent)
        where = f"{folder.name}/{table} line {row.line}"
        # Paths name the published folder; rebase them on the folder actually found (it may be renamed).
        published = (row.values.get("Path") or "").strip()
        parts = published.split("/", 1)
        file = f"{folder.name}/{parts[1]}" if len(parts) == 2 and parts[1] else ""
        if row.problem or not file:
            problem = row.problem or f"Path {published!r} is not a path under {self.folder_name}/"
            return problem_item(
                source=r.name,
                root=base,
                file=file or where,
                split=split,
                problem=f"{folder.name}/{problem}" if row.problem else f"{where}: {problem}",
            )
        try:
            labels = chexpert_labels(row.values)
        except ValueError as err:
            return problem_item(source=r.name, root=base, file=file, split=split, problem=f"{where}: {err}")
        view = (row.values.get("AP/PA") or "").strip() or None
        if (row.values.get("Frontal/Lateral") or "").strip() == "Lateral":
            view = "LATERAL"
        return SourceItem(
            source=r.name,
            root=base,
            file=file,
            modality=r.modality,
            organ=r.organ,
            disease=disease_from_labels(labels),
            labels=labels,
            split=split,
            expert=r.expert or "auto",
            orientation=view,
            patient_left_on_image=patient_left_for_view(view),
        )
