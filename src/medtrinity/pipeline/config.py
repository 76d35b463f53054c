"""The build configuration: from CLI flags or a YAML file, validated once, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medtrinity.errors import UserError


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipe: str
    path: str

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        recipe, sep, path = text.partition(":")
        if not sep or not recipe or not path:
            raise UserError(f"--source '{text}' must be RECIPE:PATH, e.g. kvasir-seg:/data/Kvasir-SEG")
        return cls(recipe=recipe, path=path)


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[SourceSpec]
    out: str
    describer: str = "grounded"
    kb: str | None = None  # knowledge index folder; None = the bundled default
    top_k: int = Field(3, ge=0, le=50)
    engine: Literal["local"] = "local"
    workers: int = Field(1, ge=1, le=256)
    shard_size: int = Field(1000, ge=1, le=100_000)
    limit: int | None = Field(None, ge=1)  # at most this many images from each source
    resume: bool = False
    overwrite: bool = False
    on_contradiction: Literal["quarantine", "keep"] = "quarantine"

    @field_validator("sources", mode="before")
    @classmethod
    def _sources_from_strings(cls, value):
        if isinstance(value, list):
            return [SourceSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    def run_identity(self) -> dict:
        """What must not change between a run and its --resume: it decides which items land in which shard."""
        return {"sources": [s.model_dump() for s in self.sources], "shard_size": self.shard_size, "limit": self.limit}


def config_error(err: ValidationError, where: str) -> UserError:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    return UserError(f"{where}: {loc}: {first['msg']}")


def load_config_file(path: str | Path, **overrides) -> BuildConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"config {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping with 'sources' and 'out'")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BuildConfig(**data)
    except ValidationError as err:
        raise config_error(err, f"config {path}") from None
