"""Small helpers that several layouts share: deterministic file listing and option checking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medtrinity.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}


class LayoutOptions(BaseModel):
    """A layout's `options:` as it declares them; an unknown key is refused with a suggestion.

    A layout sets `Options = <subclass>` on its class; a layout without options keeps this empty one."""

    model_config = ConfigDict(extra="forbid")


# What a record becomes when its mask file exists but marks nothing, in a dataset whose every image
# shows the finding: quarantined (default), or kept without a region ("unlocalised").
EmptyMask = Literal["quarantine", "unlocalised"]

OptionsT = TypeVar("OptionsT", bound=LayoutOptions)


def parse_options(model: type[OptionsT], options: dict[str, Any] | None, where: str, layout: str = "") -> OptionsT:
    """The recipe's `options:` validated by the layout's model, or one line naming the bad key."""
    options = options or {}
    if not model.model_fields and options:
        key = next(iter(options))
        raise UserError(f"{where}: unknown option '{key}'; layout {layout or 'this layout'} takes no options")
    try:
        return model.model_validate(options)
    except ValidationError as err:
        from medtrinity.yaml_files import validation_error

        raise validation_error(err, where, model=model, prefix="options", noun="option") from None


def layout_options(layout: Any, recipe: Any) -> Any:
    """`parse_options` for a layout object's recipe (its class's `Options`)."""
    return parse_options(
        getattr(type(layout), "Options", LayoutOptions), recipe.options, f"recipe {recipe.name}", recipe.layout
    )


def image_named_directory(path: Path) -> bool:
    """A folder named like an image (`images/x.jpg/`): listed, so the read stage quarantines it by name."""
    return path.is_dir() and path.suffix.lower() in IMAGE_SUFFIXES


def listable(path: Path) -> bool:
    """A file, a broken symbolic link or a folder named like an image: an input the counts must see."""
    return path.is_file() or (path.is_symlink() and not path.exists()) or image_named_directory(path)


def list_files(root: Path, pattern: str, exclude: list[str] | None = None) -> list[str]:
    """Files under root matching a glob, as sorted POSIX paths relative to root (the order shards rely on).

    A broken symbolic link, and a folder named like an image, are listed too, so that the read stage
    quarantines them by name instead of the item silently disappearing from the counts."""
    if not isinstance(pattern, str) or not pattern.strip() or Path(pattern).is_absolute():
        raise UserError(f"the file pattern {pattern!r} must be a glob relative to the source folder, e.g. images/*.png")
    found = []
    for path in root.glob(pattern):
        rel = path.relative_to(root).as_posix()
        if listable(path) and not any(path.match(ex) for ex in exclude or []):
            found.append(rel)
    return sorted(found)


def check_matches(files: list[str], root: Path, pattern: str, recipe_name: str) -> None:
    if not files:
        raise UserError(f"{root} holds no file matching '{pattern}' — is this the folder recipe {recipe_name} expects?")


class SliceOptions(LayoutOptions):
    """The options of a layout that cuts labelled volumes into slices (volume.SliceChoice)."""

    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    per_label: Annotated[int, Field(ge=1)] | Literal["all"] = 5  # slices per label ("all": every one)
    every: int = Field(1, ge=1)  # keep every Nth labelled slice before choosing
    normal_slices: int = Field(2, ge=0)  # label-free slices per case
