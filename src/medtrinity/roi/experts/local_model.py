"""What the model adapters (sam, cellpose, onnx) share: a local weights file, never a download.

An adapter's version names the weights it ran, so two checkpoints never pass for one another in a record's
`source`: the user's `version` when given, else the file's stem and the start of its SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from medtrinity.errors import UserError


def checkpoint_field() -> Any:
    """The `checkpoint` option of an adapter: the local weights file; `model:` (its former name) is accepted."""
    from pydantic import AliasChoices, Field

    return Field(None, validation_alias=AliasChoices("checkpoint", "model"))


def local_weights(path: str | Path | None, expert: str) -> Path:
    """The weights file, which must already be on this machine (adapters never fetch anything)."""
    if path is None or str(path) == "":
        from medtrinity.roi.experts.base import WEIGHTS_HINT

        raise UserError(f"expert {expert} needs its weights: {WEIGHTS_HINT.format(key='checkpoint', name=expert)}")
    file = Path(path).expanduser()
    if file.is_dir():
        raise UserError(f"expert {expert}: checkpoint {file} is a directory, not a weights file")
    if not file.is_file():
        raise UserError(f"expert {expert}: checkpoint {file} does not exist (weights are never downloaded)")
    return file


def weights_version(file: Path, version: str | None) -> str:
    if version:
        return version
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{file.stem}-{digest.hexdigest()[:8]}"


def optional_import(module: str, expert: str, extra: str) -> ModuleType:
    """Import an optional heavy dependency, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UserError(
            f"expert {expert} needs the `{module}` package: pip install 'medtrinity[{extra}]' ({error})"
        ) from error


def resize_scores(scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a CxHxW score map to CxH'xW' (scores, not labels: threshold after resizing)."""
    if scores.shape[1:] == tuple(shape):
        return scores
    from skimage.transform import resize

    return resize(scores, (scores.shape[0], *shape), order=1, preserve_range=True, anti_aliasing=False)
