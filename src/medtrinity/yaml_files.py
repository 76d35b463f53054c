"""Reading the user's YAML files (recipes, build configs) with one-line errors that say what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medtrinity.errors import UserError


def read_yaml_mapping(path: Path, what: str, needs: str) -> dict[str, Any]:
    """The mapping in a YAML file; `what` names the file's role ("recipe"), `needs` its required keys."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is not valid UTF-8 YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must be a YAML mapping with {needs}")
    return data


def validation_error(err: ValidationError, where: str) -> UserError:
    """The first problem pydantic found, as one line: `where: field.path: message`."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    return UserError(f"{where}: {loc}: {first['msg']}")
