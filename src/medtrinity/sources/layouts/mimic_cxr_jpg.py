"""MIMIC-CXR-JPG 2.0.0 (PhysioNet), as published: `files/pNN/p<subject>/s<study>/<dicom_id>.jpg`,
`mimic-cxr-2.0.0-metadata.csv` (dicom_id, subject_id, study_id, …, ViewPosition, …),
`mimic-cxr-2.0.0-chexpert.csv` (subject_id, study_id, 14 observations), `mimic-cxr-2.0.0-split.csv`
(dicom_id, study_id, subject_id, split); each CSV may be the `.csv.gz` PhysioNet ships.

Reports ship separately (mimic-cxr-reports.zip unpacks to `files/pNN/p<subject>/s<study>.txt`); they are
read from that place under PATH, or under PATH/mimic-cxr-reports/. Only the FINDINGS and IMPRESSION
sections become `reference_text`. Subject and study ids are identifiers: they appear only in the
publisher's file path (`origin.file`), never in labels or text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.qa_text import (
    CsvRow,
    problem_item,
    chexpert_labels,
    disease_from_labels,
    find_table,
    iter_sorted,
    patient_left_for_view,
    read_csv_rows,
)

METADATA = "mimic-cxr-2.0.0-metadata.csv"
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv"
SPLIT = "mimic-cxr-2.0.0-split.csv"
REPORT_SECTIONS = ("FINDINGS", "IMPRESSION")
SPLIT_NAMES = {"train": "train", "validate": "val", "test": "test"}
# A section header: an upper-case phrase at the start of a line, followed by a colon.
_HEADER = re.compile(r"^\s*([A-Z][A-Z &/()-]*[A-Z)]):", re.MULTILINE)
_DIGITS = re.compile(r"^\d+$")


def report_sections(text: str, wanted: tuple[str, ...] = REPORT_SECTIONS) -> str | None:
    """The wanted sections of a free-text report, "FINDINGS: …" then "IMPRESSION: …", whitespace folded."""
    headers = list(_HEADER.finditer(text))
    found: dict[str, str] = {}
    for i, header in enumerate(headers):
        name = header.group(1).strip()
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = " ".join(text[header.end() : end].split())
        if name in wanted and body and name not in found:
            found[name] = body
    return "\n".join(f"{name}: {found[name]}" for name in wanted if name in found) or None


def study_path(subject: str, study: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}"


@register_layout("mimic-cxr-jpg")
class MimicCxrJpgLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root

    def check(self) -> None:
        expects = f"{self.recipe.name} expects {METADATA}, {CHEXPERT}, {SPLIT} and files/ under {self.root}"
        if find_table(self.root, METADATA) is None:
            raise UserError(f"{expects}: {METADATA} is missing")
        if not (self.root / "files").is_dir():
            raise UserError(f"{expects}: files/ is missing")

    def _table(self, name: str) -> list[CsvRow]:
        path = find_table(self.root, name)
        return read_csv_rows(path)[1] if path else []

    def _labels_by_study(self) -> dict[tuple[str, str], CsvRow]:
        return {(r.values.get("subject_id", ""), r.values.get("study_id", "")): r for r in self._table(CHEXPERT)}

    def _split_by_image(self) -> dict[str, str]:
        return {r.values.get("dicom_id", ""): r.values.get("split", "") for r in self._table(SPLIT) if not r.problem}

    def _report(self, subject: str, study: str) -> str | None:
        for base in (self.root, self.root / "mimic-cxr-reports"):
            path = base / f"{study_path(subject, study)}.txt"
            if path.is_file():
                return report_sections(path.read_text(encoding="utf-8", errors="replace"))
        return None

    def items(self) -> Iterator[SourceItem]:
        labels, splits = self._labels_by_study(), self._split_by_image()
        yield from iter_sorted(self._item(row, labels, splits) for row in self._table(METADATA))

    def _item(self, row: CsvRow, labels: dict, splits: dict[str, str]) -> SourceItem:
        r, v = self.recipe, row.values
        where = f"{METADATA} line {row.line}"
        dicom_id, subject, study = (v.get(k, "").strip() for k in ("dicom_id", "subject_id", "study_id"))
        problem = row.problem
        if not problem and not (dicom_id and _DIGITS.match(subject) and _DIGITS.match(study)):
            problem = f"{where}: dicom_id, subject_id and study_id must be set (subject and study numeric)"
        if problem:
            # The row's line number keys it: its ids are unreliable and must not be echoed.
            return problem_item(source=r.name, root=str(self.root), file=f"{METADATA}#line{row.line}", problem=problem)
        file = f"{study_path(subject, study)}/{dicom_id}.jpg"
        split_value = splits.get(dicom_id)
        study_labels: list[str] = []
        label_row = labels.get((subject, study))
        if label_row is not None and label_row.problem:
            return problem_item(source=r.name, root=str(self.root), file=file, problem=label_row.problem)
        if label_row is not None:
            try:
                study_labels = chexpert_labels(label_row.values)
            except ValueError as err:
                return problem_item(
                    source=r.name, root=str(self.root), file=file, problem=f"{CHEXPERT} line {label_row.line}: {err}"
                )
        view = v.get("ViewPosition", "").strip() or None
        return SourceItem(
            source=r.name,
            root=str(self.root),
            file=file,
            modality=r.modality,
            organ=r.organ,
            disease=disease_from_labels(study_labels),
            labels=study_labels,
            split=SPLIT_NAMES.get(split_value or "", r.split),
            reference_text=self._report(subject, study),
            expert=r.expert or "auto",
            orientation=view,
            patient_left_on_image=patient_left_for_view(view),
        )
