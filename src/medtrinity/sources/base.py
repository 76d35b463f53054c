"""What a source yields (`SourceItem`), what a recipe says (`Recipe`), and the layout registry.

A layout is one file that knows how a publisher lays out a dataset; it lists `SourceItem`s in a
deterministic order (sorted paths) so that shard k holds the same items on every run — the basis of
`--resume`. Items are small and picklable: pixels are read later, by the read stage, in the worker.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from medtrinity.errors import UserError
from medtrinity.sources.label_kinds import check_label_kinds
from medtrinity.yaml_files import WEIGHT_KEYS, path_beside, read_yaml_mapping, suggestion, validation_error
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
    # expert name -> its options from the recipe (e.g. {sam: {checkpoint: PATH}}); the build config's over them
    expert_options: dict = field(default_factory=dict)
    # label -> kind (records.LABEL_KINDS): a layout's per-item kinds, merged over the recipe's by the runner
    label_kinds: dict[str, str] = field(default_factory=dict)
    burned_in_text: bool = False  # the recipe says its images carry burned-in text: redacted by default

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
    label_kinds: dict[str, str] = {}  # label -> records.LABEL_KINDS (case-insensitive); undeclared: label_kinds.py
    split: str | None = None
    license: str = "as stated by the publisher"
    expects: str = ""  # the file layout as published, printed by `medtrinity recipes`
    expert: str | dict[str, str] | None = None  # a name, "auto" (by modality) or {modality[/organ]: name}
    expert_mode: Literal["fill", "add"] = "fill"  # fill: only where the source has no region; add: always
    expert_options: dict[str, Any] = {}  # e.g. {checkpoint: /models/medsam.pth} for a model-backed expert
    options: dict[str, Any] = {}  # layout-specific settings
    burned_in_text: bool = False  # images carry text burned into the pixels (site, name, date): redacted by default

    def expert_options_by_name(self) -> dict[str, dict[str, Any]]:
        """{expert: options}: a recipe's expert_options belong to the one expert it names."""
        if self.expert_options and isinstance(self.expert, str):
            return {self.expert: dict(self.expert_options)}
        return {}


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

    return sorted(
        m.name.replace("_", "-") for m in pkgutil.iter_modules(layouts.__path__) if not m.name.startswith("_")
    )


def get_layout(name: str) -> type:
    # Imported on first use, so that `import medtrinity` stays light.
    if name not in _LAYOUTS and name in layout_names():
        importlib.import_module(f"{LAYOUTS_PACKAGE}.{name.replace('-', '_')}")
    if name not in _LAYOUTS:
        close = suggestion(name, layout_names(), "layout")
        raise UserError(f"unknown layout '{name}'" + (close or f"; known layouts: {', '.join(layout_names())}"))
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
            close = difflib.get_close_matches(name_or_path, list(named), n=1)
            raise UserError(
                f"unknown recipe '{name_or_path}'"
                + (f" — did you mean '{close[0]}'?" if close else "")
                + "; run `medtrinity recipes` for the named ones, or give a recipe .yaml file"
            )
        if not path.is_file():
            raise UserError(f"recipe file not found: {path}")
    data = read_yaml_mapping(path, "recipe", "at least 'name' and 'layout'")
    data.setdefault("name", path.stem)
    if isinstance(data.get("expert_options"), dict):  # weights named in a recipe file lie beside it
        data["expert_options"] = {
            key: path_beside(value, path.parent) if key in WEIGHT_KEYS else value
            for key, value in data["expert_options"].items()
        }
    try:
        recipe = Recipe(**data)
    except ValidationError as err:
        raise validation_error(err, f"recipe {path}", model=Recipe) from None
    if recipe.modality is not None and recipe.modality not in MODALITIES:
        raise UserError(f"recipe {path}: modality '{recipe.modality}' is not one of {', '.join(MODALITIES)}")
    check_label_kinds(recipe.label_kinds, f"recipe {path}")
    check_recipe_settings(recipe, f"recipe {path}")
    return recipe


def check_recipe_settings(recipe: Recipe, where: str) -> None:
    """The layout's options and the expert's options, each against what it declares: a misspelled key is
    refused here, before anything is created, with a suggestion."""
    from medtrinity.sources.layout_util import LayoutOptions, parse_options

    try:
        layout = get_layout(recipe.layout)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    parse_options(getattr(layout, "Options", LayoutOptions), recipe.options, where, recipe.layout)
    if recipe.expert_options:
        from medtrinity.roi.experts.base import AUTO, check_expert_options

        named = isinstance(recipe.expert, str) and recipe.expert.strip().lower() not in ("", "none", AUTO)
        if not named:
            raise UserError(
                f"{where}: expert_options are the options of one named expert (expert: sam, onnx …); with "
                f"expert: {recipe.expert or 'none'} give them per expert in the build config's experts: section"
            )
        check_expert_options(recipe.expert, recipe.expert_options, f"{where}: expert_options")


def open_source(recipe: Recipe, root: str | Path) -> Layout:
    """The layout object for a recipe over a folder, checked: a wrong folder fails here, at once."""
    root = Path(root)
    if recipe.layout != "demo" and not root.exists():
        raise UserError(f"source folder not found: {root} (recipe {recipe.name})")
    from medtrinity.sources.layout_util import LayoutOptions, parse_options

    cls = get_layout(recipe.layout)
    # Layouts without options of their own refuse any key here (the others parse theirs when built).
    parse_options(getattr(cls, "Options", LayoutOptions), recipe.options, f"recipe {recipe.name}", recipe.layout)
    layout = cls(recipe, root)
    layout.check()
    return layout
