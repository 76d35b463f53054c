"""The output folder of a build: atomic Parquet shards, the quarantine, per-shard progress, the manifest.

A shard is finished when its marker `_progress/part-NNNNN.json` exists; the marker is written last,
after the data and quarantine files have been renamed into place, so a run killed at any instant
(even SIGKILL) leaves either a finished shard or one that `--resume` redoes from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medtrinity.errors import UserError
from medtrinity.records import QUARANTINE_SCHEMA, SCHEMA

MANIFEST = "manifest.json"


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # Small row groups keep readers streaming: a row carries a whole PNG.
    pq.write_table(table, tmp, row_group_size=128, compression="zstd")
    os.replace(tmp, path)


class ShardStore:
    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.data_dir = self.out / "data"
        self.quarantine_dir = self.out / "quarantine"
        self.progress_dir = self.out / "_progress"
        self.cache_dir = self.out / "cache"

    def prepare(self, identity: dict[str, Any], resume: bool, overwrite: bool) -> None:
        """Make the folder ready; refuse to mix two different runs in one folder."""
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--out {self.out} is a file; give a folder for the dataset")
        run_file = self.progress_dir / "run.json"
        existing = run_file.exists() or (self.out / MANIFEST).exists()
        if existing and resume:
            saved = json.loads(run_file.read_text()) if run_file.exists() else None
            if saved != identity:
                raise UserError(
                    f"{self.out} was started with other settings, recipes or input files; resume with the same ones, "
                    "or pass --overwrite to start again"
                )
        elif existing and not overwrite:
            raise UserError(f"{self.out} already holds a build: pass --resume to continue it or --overwrite to replace it")
        elif existing:
            for sub in (self.data_dir, self.quarantine_dir, self.progress_dir):
                shutil.rmtree(sub, ignore_errors=True)
            (self.out / MANIFEST).unlink(missing_ok=True)
        try:
            for sub in (self.data_dir, self.quarantine_dir, self.progress_dir, self.cache_dir):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the output folder {self.out}: {err.strerror}") from None
        for stale in self.out.glob("*/.*.tmp-*"):  # left by a killed run
            stale.unlink(missing_ok=True)
        _atomic_write_bytes(run_file, json.dumps(identity, sort_keys=True).encode())

    def is_done(self, index: int) -> bool:
        return (self.progress_dir / f"{shard_name(index)}.json").exists()

    def write_shard(
        self, index: int, rows: list[dict], quarantined: list[dict], counts: dict[str, dict[str, int]],
        extra: dict | None = None,
    ) -> None:
        name = shard_name(index)
        for folder, records, schema in ((self.data_dir, rows, SCHEMA), (self.quarantine_dir, quarantined, QUARANTINE_SCHEMA)):
            path = folder / f"{name}.parquet"
            if records:
                _atomic_write_table(path, pa.Table.from_pylist(records, schema=schema))
            else:
                path.unlink(missing_ok=True)  # a half-finished earlier attempt may have left one
        marker = {"shard": index, "written": len(rows), "quarantined": len(quarantined), "sources": counts,
                  **(extra or {})}
        _atomic_write_bytes(self.progress_dir / f"{name}.json", json.dumps(marker).encode())

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
