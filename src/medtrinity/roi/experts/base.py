"""The expert interface, the registry of experts and the per-modality default choice.

An expert finds regions of interest where a source gives no mask or box. Built-in experts live in one
module each and are imported only when first asked for (`get_expert`), so `import medtrinity` never
pulls in scikit-image or SciPy.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from medtrinity import records
from medtrinity.errors import StageError, UserError
from medtrinity.roi.experts import ops


@runtime_checkable
class Expert(Protocol):
    name: str
    version: str

    def locate(self, pixels: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[records.Region]:
        """Regions found in a uint8 HxW or HxWx3 image; [] when nothing is found honestly."""
        ...


def expert_source(name: str, version: str) -> str:
    """The `source` string every region an expert returns carries."""
    return f"expert:{name}@{version}"


def check_pixels(pixels: np.ndarray, name: str) -> None:
    """Experts take the describer's view of an image: uint8, gray or RGB, at least 8 px a side."""
    ok_shape = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)
    if pixels.dtype != np.uint8 or not ok_shape or min(pixels.shape[:2]) < 8:
        raise StageError(
            f"expert {name} needs a uint8 HxW or HxWx3 image of at least 8x8 pixels, got {pixels.dtype} {pixels.shape}"
        )


# ---------------------------------------------------------------- registry
# Built-in experts: name -> module that registers it on import (lazy, keeps `import medtrinity` light).
BUILTIN_MODULES: dict[str, str] = {
    "chest-xray-lungs": "medtrinity.roi.experts.chest_xray",
    "skin-lesion": "medtrinity.roi.experts.skin_lesion",
    "fundus-disc": "medtrinity.roi.experts.fundus",
    "tissue": "medtrinity.roi.experts.tissue",
    "ct-body": "medtrinity.roi.experts.ct_body",
    "mri-head": "medtrinity.roi.experts.mri_head",
    "focal-region": "medtrinity.roi.experts.focal_region",
    "foreground": "medtrinity.roi.experts.foreground",
    "cells": "medtrinity.roi.experts.cells",
    "green-box": "medtrinity.roi.experts.green_box",  # boxes burned in as green outlines (MedTrinity-25M)
    # adapters for segmentation models whose weights the user has locally (optional extras; never download)
    "sam": "medtrinity.roi.experts.sam_model",
    "cellpose": "medtrinity.roi.experts.cellpose_model",
    "onnx": "medtrinity.roi.experts.onnx_model",
}

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_expert(cls: T) -> T:
    """Class decorator: make an expert class available to `get_expert` under its `name`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or not isinstance(getattr(cls, "version", None), str):
        raise TypeError(f"{cls.__name__} needs string class attributes `name` and `version` to be an expert")
    known = _REGISTRY.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"expert name {name!r} is already taken by {known.__module__}.{known.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def expert_names() -> list[str]:
    """Every expert that `get_expert` can build: the built-ins and any registered since."""
    return sorted(set(BUILTIN_MODULES) | set(_REGISTRY))


class ExpertOptions(BaseModel):
    """The options an expert declares (`Options = <subclass>` on its class); an unknown key is refused with
    a suggestion. Experts that take none keep this empty model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# How a user gives an expert its weights, for the one-line refusal when they are missing.
WEIGHTS_HINT = "--expert-option {key}=PATH, or experts: {{{name}: {{{key}: PATH}}}} in the build config"


def expert_class(name: str) -> type:
    """The class registered as `name` (a built-in is imported on first use)."""
    if name not in _REGISTRY and name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name])
    cls = _REGISTRY.get(name)
    if cls is None:
        from medtrinity.yaml_files import suggestion

        close = suggestion(name, expert_names(), "expert")
        raise UserError(f"unknown expert {name!r}" + (close or f"; known experts: {', '.join(expert_names())}"))
    return cls


def check_expert_options(name: str, options: Mapping[str, Any] | None, where: str | None = None) -> dict[str, Any]:
    """The options as the expert declares them (aliases resolved), or one line naming the bad key."""
    from pydantic import ValidationError

    from medtrinity.yaml_files import validation_error

    where = where or f"expert {name}"
    model = getattr(expert_class(name), "Options", ExpertOptions)
    options = dict(options or {})
    if not model.model_fields and options:
        raise UserError(f"{where}: unknown option '{next(iter(options))}'; expert {name} takes no options")
    try:
        parsed = model.model_validate(options)
    except ValidationError as err:
        raise validation_error(err, where, model=model, noun="option") from None
    return parsed.model_dump(exclude_unset=True)


def weights_option(name: str) -> str | None:
    """The option naming the weights file an expert cannot run without (None: it needs none)."""
    return getattr(expert_class(name), "weights_option", None)


def require_weights(name: str, options: Mapping[str, Any]) -> None:
    key = weights_option(name)
    if key is not None and not options.get(key):
        raise UserError(f"expert {name} needs its weights: {WEIGHTS_HINT.format(key=key, name=name)}")


def options_for(name: str, recipe_options: Mapping[str, Mapping], config_options: Mapping[str, Mapping]) -> dict:
    """An expert's options on one source: the recipe's for it, the build config's `experts:` over them."""
    return {**dict(recipe_options.get(name) or {}), **dict(config_options.get(name) or {})}


def named_experts(choice: str | Mapping[str, str] | None) -> list[str]:
    """The experts a choice names outright ("auto" and "none" name none: auto picks weight-free built-ins)."""
    names = list(choice.values()) if isinstance(choice, Mapping) else [choice]
    return [n for n in names if isinstance(n, str) and n.strip().lower() not in ("", "none", AUTO)]


def check_build_experts(
    config_expert: str | Mapping[str, str] | None, config_experts: Mapping[str, Mapping], recipes: list
) -> list[tuple[str, dict]]:
    """Every (expert, options) a build names outright, checked before anything is created: known names,
    declared options, weights given. `recipes` are the sources' recipes (their `expert`, `expert_options`)."""
    for name, options in config_experts.items():
        try:
            expert_class(name)
        except UserError as err:
            raise UserError(f"experts: {err}") from None
        if not isinstance(options, Mapping):
            raise UserError(f"experts.{name} must be a mapping of option: value, e.g. {{checkpoint: PATH}}")
        check_expert_options(name, options, f"experts.{name}")
    uses: dict[str, tuple[str, dict]] = {}
    for recipe in recipes:
        choice = config_expert if config_expert is not None else recipe.expert
        for name in named_experts(choice):
            options = options_for(name, recipe.expert_options_by_name(), config_experts)
            require_weights(name, check_expert_options(name, options, f"expert {name}"))
            uses[repr((name, sorted(options.items(), key=str)))] = (name, options)
    return list(uses.values())


def get_expert(name: str, **options: Any) -> Expert:
    """A new instance of the expert `name`, built with its options (checked against what it declares)."""
    cls = expert_class(name)
    return cls(**check_expert_options(name, options))


# ---------------------------------------------------------------- default per modality
_CHEST_ORGANS = {"chest", "lung", "lungs", "thorax"}
_HEAD_ORGANS = {"brain", "head"}
_BY_MODALITY: dict[str, str] = {
    "dermoscopy": "skin-lesion",
    "fundus": "fundus-disc",
    "histopathology": "tissue",
    "microscopy": "tissue",
    "ct": "ct-body",
    "ultrasound": "focal-region",
    "endoscopy": "focal-region",
}
# Modality + organ pairs that need an organ-specific expert; anything else falls back to the modality.
_BY_MODALITY_ORGAN: list[tuple[str, set[str], str]] = [
    ("x-ray", _CHEST_ORGANS, "chest-xray-lungs"),
    ("mri", _HEAD_ORGANS, "mri-head"),
]
FALLBACK_EXPERT = "foreground"


def _norm(text: str | None) -> str:
    return (text or "").strip().lower()


def _pick(table: Mapping[str, str], modality: str, organ: str | None) -> tuple[str, str] | None:
    """(key, value) of the table's "Modality/organ" entry, else its "Modality" one (case-insensitive), else None."""
    mod, org = _norm(modality), _norm(organ)
    normalised = {_norm(key): value for key, value in table.items()}
    return next(((key, normalised[key]) for key in (f"{mod}/{org}", mod) if key in normalised), None)


# Projection views that show the lungs superimposed, not side by side: the chest expert does not apply.
LATERAL_VIEWS = {"ll", "rl", "lateral", "lat", "lld", "rld"}


def default_expert_for(
    modality: str, organ: str | None = None, overrides: Mapping[str, str] | None = None, view: str | None = None
) -> str:
    """The expert to run on an image of this modality (and organ) that has no region from its source.

    `overrides` (from a recipe or the config) maps "Modality" or "Modality/organ" to an expert name; the
    organ-specific key wins. Matching is case-insensitive. `view` is a projection radiograph's view
    (PA, AP, LATERAL …) when known: the lung-field expert needs a frontal one.
    """
    mod, org = _norm(modality), _norm(organ)
    if overrides and (picked := _pick(overrides, modality, organ)) is not None:
        key, choice = picked
        if choice not in expert_names():
            raise UserError(
                f"expert {choice!r} chosen for {key!r} is unknown; known experts: {', '.join(expert_names())}"
            )
        return choice
    for pair_modality, organs, expert in _BY_MODALITY_ORGAN:
        if mod == pair_modality and org in organs:
            if expert == "chest-xray-lungs" and _norm(view) in LATERAL_VIEWS:
                return FALLBACK_EXPERT
            return expert
    return _BY_MODALITY.get(mod, FALLBACK_EXPERT)


AUTO = "auto"


def resolve_expert_choice(
    choice: str | Mapping[str, str] | None, modality: str, organ: str | None = None, view: str | None = None
) -> str | None:
    """The expert a recipe's `expert:` asks for on this image, or None for no expert.

    `choice` is None or "" (no expert), "auto" (the per-modality default), an expert name, or a mapping of
    "Modality" or "Modality/organ" to an expert name (the organ-specific key wins; a mapping value may be
    "auto" or "none"); a mapping without a key for this image falls back to the per-modality default.
    """
    if choice is None or (isinstance(choice, str) and choice.strip().lower() in ("", "none")):
        return None
    if isinstance(choice, Mapping):
        picked = _pick(choice, modality, organ)
        return resolve_expert_choice(AUTO if picked is None else picked[1], modality, organ, view)
    if not isinstance(choice, str):
        raise UserError(f"expert must be a name, 'auto' or a mapping of modality to name, got {choice!r}")
    if choice.strip().lower() == AUTO:
        return default_expert_for(modality, organ, view=view)
    if choice not in expert_names():
        raise UserError(f"unknown expert {choice!r}; known experts: {', '.join(expert_names())}")
    return choice


def check_expert_choice(choice: str | Mapping[str, str] | None, where: str = "expert") -> None:
    """Raise UserError now for a name no expert has (a choice is a name, auto, none or a mapping of them)."""
    names = list(choice.values()) if isinstance(choice, Mapping) else [choice]
    for name in names:
        if name is None:
            continue
        if not isinstance(name, str):
            raise UserError(f"{where} must be an expert name, 'auto', 'none' or a mapping of modality to name")
        if name.strip().lower() not in ("", "none", AUTO) and name not in expert_names():
            raise UserError(f"{where}: unknown expert {name!r}; known experts: {', '.join(expert_names())}")


# How an expert's regions meet the source's own (a recipe's `expert_mode`):
#   "fill" (default): ground truth first — the expert runs only where the source gives no region;
#   "add": the expert runs on every image and its regions follow the source's (an expert region that
#          repeats a source region, IoU >= DUPLICATE_IOU with one of the same label, is left out).
EXPERT_MODES = ("fill", "add")
DUPLICATE_IOU = 0.9


def _iou(a: records.Region, b: records.Region) -> float:
    if a.mask is not None and b.mask is not None and a.mask.shape == b.mask.shape:
        union = int((a.mask | b.mask).sum())
        return int((a.mask & b.mask).sum()) / union if union else 0.0
    if a.bbox is None or b.bbox is None:
        return 0.0
    x0, y0 = max(a.bbox[0], b.bbox[0]), max(a.bbox[1], b.bbox[1])
    x1, y1 = min(a.bbox[2], b.bbox[2]), min(a.bbox[3], b.bbox[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    union = area(a.bbox) + area(b.bbox) - inter
    return inter / union if union > 0 else 0.0


def merge_expert_regions(
    source_regions: list[records.Region], expert_regions: list[records.Region], mode: str = "fill"
) -> list[records.Region]:
    """The regions a record keeps, given the source's and an expert's, under `mode` (see EXPERT_MODES)."""
    if mode not in EXPERT_MODES:
        raise UserError(f"expert_mode must be one of {', '.join(EXPERT_MODES)}, got {mode!r}")
    if mode == "fill":
        return list(source_regions) if source_regions else list(expert_regions)
    fresh = [
        found
        for found in expert_regions
        if not any(found.label == known.label and _iou(found, known) >= DUPLICATE_IOU for known in source_regions)
    ]
    return list(source_regions) + fresh


# ---------------------------------------------------------------- shared skeleton of the built-ins
Finding = tuple[np.ndarray, str, float]  # (bool mask at working scale, label, score)


class ClassicalExpert:
    """Runs `find` on a copy of the image at most `work_side` pixels a side, then returns full-size regions.

    Working at a fixed scale keeps each expert's cost and its smoothing radii independent of the input size.
    """

    name: str = ""
    version: str = ""
    work_side: int = 512
    # What the expert's regions are (records.LABEL_KINDS): "region" claims only an appearance, no diagnosis.
    region_kind: str = "region"

    def kind_of(self, label: str) -> str:
        """The kind of a region this expert labels `label`; experts outlining several kinds override this."""
        return self.region_kind

    @property
    def source(self) -> str:
        return expert_source(self.name, self.version)

    def find(self, image: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[Finding]:
        raise NotImplementedError

    def locate(self, pixels: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[records.Region]:
        check_pixels(pixels, self.name)
        image = ops.downscale(pixels, self.work_side)
        found: list[records.Region] = []
        for mask, label, score in self.find(image, modality, organ, list(labels)):
            full = ops.upscale_mask(mask, pixels.shape[:2])
            if full.any():
                region = ops.make_region(full, label, score, self.source)
                region.kind = self.kind_of(label)
                found.append(region)
        return found
