"""Running an export in a test."""

from __future__ import annotations

from pathlib import Path

from medtrinity.export.run import ExportOptions, ExportSummary, export_build


def export(export_format: str, build: Path, out: Path, **options) -> ExportSummary:
    return export_build(export_format, build, out, ExportOptions(**options))


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
