"""One export: check everything, read the build once without images (selection.scan), then stream the
selected records, shard by shard, into the format's writer inside a temporary folder renamed at the end.

A writer (one module per format, class `Writer`) is made with (folder, options, catalog, build), gets each
selected row (`add`, the row as the build stored it) and says at `close` what it wrote per split.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtrinity.errors import UserError
from medtrinity.export.boxes import BOX_FORMATS
from medtrinity.export.build_reader import Build
from medtrinity.export.output import atomic_folder, check_out
from medtrinity.export.selection import LEFT_OUT_REASONS, Catalog, Selection, read_exclude_file, scan

FORMATS = ("llava", "webdataset", "coco", "hf", "medtrinity-25m")  # module: export/<format, "-" as "_">.py
LLAVA_KINDS = ("caption", "qa", "grounded", "all")
SUMMARY_FILE = "export.json"


@dataclass
class ExportOptions:
    kind: str = "all"  # llava: caption, qa, grounded or all
    box_format: str = "norm"  # llava: boxes.BOX_FORMATS
    shard_size: int = 1000  # webdataset: samples per tar; hf: rows per Parquet file
    include_expert: bool = False
    include_failed: bool = False
    include_test: bool = False
    exclude: str | None = None  # a file of record ids
    overwrite: bool = False

    def check(self) -> None:
        if self.kind not in LLAVA_KINDS:
            raise UserError(f"--kind {self.kind!r} is not one of {', '.join(LLAVA_KINDS)}")
        if self.box_format not in BOX_FORMATS:
            raise UserError(f"--box-format {self.box_format!r} is not one of {', '.join(BOX_FORMATS)}")
        if self.shard_size < 1:
            raise UserError("--shard-size must be a positive number of samples")


@dataclass
class ExportSummary:
    format: str
    out: str
    written: dict[str, int]  # split -> records written
    details: dict[str, Any]  # what else the writer reports (conversations, annotations, shards …)
    catalog: Catalog
    quarantined: int
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "options": self.options,
            "written": dict(sorted(self.written.items())),
            "records_written": sum(self.written.values()),
            **self.details,
            "left_out": {reason: self.catalog.left_out[reason] for reason in LEFT_OUT_REASONS},
            "failed_checks": dict(sorted(self.catalog.failed_checks.items())),
            "quarantined_in_build": self.quarantined,
            "exclude_ids_not_in_build": self.catalog.excluded_unknown,
            "sources": dict(sorted(self.catalog.sources.items())),
        }

    def lines(self) -> list[str]:
        splits = ", ".join(f"{split} {n}" for split, n in sorted(self.written.items()))
        lines = [f"wrote {sum(self.written.values())} records ({splits}) as {self.format} to {self.out}"]
        for key, value in self.details.items():
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
            lines.append(f"  {key.replace('_', ' ')}: {shown}")
        for reason, text in LEFT_OUT_REASONS.items():
            if self.catalog.left_out[reason]:
                line = f"left out {self.catalog.left_out[reason]}: {text}"
                if reason == "failed":
                    line += " — " + ", ".join(f"{name} {n}" for name, n in sorted(self.catalog.failed_checks.items()))
                lines.append(line)
        if self.quarantined:
            lines.append(f"not exported {self.quarantined}: quarantined by the build (see its quarantine/)")
        if self.catalog.excluded_unknown:
            lines.append(f"note: {self.catalog.excluded_unknown} ids in --exclude name no record of this build")
        return lines


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("export", total=total)
        yield lambda n: progress.advance(task, n)


def _applied(export_format: str, options: ExportOptions) -> dict[str, Any]:
    """The options that shaped this export, as export.json records them (no paths: the file stays portable)."""
    applied = {
        "include_failed": options.include_failed,
        "include_test": options.include_test,
        "exclude": bool(options.exclude),
    }
    if export_format == "llava":
        applied |= {"kind": options.kind, "box_format": options.box_format}
    if export_format in ("llava", "coco", "medtrinity-25m"):
        applied["include_expert"] = options.include_expert
    if export_format in ("webdataset", "hf", "medtrinity-25m"):
        applied["shard_size"] = options.shard_size
    return applied


def writer_class(export_format: str):
    if export_format not in FORMATS:
        raise UserError(f"unknown export format {export_format!r}; choose from {', '.join(FORMATS)}")
    return importlib.import_module(f"medtrinity.export.{export_format.replace('-', '_')}").Writer


def export_build(
    export_format: str,
    build_dir: str | Path,
    out: str | Path,
    options: ExportOptions | None = None,
    show_progress: bool = False,
) -> ExportSummary:
    """Export the build in `build_dir` as `export_format` into `out`; everything is checked before `out` is made."""
    options = options or ExportOptions()
    options.check()
    writer = writer_class(export_format)
    build, out = Build(build_dir), Path(out)
    selection = Selection(
        include_failed=options.include_failed,
        include_test=options.include_test,
        include_expert=options.include_expert,
        exclude=read_exclude_file(options.exclude) if options.exclude else set(),
    )
    check_out(out, build.folder, options.overwrite)
    catalog = scan(build, selection)
    if not catalog.selected:
        reasons = "; ".join(f"{n} {LEFT_OUT_REASONS[r]}" for r, n in catalog.left_out.items() if n)
        raise UserError(f"no record of {build.folder} is left to export ({reasons})")
    getattr(writer, "check_available", lambda: None)()  # a format's library is missing: say so before writing
    with atomic_folder(out) as work:
        sink = writer(work, options, catalog, build)
        with _progress(catalog.selected, show_progress) as advance:
            for batch in build.batches():
                chosen = [row for row in batch if selection.reason_left_out(row) is None]
                for row in chosen:
                    sink.add(row)
                advance(len(chosen))
        written, details = sink.close()
        summary = ExportSummary(
            export_format,
            str(out),
            written,
            details,
            catalog,
            build.quarantined,
            options=_applied(export_format, options),
        )
        (work / SUMMARY_FILE).write_text(json.dumps(summary.as_dict(), indent=1) + "\n", encoding="utf-8")
    return summary
