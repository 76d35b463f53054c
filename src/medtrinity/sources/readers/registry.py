"""The reader registry: which reader reads a path.

A reader is a `Reader` subclass in a module of this package, decorated with `@register_reader`; the
modules are imported on first use, so a new format is one new file here and nothing else (like layouts).
Content decides before the name: a PNG named `.dcm` is read as PNG, a DICOM named `.png` as DICOM.
"""

from __future__ import annotations

import gzip
import importlib
import pkgutil
import zlib
from pathlib import Path

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import Reader, check_readable_file

READERS_PACKAGE = "medtrinity.sources.readers"
HEAD_BYTES = 1024  # enough for every magic sniffed (NIfTI-1 keeps its magic at byte 344)
FALLBACK = "raster"  # Pillow knows more formats than are sniffed for; its error says when it knows none
_GZIP_MAGIC = b"\x1f\x8b"

_READERS: dict[str, type[Reader]] = {}
_INSTANCES: dict[str, Reader] = {}


def register_reader(cls: type[Reader]) -> type[Reader]:
    _READERS[cls.name] = cls
    return cls


def registered_readers() -> list[Reader]:
    """Every reader, in sniffing order (priority, then name)."""
    if not _INSTANCES:
        from medtrinity.sources import readers

        for module in pkgutil.iter_modules(readers.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{READERS_PACKAGE}.{module.name}")
        _INSTANCES.update({name: cls() for name, cls in _READERS.items()})
    return sorted(_INSTANCES.values(), key=lambda r: (r.priority, r.name))


def get_reader(name: str) -> Reader:
    readers = {r.name: r for r in registered_readers()}
    if name not in readers:
        raise KeyError(f"no reader named {name!r}; readers: {', '.join(readers)}")
    return readers[name]


def reader_for(path: Path) -> Reader:
    """The reader for `path`: a folder goes to the folder reader; a file to the reader that recognises its
    content, else to the reader trusting its suffix, else to Pillow. StageError for a missing or empty file."""
    readers = registered_readers()
    if path.is_dir():
        folder_reader = next((r for r in readers if r.reads_folders), None)
        if folder_reader is not None:
            return folder_reader
    check_readable_file(path)
    head = content_head(path)
    files = [r for r in readers if not r.reads_folders]
    for reader in files:
        if reader.sniff(head):
            return reader
    name = path.name.lower()
    for reader in files:
        if reader.trust_suffix and name.endswith(reader.suffixes):
            return reader
    return get_reader(FALLBACK)


def content_head(path: Path) -> bytes:
    """The file's first HEAD_BYTES; for a gzip file, the first bytes of what it holds when they decompress
    (a compressed NIfTI shows its header), else the raw bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        raise StageError(f"file {path.name} could not be read ({type(e).__name__})") from e
    if head[:2] != _GZIP_MAGIC:
        return head
    try:
        with gzip.open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return head
