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
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

from medtrinity.sources.annotations import MaskFile
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import IMAGE_SUFFIXES, check_matches, list_files, require_option
from medtrinity.errors import UserError


@register_layout("image-mask")
class ImageMaskLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = recipe.options
        self.images = require_option(opts, "images", recipe.name, '"images/*.png"')
        self.masks = require_option(opts, "masks", recipe.name, '"masks/{stem}.png"')
        try:
            self.threshold = int(opts.get("threshold", 127))
        except (TypeError, ValueError):
            raise UserError(f"recipe {recipe.name}: options.threshold must be a whole number, e.g. 127") from None
        self.exclude = opts.get("exclude", [])
        if not isinstance(self.exclude, list) or not all(isinstance(e, str) for e in self.exclude):
            raise UserError(f"recipe {recipe.name}: options.exclude must be a list of globs, e.g. [\"*_mask*\"]")
        if not isinstance(self.masks, str):
            raise UserError(f"recipe {recipe.name}: options.masks must be a pattern such as \"masks/{{stem}}.png\"")
        try:
            self.masks.format(stem="x", name="x.png", parent="images")
        except (KeyError, IndexError, ValueError) as err:
            raise UserError(
                f"recipe {recipe.name}: options.masks {self.masks!r} uses an unknown placeholder {err}; "
                "use {stem}, {name} or {parent}"
            ) from None
        self.missing_mask = opts.get("missing_mask", "quarantine")
        if self.missing_mask not in ("quarantine", "normal"):
            raise UserError(f"recipe {recipe.name}: options.missing_mask must be 'quarantine' or 'normal'")

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
        return [pattern] if (self.root / pattern).is_file() or self.missing_mask == "quarantine" else []

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        label = r.label or r.disease or "region of interest"
        for image in self._image_files():
            masks = self.mask_files(image)
            yield SourceItem(
                source=r.name, root=str(self.root), file=image, modality=r.modality, organ=r.organ,
                disease=r.disease if masks else None, labels=[label] if masks else ["normal"], split=r.split,
                annotations=[MaskFile(m, label, threshold=self.threshold) for m in masks], expert=r.expert,
            )
