"""Generic layout: images and their masks, matched by a name pattern given in a YAML recipe.

name: my-polyps
layout: image-mask
modality: Endoscopy
organ: colon
disease: polyp
label: polyp
options:
  images: "images/*.jpg"          # glob under the source folder
  masks: "masks/{stem}.png"       # {stem} {name} {parent} of the image; may contain * (several masks)
  threshold: 127                  # mask pixel > threshold is inside (JPEG masks need it)
  exclude: ["*_mask*"]            # files the image glob must skip
  missing_mask: quarantine        # or "normal": an image without a mask is a normal sample
  empty_mask: unlocalised         # or "quarantine": every image shows the label, so an empty mask is an error
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator, Literal

from pydantic import Field, field_validator

from medtrinity.sources.annotations import MaskFile
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import (
    IMAGE_SUFFIXES,
    EmptyMask,
    LayoutOptions,
    check_matches,
    layout_options,
    list_files,
)


class ImageMaskOptions(LayoutOptions):
    images: str = Field(examples=['"images/*.png"'])
    masks: str = Field(examples=['"masks/{stem}.png"'])
    threshold: int = Field(127, ge=0, le=65535)
    exclude: list[str] = []
    missing_mask: Literal["quarantine", "normal"] = "quarantine"
    empty_mask: EmptyMask = "unlocalised"

    @field_validator("masks")
    @classmethod
    def _known_placeholders(cls, masks: str) -> str:
        try:
            masks.format(stem="x", name="x.png", parent="images")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"{masks!r} uses an unknown placeholder {err}; use {{stem}}, {{name}} or {{parent}}"
            ) from None
        return masks


@register_layout("image-mask")
class ImageMaskLayout:
    Options = ImageMaskOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.images, self.masks, self.threshold = opts.images, opts.masks, opts.threshold
        self.exclude, self.missing_mask = opts.exclude, opts.missing_mask
        label = recipe.label or recipe.disease or "region of interest"
        # With `empty_mask: quarantine` the recipe says every image with a mask shows its label.
        self.empty = f"every image of recipe {recipe.name} shows a {label}" if opts.empty_mask == "quarantine" else None

    def _image_files(self) -> list[str]:
        return [f for f in list_files(self.root, self.images, self.exclude) if Path(f).suffix.lower() in IMAGE_SUFFIXES]

    def check(self) -> None:
        check_matches(self._image_files(), self.root, self.images, self.recipe.name)

    def mask_files(self, image: str) -> list[str]:
        p = PurePosixPath(image)
        pattern = self.masks.format(stem=p.stem, name=p.name, parent=p.parent.as_posix())
        if any(ch in pattern for ch in "*?["):
            return [m for m in list_files(self.root, pattern) if m != image]
        # A missing single mask is kept as a reference, so the read stage quarantines it by name.
        return [pattern] if (self.root / pattern).exists() or self.missing_mask == "quarantine" else []

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        label = r.label or r.disease or "region of interest"
        for image in self._image_files():
            masks = self.mask_files(image)
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=image,
                modality=r.modality,
                organ=r.organ,
                disease=r.disease if masks else None,
                labels=[label] if masks else ["normal"],
                split=r.split,
                annotations=[MaskFile(m, label, threshold=self.threshold, empty=self.empty) for m in masks],
                expert=r.expert,
                label_kinds={} if masks else {"normal": "normal"},  # the recipe says a maskless image is normal
            )
