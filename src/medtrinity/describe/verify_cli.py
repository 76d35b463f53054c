"""`medtrinity verify DIR`: re-verify every record of a written build and count the verdicts.

Each record is read back as the build wrote it (`records.row_to_sample`), its text — the description, or
another text column such as the source's reference text — verified against it, and the pass / fail /
not-verifiable counts printed per check and per source. The build itself is not changed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from medtrinity.errors import UserError
from medtrinity.records import CHECK_STATUSES

TEXT_COLUMNS = ("description", "reference_text")


def add_verify_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="re-verify the texts of a written build against its records",
        description="Verify every record's text against its metadata and ROIs, and count "
        "pass / fail / not-verifiable per check and source.",
    )
    p.add_argument("dir", metavar="DIR", help="a build's output folder (holds data/part-*.parquet)")
    p.add_argument(
        "--column", choices=TEXT_COLUMNS, default="description", help="the text column to verify (default: description)"
    )


def _parts(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give the output folder of a build")
    parts = sorted((folder / "data").glob("part-*.parquet"))
    if not parts:
        raise UserError(f"{folder} is not a medtrinity build: it has no data/part-*.parquet")
    return parts


def tally(folder: Path, column: str = "description") -> tuple[Counter, Counter]:
    """(verdicts per (source, check, status), records per (source, 'verified'|'no text'))."""
    import pyarrow.parquet as pq

    from medtrinity.describe.verify import verify
    from medtrinity.records import SCHEMA, row_to_sample

    verdicts: Counter = Counter()
    records: Counter = Counter()
    columns = [name for name in SCHEMA.names if name != "image"]  # the pixels are not needed to read text
    for part in _parts(folder):
        try:
            table = pq.read_table(part, columns=columns)
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{part} is not a readable medtrinity shard ({type(err).__name__})") from None
        for row in table.to_pylist():
            sample = row_to_sample(row | {"image": {"bytes": None, "path": None}})
            text = getattr(sample, column)
            if not text:
                records[(sample.source, "no text")] += 1
                continue
            records[(sample.source, "verified")] += 1
            for check in verify(sample, text):
                verdicts[(sample.source, check.name, check.status)] += 1
    return verdicts, records


def print_tally(verdicts: Counter, records: Counter, column: str) -> None:
    """A row per source and check (and per check over all sources): pass, fail, not-verifiable counts."""
    from rich.console import Console
    from rich.table import Table

    sources = sorted({source for source, kind in records if kind == "verified"})
    checks = list(dict.fromkeys(name for _, name, _ in verdicts))
    table = Table(title=f"medtrinity verify — {column}")
    for heading in ("source", "check", *CHECK_STATUSES):
        table.add_column(heading, justify="left" if heading in ("source", "check") else "right")
    for source in [*sources, None]:
        chosen = sources if source is None else [source]
        for i, name in enumerate(checks):
            counts = [sum(verdicts[(s, name, status)] for s in chosen) for status in CHECK_STATUSES]
            cells = [str(n) for n in counts]
            if counts[1]:
                cells[1] = f"[red]{cells[1]}[/red]"
            label = "" if i else ("all" if source is None else source)
            row = [label, name, *cells]
            table.add_row(*(f"[bold]{c}" for c in row) if source is None else row, end_section=i == len(checks) - 1)
    console = Console()
    console.print(table)
    verified = sum(n for (_, kind), n in records.items() if kind == "verified")
    missing = sum(n for (_, kind), n in records.items() if kind == "no text")
    tail = f"; {missing} have no {column} and were not verified" if missing else ""
    console.print(f"{verified} records verified{tail}", markup=False, highlight=False)


def run_verify(args) -> int:
    folder = Path(args.dir)
    verdicts, records = tally(folder, args.column)
    print_tally(verdicts, records, args.column)
    return 0
