"""Helpers the QA and chest-radiograph layouts share: CSV rows with their line numbers, CheXpert label
columns, QA entries grouped by image, "Q: … A: …" reference text, radiograph view positions, and an item
that stands for a row too broken to become a record (it lands in the quarantine with the row's problem as
the reason).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from medtrinity.sources.base import SourceItem
from medtrinity.sources.annotations import SourceProblem

# The 14 observations of the CheXpert labeler, as CheXpert and MIMIC-CXR-JPG name their columns.
CHEXPERT_FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
# Observations that are not a disease: never used as the record's disease.
NOT_A_DISEASE = {"No Finding", "Support Devices"}
UNCERTAIN_SUFFIX = " (uncertain)"
# View positions whose display convention puts the patient's left on the image's right (frontal
# radiographs viewed as if facing the patient); lateral views have no left/right side.
FRONTAL_VIEWS = {"PA", "AP", "AP AXIAL", "PA LLD", "AP LLD", "AP RLD", "PA RLD"}


@dataclass
class CsvRow:
    line: int  # line number in the file (the header is line 1)
    values: dict[str, str]
    problem: str | None = None  # wrong field count: the row cannot be trusted


def problem_item(problem: str, **fields) -> SourceItem:
    """An entry of a source's table that cannot become a record: counted as seen, quarantined with `problem`."""
    return SourceItem(annotations=[SourceProblem(problem)], **fields)


def open_text(path: Path) -> io.TextIOBase:
    """A text file, gzip-compressed or not (PhysioNet ships the MIMIC CSVs as .csv.gz)."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_csv_rows(path: Path) -> tuple[list[str], list[CsvRow]]:
    """Header and rows of a CSV file; a row with too many or too few fields carries a problem."""
    with open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = []
        for fields in reader:
            if not fields:
                continue
            line = reader.line_num
            problem = None
            if len(fields) != len(header):
                problem = f"{path.name} line {line}: has {len(fields)} fields, the header has {len(header)}"
            rows.append(CsvRow(line, dict(zip(header, fields)), problem))
    return header, rows


def find_table(root: Path, name: str) -> Path | None:
    """`name` (a .csv) or its gzip-compressed form, whichever the folder holds."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def chexpert_labels(values: dict[str, str], findings: Iterable[str] = CHEXPERT_FINDINGS) -> list[str]:
    """Labels from CheXpert label columns: 1.0 positive, -1.0 kept as "<finding> (uncertain)", 0.0 and
    blank say nothing. Raises ValueError naming the column for any other value."""
    labels = []
    for finding in findings:
        raw = (values.get(finding) or "").strip()
        if raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{finding} is not 1.0, 0.0, -1.0 or blank") from None
        if value == 1.0:
            labels.append(finding)
        elif value == -1.0:
            labels.append(finding + UNCERTAIN_SUFFIX)
        elif value != 0.0:
            raise ValueError(f"{finding} is not 1.0, 0.0, -1.0 or blank")
    return labels


def disease_from_labels(labels: Iterable[str]) -> str | None:
    """The definite positive findings (uncertain ones excluded), lower-case, as the record's disease."""
    positives = [lab.lower() for lab in labels if lab in CHEXPERT_FINDINGS and lab not in NOT_A_DISEASE]
    return ", ".join(positives) or None


def qa_reference_text(pairs: Iterable[tuple[str, str]]) -> str | None:
    """QA pairs as reference text, one "Q: … A: …" line each, in the source's order, duplicates dropped."""
    lines = (f"Q: {' '.join(str(question).split())} A: {' '.join(str(answer).split())}" for question, answer in pairs)
    return "\n".join(dict.fromkeys(lines)) or None


def qa_entries_by_image(
    data: Any, table: str, key: str, source: str, root: str
) -> tuple[dict[str, list[dict]], list[SourceItem]]:
    """A QA file's entries grouped by the image their `key` field names (stripped), in file order, and one
    problem item per entry that names no image (file "<table>#entry<i>")."""
    by_image: dict[str, list[dict]] = {}
    problems: list[SourceItem] = []
    for index, entry in enumerate(data if isinstance(data, list) else [data]):
        name = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            problems.append(
                problem_item(f"{table} entry {index}: no {key}", source=source, root=root, file=f"{table}#entry{index}")
            )
            continue
        by_image.setdefault(name.strip(), []).append(entry)
    return by_image, problems


def patient_left_for_view(view: str | None) -> str | None:
    """Image side showing the patient's left: "right" for frontal views (radiological convention)."""
    return "right" if (view or "").strip().upper() in FRONTAL_VIEWS else None


def iter_sorted(items: Iterable[SourceItem]) -> Iterator[SourceItem]:
    """Items in file order (then slice/frame), the deterministic order shards rely on."""
    yield from sorted(items, key=lambda it: (it.file, it.slice or 0, it.frame or 0))
