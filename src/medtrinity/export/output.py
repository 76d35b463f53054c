"""The export's folder: written under a temporary name beside `--out` and renamed at the end, so an
interrupted export leaves no half folder; an existing `--out` is replaced only with `--overwrite`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medtrinity.errors import UserError


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
