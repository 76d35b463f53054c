"""Image bytes that are no file of their own: a cell of a Parquet table, or a member of a zstd-compressed tar.

A layout lists where each image's bytes are (`ParquetCell`, `TarMember`: small, picklable); the worker that
reads the item fetches them here. Neither container is unpacked to disk:

- Parquet: the row group holding the row is read once (only the image column) and kept while the next items,
  listed in file order, come from it;
- tar.zst: the shard is indexed once while listing (`index_tar_zst`: every member's name, data offset and size
  in the decompressed stream, streamed through `zstandard` + `tarfile`); a worker then streams the shard
  forward once, member after member, as its items are listed in offset order (an item behind the cursor
  restarts the stream: only a worker that starts mid-shard decompresses the part before its first item).
"""

from __future__ import annotations

import io
import tarfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from medtrinity.errors import StageError

OPEN_CONTAINERS = 2  # per worker: open shard streams / Parquet row groups kept
TAR_BLOCK = 512


@dataclass(frozen=True)
class ParquetCell:
    """The bytes in one cell of a Parquet file: a Hugging Face `Image` struct {bytes, path} or plain binary."""

    file: str  # relative to the source root
    row: int  # 0-based row of the file
    column: str = "image"

    def read(self, root: str | Path) -> bytes:
        value = _row_group_column(str(Path(root) / self.file), self.column, self.row)
        if isinstance(value, dict):
            value = value.get("bytes")
        if not value:
            raise StageError(f"{self.file} row {self.row}: the {self.column} column holds no image bytes")
        return bytes(value)


@dataclass(frozen=True)
class TarMember:
    """One member of a .tar.zst shard, located by `index_tar_zst`."""

    shard: str  # relative to the source root
    name: str
    offset: int  # of the member's data in the decompressed stream
    size: int

    def read(self, root: str | Path) -> bytes:
        return _stream(str(Path(root) / self.shard)).read_at(self.offset, self.size, self)


# ---------------------------------------------------------------- Parquet
_ROW_GROUPS: OrderedDict[tuple[str, str, int], list] = OrderedDict()
_ROW_STARTS: dict[str, list[int]] = {}


def _row_group_column(path: str, column: str, row: int):
    import pyarrow.parquet as pq

    if path not in _ROW_STARTS:
        meta = pq.ParquetFile(path).metadata
        starts, total = [], 0
        for i in range(meta.num_row_groups):
            starts.append(total)
            total += meta.row_group(i).num_rows
        _ROW_STARTS[path] = [*starts, total]
    starts = _ROW_STARTS[path]
    if not 0 <= row < starts[-1]:
        raise StageError(f"{Path(path).name} has no row {row}")
    group = max(i for i, start in enumerate(starts[:-1]) if start <= row)
    key = (path, column, group)
    if key not in _ROW_GROUPS:
        _ROW_GROUPS[key] = pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0).to_pylist()
        while len(_ROW_GROUPS) > OPEN_CONTAINERS:
            _ROW_GROUPS.popitem(last=False)
    _ROW_GROUPS.move_to_end(key)
    return _ROW_GROUPS[key][row - starts[group]]


# ---------------------------------------------------------------- tar.zst
class _Counting(io.RawIOBase):
    """A readable that counts the bytes it hands out (how much of the decompressed stream exists)."""

    def __init__(self, inner) -> None:
        self.inner, self.produced = inner, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.produced += len(data)
        return data


def _decompressed(path: str):
    import zstandard

    handle = open(path, "rb")  # noqa: SIM115 — it lives as long as the stream that reads it; callers close it
    return handle, zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True)


@dataclass
class TarIndex:
    """What one pass over a shard found: its complete file members in stream order, whether it ends cleanly,
    and its `metadata.json` if it holds one."""

    members: list[tuple[str, int, int]] = field(default_factory=list)  # (name, data offset, size)
    truncated: bool = False
    metadata: bytes | None = None


def index_tar_zst(path: str | Path) -> TarIndex:
    """Stream the shard once and list its members. A shard cut short (a partial download) keeps the members
    read completely before the cut and is marked truncated; a member whose data the cut reached is dropped."""
    import zstandard

    index = TarIndex()
    handle, reader = _decompressed(str(path))
    counting = _Counting(reader)
    pending: tuple[str, int, int] | None = None
    try:
        with handle, tarfile.open(fileobj=counting, mode="r|") as tar:
            for member in tar:  # reading a header skips the previous member's data: that one is complete
                if pending is not None:
                    index.members.append(pending)
                    pending = None
                if not member.isfile():
                    continue
                pending = (member.name, member.offset_data, member.size)
                if Path(member.name).name == "metadata.json":
                    extracted = tar.extractfile(member)
                    index.metadata = extracted.read() if extracted is not None else None
            end = index.members[-1][1] + index.members[-1][2] if index.members else 0
            if pending is not None:
                end = pending[1] + pending[2]
            # A tar ends with two zero blocks; a stream that stops right after a member's data was cut there.
            while counting.read(1 << 16):
                pass
            padded = -(-end // TAR_BLOCK) * TAR_BLOCK
            if pending is not None and counting.produced >= end:
                index.members.append(pending)
                pending = None
            if counting.produced - padded < 2 * TAR_BLOCK:
                index.truncated = True
    except (tarfile.ReadError, EOFError, zstandard.ZstdError, OSError):
        index.truncated = True
        if pending is not None and pending[1] + pending[2] <= counting.produced:
            index.members.append(pending)
    return index


class _ShardStream:
    """A forward-only reader of one shard's decompressed stream."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle = self.reader = None
        self.position = 0

    def _open(self) -> None:
        self.close()
        self.handle, self.reader = _decompressed(self.path)
        self.position = 0

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle = self.reader = None

    def _take(self, size: int) -> bytes:
        chunks, left = [], size
        while left > 0:
            chunk = self.reader.read(min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        self.position += len(data)
        return data

    def read_at(self, offset: int, size: int, member: TarMember) -> bytes:
        import zstandard

        try:
            if self.reader is None or offset < self.position:
                self._open()
            while self.position < offset:  # skip forward: decompressed, never stored
                if not self._take(min(offset - self.position, 1 << 22)):
                    break
            data = self._take(size) if self.position == offset else b""
        except (zstandard.ZstdError, OSError):
            self.close()
            data = b""
        if len(data) != size:
            self.close()
            raise StageError(f"shard {member.shard} ends inside member {member.name}: it changed since it was listed")
        return data


_STREAMS: OrderedDict[str, _ShardStream] = OrderedDict()


def _stream(path: str) -> _ShardStream:
    if path not in _STREAMS:
        _STREAMS[path] = _ShardStream(path)
        while len(_STREAMS) > OPEN_CONTAINERS:
            _STREAMS.popitem(last=False)[1].close()
    _STREAMS.move_to_end(path)
    return _STREAMS[path]
