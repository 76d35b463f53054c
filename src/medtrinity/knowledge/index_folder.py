"""The folder `kb build --out` writes: never replaced without `--overwrite`, never mixed with other files.

An index is written into a hidden staging folder beside the target and renamed into place once complete, so
a failed or interrupted build leaves the previous index (or nothing) behind, and an index built with other
options never keeps a stale part of the old one (a `dense/` folder from an earlier `--dense` build).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from medtrinity.errors import UserError
from medtrinity.knowledge.dense import DENSE_DIR
from medtrinity.knowledge.index import BM25_DIR, META_FILE, PASSAGES_FILE

# What a folder written by `kb build` holds; "sources.json" is the default KB's record of its data packages.
INDEX_ENTRIES = frozenset({META_FILE, PASSAGES_FILE, BM25_DIR, DENSE_DIR, "sources.json"})


def check_index_out(out: Path, overwrite: bool) -> None:
    """Refuse an `--out` that holds an index (unless `overwrite`) or anything that is not an index."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the index")
    names = {entry.name for entry in out.iterdir()} if out.is_dir() else set()
    if not names:
        return
    # An index whose save was cut short has no META_FILE yet, but is still only index files.
    if not names <= INDEX_ENTRIES:
        raise UserError(f"--out {out} holds files that are not a knowledge index; give a new or empty folder")
    if not overwrite:
        raise UserError(f"--out {out} already holds a knowledge index; pass --overwrite to replace it")


def write_index_folder(out: Path, write: Callable[[Path], None]) -> None:
    """Call `write(folder)` on a staging folder beside `out`, then put it in place of `out`.

    Folders created for `out`'s parents are removed again if writing fails.
    """
    created = [parent for parent in reversed(out.absolute().parents) if not parent.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        staging.chmod(_folder_mode())  # mkdtemp makes it private; an index is as shareable as any folder
        write(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in reversed(created):
            try:
                parent.rmdir()
            except OSError:  # something else was put there meanwhile
                break
        raise


def _folder_mode() -> int:
    """The mode `mkdir` would give a new folder under the current umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask
