"""`export webdataset`: tar shards that `webdataset.WebDataset(urls).decode("pil")` reads.

Shards are `<split>-000000.tar`, `<split>-000001.tar`, … of `--shard-size` samples each. A sample is three
members sharing its key: `<key>.png|jpg` (the stored image bytes), `<key>.json` (every column but the image;
masks stay COCO RLE) and `<key>.txt` (the description). The key is the record id — hex, so it has no dot or
slash, which WebDataset's key rule (the name up to the first dot) needs. Members carry fixed metadata
(mtime 0, root owner), so two exports of one build are byte-identical.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from medtrinity.export.selection import split_of
from medtrinity.records import image_extension

_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_-]")


def sample_key(record_id: str) -> str:
    return _UNSAFE_KEY.sub("_", record_id)


class _Shards:
    """The tar shards of one split, a new one every `size` samples."""

    def __init__(self, folder: Path, split: str, size: int) -> None:
        self.folder, self.split, self.size = folder, split, size
        self.names: list[str] = []
        self.samples = 0
        self._tar: tarfile.TarFile | None = None

    def add(self, members: list[tuple[str, bytes]]) -> None:
        if self.samples % self.size == 0:
            self.close()
            self.names.append(f"{self.split}-{len(self.names):06d}.tar")
            self._tar = tarfile.open(self.folder / self.names[-1], "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            self._tar.addfile(info, io.BytesIO(data))
        self.samples += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def pattern(self) -> str:
        """The brace pattern WebDataset expands to every shard of the split."""
        last = len(self.names) - 1
        return f"{self.split}-{{000000..{last:06d}}}.tar" if last else self.names[0]


class Writer:
    def __init__(self, folder: Path, options, catalog, build) -> None:
        self.folder, self.size = folder, options.shard_size
        self.splits: dict[str, _Shards] = {}
        self.records: Counter = Counter()

    def add(self, row: dict[str, Any]) -> None:
        split = split_of(row["split"])
        if split not in self.splits:
            self.splits[split] = _Shards(self.folder, split, self.size)
        key = sample_key(row["id"])
        data = row["image"]["bytes"]
        columns = {name: value for name, value in row.items() if name != "image"}
        self.splits[split].add(
            [
                (f"{key}.{image_extension(data)}", data),
                (f"{key}.json", json.dumps(columns, ensure_ascii=False).encode()),
                (f"{key}.txt", (row["description"] or "").encode()),
            ]
        )
        self.records[split] += 1

    def close(self) -> tuple[dict[str, int], dict[str, Any]]:
        for shards in self.splits.values():
            shards.close()
        return dict(self.records), {"shards": {split: s.pattern() for split, s in sorted(self.splits.items())}}
