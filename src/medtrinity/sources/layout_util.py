"""Small helpers that several layouts share: deterministic file listing and option checking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medtrinity.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}


def list_files(root: Path, pattern: str, exclude: list[str] | None = None) -> list[str]:
    """Files under root matching a glob, as sorted POSIX paths relative to root (the order shards rely on).

    A broken symbolic link is listed too, so that the read stage quarantines it by name instead of the
    item silently disappearing from the counts."""
    if not isinstance(pattern, str) or not pattern.strip() or Path(pattern).is_absolute():
        raise UserError(f"the file pattern {pattern!r} must be a glob relative to the source folder, e.g. images/*.png")
    found = []
    for path in root.glob(pattern):
        rel = path.relative_to(root).as_posix()
        if (path.is_file() or (path.is_symlink() and not path.exists())) and not any(path.match(ex) for ex in exclude or []):
            found.append(rel)
    return sorted(found)


def require_option(options: dict[str, Any], key: str, recipe_name: str, example: str) -> Any:
    if key not in options:
        raise UserError(f"recipe {recipe_name}: options.{key} is required (e.g. {key}: {example})")
    return options[key]


def check_matches(files: list[str], root: Path, pattern: str, recipe_name: str) -> None:
    if not files:
        raise UserError(f"{root} holds no file matching '{pattern}' — is this the folder recipe {recipe_name} expects?")
