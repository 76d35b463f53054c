"""The build configuration: from CLI flags or a YAML file, validated once, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from medtrinity.errors import UserError
from medtrinity.yaml_files import WEIGHT_KEYS, path_beside, read_yaml_mapping, validation_error


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipe: str
    path: str

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        recipe, sep, path = text.partition(":")
        if not sep or not recipe or not path:
            raise UserError(f"--source '{text}' must be RECIPE:PATH, e.g. kvasir-seg:/data/Kvasir-SEG")
        return cls(recipe=recipe, path=path)


# How a run goes, not what it makes: left out of the resume identity, so a resume may change them.
RUN_ONLY_SETTINGS = frozenset(
    {
        "resume",
        "overwrite",
        "retry_transient",
        "workers",
        "engine",
        "ray_address",
        "out",
        "concurrency",
        "gpus_per_model",
    }
)
DEFAULT_SHARD_SIZE = 1000
SHARDS_PER_WORKER = 4  # with the default size, a small input still gives each worker several shards


def default_shard_size(items: int, workers: int) -> int:
    """Items per shard when --shard-size is not given: 1000, or fewer so that every worker gets work (about
    SHARDS_PER_WORKER shards each, which also evens out shards that take longer than others). One worker gets
    1000 whatever the input: more shards would only mean more files."""
    if workers <= 1:
        return DEFAULT_SHARD_SIZE
    return max(1, min(DEFAULT_SHARD_SIZE, -(-items // (SHARDS_PER_WORKER * workers))))


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
    # None: default_shard_size for the input and --workers, chosen when the build starts and recorded in its
    # identity, so that --resume cuts the same shards whatever --workers it is given
    shard_size: int | None = Field(None, ge=1, le=100_000)
    limit: int | None = Field(None, ge=1)  # at most this many images from each source
    resume: bool = False
    overwrite: bool = False
    # With resume: also redo the records an earlier run quarantined for a transient reason (quarantine column
    # `transient`: a model server unreachable, timeouts, 429/5xx after every retry); other reasons stay.
    retry_transient: bool = False
    # A description that contradicts the record: ask the model once more naming the contradiction (repair;
    # for a deterministic describer the same as quarantine), quarantine it, or keep it with failed checks.
    on_contradiction: Literal["repair", "quarantine", "keep"] = "repair"
    # Expert ROI locators: override every recipe's choice (a name, "auto", "none" or {modality[/organ]: name})
    # and mode ("fill": only where the source gives no region; "add": always, beside the source's regions).
    expert: str | dict[str, str] | None = None
    expert_mode: Literal["fill", "add"] | None = None
    # Text burned into the pixels (names, IDs, dates, sites; sources/pixel_text.py). None: redact where it is
    # expected (DICOM with BurnedInAnnotation YES or modality US/SC/XC/OT, recipes with burned_in_text) and leave
    # the rest; redact: find and black it out on every image; quarantine: quarantine every image it is found on;
    # keep: never look.
    pixel_phi: Literal["redact", "quarantine", "keep"] | None = None
    # Per-expert options, e.g. {sam: {checkpoint: /models/sam.pth}}, over a recipe's expert_options for the
    # same expert; `--expert-option KEY=VALUE` adds to the entry of the --expert. Checked per expert at start.
    experts: dict[str, dict[str, Any]] = {}
    # Model backends (openai, transformers). The API key itself is never part of the config.
    model: str | None = None  # served model name (openai) or model folder (transformers)
    base_url: str | None = None  # OpenAI-compatible server, e.g. http://localhost:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    # requests in flight in the whole build: each of the --workers holds its share (concurrency // workers), so
    # a server shared by all of them never sees more than this
    concurrency: int = Field(8, ge=1, le=65_536)
    # --engine ray: GPUs each model actor (transformers describer, SAM/ONNX/Cellpose expert) holds; fractional
    # shares put several actors on one GPU. None: actors need no GPU (the model picks the device it finds).
    gpus_per_model: float | None = Field(None, gt=0, le=64)
    overlay: bool = False  # send the model a copy of the image with the ROIs outlined
    # seconds per request before it is retried: a local server answering one request at a time needs minutes
    request_timeout: float = Field(600.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)
    retry_backoff: float = Field(1.0, ge=0)  # first backoff in seconds; doubles each retry (with jitter)
    max_tokens: int = Field(1024, ge=16)
    # auto: json_schema, else json_object with the schema, else plain text, as the server accepts (openai)
    structured_output: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    max_image_side: int = Field(1024, ge=0, le=16384)  # longest side of the image sent (0 = full size); never stored

    @field_validator("sources", mode="before")
    @classmethod
    def _sources_from_strings(cls, value):
        if isinstance(value, list):
            return [SourceSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _resume_or_overwrite(self) -> BuildConfig:
        if self.resume and self.overwrite:
            raise ValueError("give --resume (continue the build in --out) or --overwrite (replace it), not both")
        if self.retry_transient and not self.resume:
            raise ValueError(
                "--retry-transient retries the quarantined records of an earlier build: give it with --resume"
            )
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        return self

    @model_validator(mode="after")
    def _model_backends_need_a_model(self) -> BuildConfig:
        if self.describer in ("openai", "transformers") and not self.model:
            raise ValueError(f"describer {self.describer!r} needs --model")
        if self.describer == "openai" and self.concurrency < self.workers:
            raise ValueError(
                f"--concurrency {self.concurrency} is the bound for the whole build, shared by the "
                f"workers: with --workers {self.workers} give at least {self.workers}"
            )
        return self

    def worker_concurrency(self) -> int:
        """Requests in flight one worker may hold: its share of --concurrency (the build never exceeds it)."""
        return max(1, self.concurrency // self.workers)

    def run_identity(self) -> dict:
        """What must not change between a run and its --resume: every setting that shapes a record or decides
        which items land in which shard (not how fast they are made)."""
        return self.model_dump(mode="json", exclude=RUN_ONLY_SETTINGS)


def load_config_file(path: str | Path, **overrides) -> BuildConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    data = relative_to_config(read_yaml_mapping(path, "config", "'sources' and 'out'"), path.parent)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BuildConfig(**data)
    except ValidationError as err:
        raise validation_error(err, f"config {path}", model=BuildConfig) from None


def relative_to_config(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A relative path written in a config file means a path beside that file, wherever the command is run
    from: recipe files, source folders, `out`, a `kb` folder, experts' checkpoints, and a `transformers`
    describer's model folder when there is one beside the file (otherwise `model` is a model name). (Paths
    given as flags stay relative to the current directory, as on any command line.)"""
    from medtrinity.sources.base import named_recipes

    def beside(value: Any) -> Any:
        return path_beside(value, folder)

    def source(spec: Any) -> Any:
        recipe, path = (
            spec.partition(":")[::2]
            if isinstance(spec, str)
            else (spec.get("recipe"), spec.get("path"))
            if isinstance(spec, dict)
            else (None, None)
        )
        if not isinstance(recipe, str) or not isinstance(path, str) or not recipe or not path:
            return spec  # malformed: the validation says so
        recipe = recipe if recipe in named_recipes() else beside(recipe)
        return f"{recipe}:{beside(path)}" if isinstance(spec, str) else {**spec, "recipe": recipe, "path": beside(path)}

    data = dict(data)
    if isinstance(data.get("sources"), list):
        data["sources"] = [source(spec) for spec in data["sources"]]
    if "out" in data:
        data["out"] = beside(data["out"])
    if data.get("kb") not in (None, "default", "core"):
        data["kb"] = beside(data["kb"])
    if data.get("describer") == "transformers" and isinstance(data.get("model"), str):
        if Path(beside(data["model"])).exists():  # a folder beside the config, not a hub name like org/name
            data["model"] = beside(data["model"])
    if isinstance(data.get("experts"), dict):
        data["experts"] = {
            name: {k: beside(v) if k in WEIGHT_KEYS else v for k, v in opts.items()} if isinstance(opts, dict) else opts
            for name, opts in data["experts"].items()
        }
    return data
