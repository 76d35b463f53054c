"""A JSON list written one element at a time, so a split's file never has to be held in memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonListFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115  (open until `close`)
        self._file.write("[")

    def append(self, value: Any) -> None:
        self._file.write(",\n" if self.count else "\n")
        self._file.write(json.dumps(value, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self._file.write("\n]\n" if self.count else "]\n")
        self._file.close()
