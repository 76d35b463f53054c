"""The build configuration: from CLI flags or a YAML file, validated once, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medtrinity.errors import UserError
from medtrinity.yaml_files import read_yaml_mapping, validation_error


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

    sources: list[SourceSpec] = Field(min_length=1)
    out: str
    describer: str = "grounded"
    kb: str | None = None  # knowledge index folder; None = the bundled default
    top_k: int = Field(3, ge=0, le=50)
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # a running Ray cluster (ray://… or host:port); None starts a local Ray
    workers: int = Field(1, ge=1, le=256)
    shard_size: int = Field(1000, ge=1, le=100_000)
    limit: int | None = Field(None, ge=1)  # at most this many images from each source
    resume: bool = False
    overwrite: bool = False
    # A description that contradicts the record: ask the model once more naming the contradiction (repair;
    # for a deterministic describer the same as quarantine), quarantine it, or keep it with failed checks.
    on_contradiction: Literal["repair", "quarantine", "keep"] = "repair"
    # Expert ROI locators: override every recipe's choice (a name, "auto", "none" or {modality[/organ]: name})
    # and mode ("fill": only where the source gives no region; "add": always, beside the source's regions).
    expert: str | dict[str, str] | None = None
    expert_mode: Literal["fill", "add"] | None = None
    # Model backends (openai, transformers). The API key itself is never part of the config.
    model: str | None = None  # served model name (openai) or model folder (transformers)
    base_url: str | None = None  # OpenAI-compatible server, e.g. http://localhost:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(8, ge=1, le=1024)  # requests in flight per worker
    overlay: bool = False  # send the model a copy of the image with the ROIs outlined
    request_timeout: float = Field(120.0, gt=0)  # seconds per request before it is retried
    max_attempts: int = Field(5, ge=1, le=20)
    retry_backoff: float = Field(1.0, ge=0)  # first backoff in seconds; doubles each retry (with jitter)
    max_tokens: int = Field(1024, ge=16)

    @field_validator("sources", mode="before")
    @classmethod
    def _sources_from_strings(cls, value):
        if isinstance(value, list):
            return [SourceSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _resume_or_overwrite(self) -> "BuildConfig":
        if self.resume and self.overwrite:
            raise ValueError("give --resume (continue the build in --out) or --overwrite (replace it), not both")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        return self

    @model_validator(mode="after")
    def _model_backends_need_a_model(self) -> "BuildConfig":
        if self.describer in ("openai", "transformers") and not self.model:
            raise ValueError(f"describer {self.describer!r} needs --model")
        return self

    def run_identity(self) -> dict:
        """What must not change between a run and its --resume: every setting that shapes a record or decides
        which items land in which shard (not how fast they are made)."""
        return self.model_dump(mode="json", exclude={"resume", "overwrite", "workers", "engine", "ray_address", "out", "concurrency"})


def load_config_file(path: str | Path, **overrides) -> BuildConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    data = read_yaml_mapping(path, "config", "'sources' and 'out'")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BuildConfig(**data)
    except ValidationError as err:
        raise validation_error(err, f"config {path}") from None
