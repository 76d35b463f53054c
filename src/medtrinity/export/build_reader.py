"""A build's output folder, read shard by shard: memory stays flat however large the build grows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medtrinity.errors import UserError

MANIFEST = "manifest.json"
BATCH_ROWS = 64  # rows decoded at a time: a batch of images, never a whole shard


class Build:
    """The data shards and manifest of a finished (or resumable) build in `folder`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"{self.folder} is not a folder; give the output folder of a build")
        self.parts = sorted((self.folder / "data").glob("part-*.parquet"))
        manifest = self.folder / MANIFEST
        if not manifest.is_file() or not (self.folder / "data").is_dir():
            raise UserError(f"{self.folder} is not a medtrinity build: it has no {MANIFEST} and data/ folder")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UserError(f"{manifest} is not readable JSON; is {self.folder} a medtrinity build?") from None
        self.rows = sum(self._metadata(part).num_rows for part in self.parts)
        if not self.rows:
            raise UserError(f"{self.folder} holds no record (data/ has no rows); nothing to export")

    @staticmethod
    def _metadata(part: Path):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(part).metadata
        except (OSError, ValueError):
            raise UserError(f"{part} is not a readable Parquet shard") from None

    @property
    def quarantined(self) -> int:
        return int((self.manifest.get("totals") or {}).get("quarantined") or 0)

    def licenses(self) -> dict[str, str]:
        """Source name -> the license its recipe states, for every source of the build."""
        from medtrinity.sources.base import load_recipe

        found: dict[str, str] = {}
        for spec in (self.manifest.get("config") or {}).get("sources") or []:
            try:
                recipe = load_recipe(spec["recipe"])
            except (UserError, KeyError, OSError, ValueError):
                continue  # a recipe file moved since the build: its license is not known here
            found[recipe.name] = recipe.license
        return found

    def batches(self, columns: list[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The rows, BATCH_ROWS at a time, in shard order (the build's deterministic order)."""
        import pyarrow.parquet as pq

        for part in self.parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield batch.to_pylist()
