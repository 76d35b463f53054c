"""The export's folder: written under a temporary name beside `--out` and renamed at the end, so an
interrupted export leaves no half folder; an existing `--out` is replaced only with `--overwrite`. And the
Parquet files of a split, for the exports written as Parquet (hf, medtrinity-25m)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medtrinity.errors import UserError

ROWS_BUFFERED = 64  # rows (with their images) held before a write


def _temporary(out: Path, what: str) -> Path:
    return out.parent / f".{out.name}.{what}"


def check_out(out: Path, build_folder: Path, overwrite: bool) -> None:
    """Refuse an --out that would lose or mix files; touches nothing."""
    out, build_folder = out.resolve(), build_folder.resolve()
    if out == build_folder or build_folder.is_relative_to(out):
        raise UserError(f"--out {out} would replace the build itself; give a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out} already exists; pass --overwrite to replace it, or give another folder")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: its parent folder {out.parent} does not exist")


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes `out` (replacing it), on any error it is removed."""
    out = out.resolve()
    work, old = _temporary(out, "export-tmp"), _temporary(out, "export-old")
    for stale in (work, old):  # left by an export that was killed
        shutil.rmtree(stale, ignore_errors=True)
    work.mkdir()
    try:
        yield work
        if out.exists():
            os.replace(out, old)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


class SplitFiles:
    """One split's Parquet files under `data/`, a new one every `size` rows, named by `file_name(split, k)`;
    rows are written ROWS_BUFFERED at a time, so an export holds a few images, not a split."""

    def __init__(self, folder: Path, split: str, size: int, schema, file_name: Callable[[str, int], str]) -> None:
        self.folder, self.split, self.size, self.schema, self.file_name = folder, split, size, schema, file_name
        self.rows: list[dict[str, Any]] = []
        self.files = 0
        self.count = 0
        self._writer = None

    def add(self, row: dict[str, Any]) -> None:
        import pyarrow.parquet as pq

        if self.count % self.size == 0:
            self.close()
            self._writer = pq.ParquetWriter(self.folder / "data" / self.file_name(self.split, self.files), self.schema)
            self.files += 1
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= ROWS_BUFFERED:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows and self._writer is not None:
            self._writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
