"""What a build prints when it ends: the per-source summary table, quarantine reasons, examples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq


def print_summary(manifest: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"medtrinity build — {manifest['elapsed_seconds']} s")
    for column in ("source", "seen", "written", "quarantined"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, counts in manifest["sources"].items():
        table.add_row(source, *(str(counts[k]) for k in ("seen", "written", "quarantined")))
    totals = manifest["totals"]
    table.add_row("[bold]total", *(f"[bold]{totals[k]}" for k in ("seen", "written", "quarantined")))
    console.print(table)
    reasons = Counter()
    for path in sorted((out / "quarantine").glob("part-*.parquet")):
        for row in pq.read_table(path, columns=["stage", "reason"]).to_pylist():
            reasons[f"{row['stage']}: {row['reason']}"] += 1
    if reasons:
        console.print("[bold]quarantine reasons[/bold] (all in quarantine/):")
        for reason, n in reasons.most_common(5):
            console.print(f"  {n} × {reason}", markup=False, highlight=False)
    console.print(f"data: {out / 'data'}   manifest: {out / 'manifest.json'}", markup=False, highlight=False)


def print_examples(out: Path, n: int = 3) -> None:
    """Examples from different modalities, so the demo shows its range."""
    seen_modalities: set[str] = set()
    for path in sorted((out / "data").glob("part-*.parquet")):
        table = pq.read_table(path, columns=["id", "modality", "origin", "description"])
        for row in table.to_pylist():
            if row["modality"] in seen_modalities:
                continue
            if len(seen_modalities) == n:
                return  # enough shown: the remaining shards need not be read
            seen_modalities.add(row["modality"])
            print(f"\n[{row['modality']}] {row['origin']['file']} (id {row['id']})\n{row['description']}")
