"""The output folder of a build: atomic Parquet shards, the quarantine, per-shard progress, the manifest.

A shard is finished when its marker `_progress/part-NNNNN.json` exists; the marker is written last,
after the data and quarantine files have been renamed into place, so a run killed at any instant
(even SIGKILL) leaves either a finished shard or one that `--resume` redoes from scratch.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medtrinity.errors import UserError
from medtrinity.records import QUARANTINE_SCHEMA, SCHEMA

MANIFEST = "manifest.json"
RUN_FILE = "run.json"  # in _progress/: the identity of the run (see runner.run_identity)
# What a build puts in its folder: anything else in a folder without a build means it is someone else's folder.
OWN_NAMES = frozenset({"data", "quarantine", "_progress", "cache", MANIFEST, "errors.log"})
_TEMP_NAME = re.compile(r"\..+\.tmp-\d+")  # _atomic_write_*: .NAME.tmp-PID


def _listing(names: list[str], shown: int = 3) -> str:
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


ROWS_PER_GROUP = 128  # small row groups keep readers streaming: a row carries a whole image
IMAGE_COLUMN = "image.bytes"  # PNG or JPEG bytes: compressed already, so zstd only costs time (8x the write)


@functools.cache
def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """zstd and dictionaries for every Parquet column of `schema` but the stored images."""
    buffer = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), buffer)
    paths = [column.path for column in pq.ParquetFile(pa.BufferReader(buffer.getvalue())).schema]
    return {
        "compression": {path: "none" if path == IMAGE_COLUMN else "zstd" for path in paths},
        "use_dictionary": [path for path in paths if path != IMAGE_COLUMN],
    }


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    tmp = _temporary(path)
    pq.write_table(table, tmp, row_group_size=ROWS_PER_GROUP, **parquet_write_options(table.schema))
    os.replace(tmp, path)


class DataWriter:
    """A shard's data file written a row group at a time as its records finish (so writing overlaps the
    model's answers, and the shard never holds its rows), under a temporary name until `commit`."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, _temporary(path)
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, SCHEMA, **parquet_write_options(SCHEMA))
        self._writer.write_table(table, row_group_size=ROWS_PER_GROUP)
        self.rows += table.num_rows

    def commit(self) -> None:
        """The file in place under its own name (none when no row was written: an earlier attempt's is removed)."""
        if self._writer is None:
            self.path.unlink(missing_ok=True)
            return
        self._writer.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self.tmp.unlink(missing_ok=True)

    def __len__(self) -> int:
        return self.rows


class ShardStore:
    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.data_dir = self.out / "data"
        self.quarantine_dir = self.out / "quarantine"
        self.progress_dir = self.out / "_progress"
        self.cache_dir = self.out / "cache"

    def holds_build(self) -> bool:
        return (self.progress_dir / RUN_FILE).exists() or (self.out / MANIFEST).exists()

    def saved_identity(self) -> dict[str, Any] | None:
        """The identity of the build in this folder (`_progress/run.json`), or None when there is none."""
        try:
            saved = json.loads((self.progress_dir / RUN_FILE).read_text())
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) else None

    def check(self, identity: dict[str, Any], resume: bool, overwrite: bool) -> None:
        """Refuse to mix two different runs, or a run and unrelated files, in one folder; touches nothing."""
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--out {self.out} is a file; give a folder for the dataset")
        run_file = self.progress_dir / RUN_FILE
        existing = self.holds_build()
        if not existing and self.out.is_dir():
            foreign = sorted(
                p.name for p in self.out.iterdir() if p.name not in OWN_NAMES and not _TEMP_NAME.fullmatch(p.name)
            )
            if foreign:
                raise UserError(
                    f"--out {self.out} is not empty and holds no build ({_listing(foreign)}); "
                    "give a new or empty folder"
                )
        if existing and resume:
            saved = json.loads(run_file.read_text()) if run_file.exists() else None
            if saved is None:
                raise UserError(
                    f"{self.out} holds a build without its run record ({RUN_FILE}), so it cannot be "
                    "resumed; pass --overwrite to start again"
                )
            from medtrinity.pipeline.identity import identity_changes

            changes = identity_changes(saved, identity)
            if changes:
                raise UserError(
                    f"{self.out} was built with other settings ({'; '.join(changes)}); resume with the "
                    "same ones, or pass --overwrite to start again"
                )
        elif existing and not overwrite:
            raise UserError(
                f"{self.out} already holds a build: pass --resume to continue it or --overwrite to replace it"
            )

    def prepare(self, identity: dict[str, Any], resume: bool, overwrite: bool) -> None:
        """Make the folder ready, after the checks of `check`; a replaced build's files are removed first."""
        self.check(identity, resume, overwrite)
        if self.holds_build() and not resume:
            for sub in (self.data_dir, self.quarantine_dir, self.progress_dir):
                shutil.rmtree(sub, ignore_errors=True)
            (self.out / MANIFEST).unlink(missing_ok=True)
        try:
            for sub in (self.data_dir, self.quarantine_dir, self.progress_dir, self.cache_dir):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the output folder {self.out}: {err.strerror}") from None
        self.remove_stale_temporaries()
        _atomic_write_bytes(self.progress_dir / RUN_FILE, json.dumps(identity, sort_keys=True).encode())

    def remove_stale_temporaries(self) -> None:
        """Temp files a killed run left, in the folder itself (the manifest's) and in any folder below it."""
        for folder, _, files in os.walk(self.out):
            for name in files:
                if _TEMP_NAME.fullmatch(name):
                    (Path(folder) / name).unlink(missing_ok=True)

    def is_done(self, index: int) -> bool:
        return (self.progress_dir / f"{shard_name(index)}.json").exists()

    def data_writer(self, index: int) -> DataWriter:
        """A writer for shard `index`'s data file; `write_shard` puts it in place."""
        return DataWriter(self.data_dir / f"{shard_name(index)}.parquet")

    def write_shard(
        self,
        index: int,
        rows: list[dict] | DataWriter,
        quarantined: list[dict],
        counts: dict[str, dict[str, int]],
        extra: dict | None = None,
    ) -> None:
        name = shard_name(index)
        tables = [(self.quarantine_dir, quarantined, QUARANTINE_SCHEMA)]
        if isinstance(rows, DataWriter):
            rows.commit()  # written as the shard ran
        else:
            tables.insert(0, (self.data_dir, rows, SCHEMA))
        for folder, records, schema in tables:
            path = folder / f"{name}.parquet"
            if records:
                _atomic_write_table(path, pa.Table.from_pylist(records, schema=schema))
            else:
                path.unlink(missing_ok=True)  # a half-finished earlier attempt may have left one
        marker = {
            "shard": index,
            "written": len(rows),
            "quarantined": len(quarantined),
            "sources": counts,
            **(extra or {}),
        }
        _atomic_write_bytes(self.progress_dir / f"{name}.json", json.dumps(marker).encode())

    def unfinish(self, index: int) -> None:
        """Remove a shard's marker: from here until a new one is written, the shard is redone by --resume."""
        (self.progress_dir / f"{shard_name(index)}.json").unlink(missing_ok=True)

    def marker(self, index: int) -> dict[str, Any]:
        return json.loads((self.progress_dir / f"{shard_name(index)}.json").read_text())

    def shard_rows(self, index: int, folder: str = "data") -> list[dict]:
        """The rows of one written shard (data or quarantine); [] when it has none."""
        path = self.out / folder / f"{shard_name(index)}.parquet"
        return pq.read_table(path).to_pylist() if path.exists() else []

    def transient_ids(self, index: int) -> set[str]:
        """Ids of a shard's records quarantined for a transient reason (column `transient`; a quarantine written
        before the column existed has none)."""
        path = self.quarantine_dir / f"{shard_name(index)}.parquet"
        if not path.exists() or "transient" not in pq.read_schema(path).names:
            return set()
        table = pq.read_table(path, columns=["id", "transient"]).to_pylist()
        return {row["id"] for row in table if row["transient"]}

    def transient_count(self) -> int:
        """Records quarantined for a transient reason, over all finished shards."""
        return sum(len(self.transient_ids(m["shard"])) for m in self.markers())

    def markers(self) -> list[dict[str, Any]]:
        """The markers of the finished shards, in shard order."""
        return [json.loads(p.read_text()) for p in sorted(self.progress_dir.glob("part-*.json"))]

    def source_counts(self) -> dict[str, dict[str, int]]:
        totals: dict[str, Counter] = {}
        for marker in self.markers():
            for source, counts in marker["sources"].items():
                totals.setdefault(source, Counter()).update(counts)
        return {s: {k: int(c[k]) for k in ("seen", "written", "quarantined")} for s, c in sorted(totals.items())}

    def describer_usage(self) -> dict[str, int] | None:
        """Requests, cache hits, retries and tokens of the model describer, summed over the finished shards."""
        usages = [m["describer_usage"] for m in self.markers() if m.get("describer_usage")]
        if not usages:
            return None
        totals: Counter = Counter()
        for usage in usages:
            totals.update({key: int(value) for key, value in usage.items()})
        return dict(totals)

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        path = self.out / MANIFEST
        _atomic_write_bytes(path, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())
        return path
