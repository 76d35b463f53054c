"""What a source yields (`SourceItem`), what a recipe says (`Recipe`), and the layout registry.

A layout is one file that knows how a publisher lays out a dataset; it lists `SourceItem`s in a
deterministic order (sorted paths) so that shard k holds the same items on every run — the basis of
`--resume`. Items are small and picklable: pixels are read later, by the read stage, in the worker.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from medtrinity.errors import UserError
from medtrinity.yaml_files import read_yaml_mapping, validation_error
from medtrinity.records import MODALITIES, Region, sample_id

RECIPES_DIR = Path(__file__).parent / "recipes"


class Annotation(Protocol):
    """A source-given localisation (mask file, box, overlay …) resolved against the read image."""

    def resolve(self, root: Path, item: "SourceItem", shape: tuple[int, int]) -> list[Region]: ...


@dataclass
class SourceItem:
    source: str  # recipe name
    root: str  # the source folder the user gave
    file: str  # input path relative to root, as the publisher names it
    modality: str | None = None  # None: taken from the file (DICOM Modality)
    organ: str | None = None
    disease: str | None = None
    labels: list[str] = field(default_factory=list)
    split: str | None = None
    reference_text: str | None = None
    frame: int | None = None
    slice: int | None = None
    axis: str | None = None
    window: str | None = None  # CT window preset for DICOM
    orientation: str | None = None  # when the source states it (e.g. a CSV's view position) and the file cannot
    patient_left_on_image: str | None = None  # "left"/"right": the image side showing the patient's left
    annotations: list[Any] = field(default_factory=list)  # Annotation objects
    expert: str | dict | None = None  # expert choice: a name, "auto" (by modality) or {modality[/organ]: name}
    expert_mode: str = "fill"  # "fill": expert only where the source gives no region; "add": always, appended
    expert_options: dict = field(default_factory=dict)  # passed to the expert (e.g. a local checkpoint path)

    @property
    def id(self) -> str:
        return sample_id(self.source, self.file, self.slice, self.frame)

    @property
    def path(self) -> Path:
        return Path(self.root) / self.file


class Recipe(BaseModel):
    """A named dataset (or a user's YAML): which layout reads it and what its images show."""

    model_config = ConfigDict(extra="forbid")

    name: str
    layout: str
    title: str = ""
    modality: str | None = None
    organ: str | None = None
    disease: str | None = None
    label: str | None = None  # label of the ROIs when the layout has no per-region label
    split: str | None = None
    license: str = "as stated by the publisher"
    expects: str = ""  # the file layout as published, printed by `medtrinity recipes`
    expert: str | dict[str, str] | None = None  # a name, "auto" (by modality) or {modality[/organ]: name}
    expert_mode: Literal["fill", "add"] = "fill"  # fill: only where the source has no region; add: always
    expert_options: dict[str, Any] = {}  # e.g. {checkpoint: /models/medsam.pth} for a model-backed expert
    options: dict[str, Any] = {}  # layout-specific settings


class Layout(Protocol):
    def __init__(self, recipe: Recipe, root: Path) -> None: ...

    def check(self) -> None:
        """Raise UserError naming the expected file that is missing when the folder is not this layout."""

    def items(self) -> Iterator[SourceItem]: ...


_LAYOUTS: dict[str, type] = {}
LAYOUTS_PACKAGE = "medtrinity.sources.layouts"


def register_layout(name: str):
    def wrap(cls: type) -> type:
        _LAYOUTS[name] = cls
        return cls

    return wrap


def layout_names() -> list[str]:
    """Every layout module in sources/layouts/ (a new layout is one new file there, nothing else)."""
    import pkgutil

    from medtrinity.sources import layouts

    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(layouts.__path__) if not m.name.startswith("_"))


def get_layout(name: str) -> type:
    # Imported on first use, so that `import medtrinity` stays light.
    if name not in _LAYOUTS and name in layout_names():
        importlib.import_module(f"{LAYOUTS_PACKAGE}.{name.replace('-', '_')}")
    if name not in _LAYOUTS:
        raise UserError(f"unknown layout '{name}'; known layouts: {', '.join(layout_names())}")
    return _LAYOUTS[name]


def named_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def load_recipe(name_or_path: str) -> Recipe:
    """A named recipe (`medtrinity recipes`) or the path of a recipe YAML file."""
    named = named_recipes()
    if name_or_path in named:
        path = named[name_or_path]
    else:
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            raise UserError(
                f"unknown recipe '{name_or_path}'; run `medtrinity recipes` for the named ones, or give a recipe .yaml file"
            )
        if not path.is_file():
            raise UserError(f"recipe file not found: {path}")
    data = read_yaml_mapping(path, "recipe", "at least 'name' and 'layout'")
    data.setdefault("name", path.stem)
    try:
        recipe = Recipe(**data)
    except ValidationError as err:
        raise validation_error(err, f"recipe {path}") from None
    if recipe.modality is not None and recipe.modality not in MODALITIES:
        raise UserError(f"recipe {path}: modality '{recipe.modality}' is not one of {', '.join(MODALITIES)}")
    return recipe


def open_source(recipe: Recipe, root: str | Path) -> Layout:
    """The layout object for a recipe over a folder, checked: a wrong folder fails here, at once."""
    root = Path(root)
    if recipe.layout != "demo" and not root.exists():
        raise UserError(f"source folder not found: {root} (recipe {recipe.name})")
    layout = get_layout(recipe.layout)(recipe, root)
    layout.check()
    return layout
