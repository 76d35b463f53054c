"""The files of a finished (or running) build, as readers see them: data shards, quarantine shards, manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medtrinity.errors import UserError

SHARD_GLOB = "part-*.parquet"  # temp files (.part-….tmp-PID) never match


@dataclass(frozen=True)
class BuildFolder:
    root: Path

    @classmethod
    def open(cls, path: str | Path) -> BuildFolder:
        """The build at `path`, or one clear line saying why the folder is not one."""
        root = Path(path).expanduser().resolve()
        if not root.exists():
            raise UserError(f"{path} does not exist; give a build folder (the --out of `medtrinity build` or `demo`)")
        if not root.is_dir():
            raise UserError(f"{path} is a file; give a build folder (the --out of `medtrinity build` or `demo`)")
        folder = cls(root)
        if not (root / "manifest.json").is_file() and not folder.data_shards():
            raise UserError(f"{path} is not a build: it has neither manifest.json nor data/{SHARD_GLOB}")
        return folder

    def data_shards(self) -> list[Path]:
        return sorted((self.root / "data").glob(SHARD_GLOB))

    def quarantine_shards(self) -> list[Path]:
        return sorted((self.root / "quarantine").glob(SHARD_GLOB))

    def manifest(self) -> dict | None:
        """The manifest, or None while the build is still running (it is written last)."""
        path = self.root / "manifest.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise UserError(f"{path} is not readable JSON; rebuild, or remove it to view the shards alone") from None
