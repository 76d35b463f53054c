"""What a build prints when it ends: the per-source summary table, quarantine reasons, examples."""

from __future__ import annotations

import re
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
    lines = quarantine_lines(out)
    if lines:
        console.print("[bold]quarantine reasons[/bold] (all in quarantine/):")
        for line in lines:
            console.print(f"  {line}", markup=False, highlight=False)
    retryable = manifest.get("quarantined_transient", 0)
    if retryable:
        console.print(
            f"{retryable} quarantined for transient reasons: rerun with --resume --retry-transient",
            markup=False,
            highlight=False,
        )
    console.print(f"data: {out / 'data'}   manifest: {out / 'manifest.json'}", markup=False, highlight=False)


# Reason kinds printed in full; the rest are counted in one "+N more" line.
MAX_REASON_KINDS = 8
# What is particular to one record in a reason: paths and file names, and numbers that differ between
# reasons of one kind (sizes, rows, values; "ISIC 2018" stays, as every such reason says it).
_PATH = re.compile(
    r"[^\s:'\"(),]*/[^\s:'\"(),]+"
    r"|[^\s/:'\"(),]+\.(?:png|jpe?g|tiff?|bmp|dcm|dicom|nii|gz|json|csv|txt|xml)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SLOT = "\x00"


def reason_template(reason: str, file: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(the reason with paths as "…" and numbers as slots, the numbers): reasons of one kind share the first."""
    text = _PATH.sub("…", reason.replace(file, "…") if file else reason)
    return _NUMBER.sub(_SLOT, text), tuple(_NUMBER.findall(text))


def _shared(template: str, numbers: list[tuple[str, ...]]) -> str:
    """The template with each number that all its reasons share put back, the others as "#"."""
    parts = template.split(_SLOT)
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        values = {n[i] for n in numbers}
        out += (values.pop() if len(values) == 1 else "#") + part
    return out


def quarantine_lines(out: Path) -> list[str]:
    """`n × stage: reason` per reason kind, most frequent first: every kind, or "+N more" after the first few.
    A kind of one record shows its own reason; a kind of several shows what they share."""
    kinds: dict[tuple[str, str], list] = {}
    example: dict[tuple[str, str], str] = {}
    for path in sorted((out / "quarantine").glob("part-*.parquet")):
        for row in pq.read_table(path, columns=["file", "stage", "reason"]).to_pylist():
            template, numbers = reason_template(row["reason"], row["file"])
            kinds.setdefault((row["stage"], template), []).append(numbers)
            example.setdefault((row["stage"], template), row["reason"])
    ranked = sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [
        f"{len(numbers)} × {stage}: {example[stage, template] if len(numbers) == 1 else _shared(template, numbers)}"
        for (stage, template), numbers in ranked[:MAX_REASON_KINDS]
    ]
    rest = ranked[MAX_REASON_KINDS:]
    if rest:
        count = sum(len(numbers) for _, numbers in rest)
        lines.append(f"+{len(rest)} more reason kinds ({count} records), in quarantine/")
    return lines


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
