"""Generic layout: one folder per class (`<root>/<CLASS>/<image>`), as classification datasets ship.

name: my-tissue
layout: class-folder
modality: Histopathology
organ: colon
expert: auto                      # class folders have no ROIs: an expert finds them
options:
  images: "*/*"                   # glob; the first folder of each path is the class
  classes:                        # optional: class folder -> label / disease (default: the folder name)
    TUM: {label: tumor epithelium, disease: colorectal adenocarcinoma}
    NORM: {label: normal colon mucosa}
  normal: [NORM]                  # classes that mean "no disease"
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict

from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import IMAGE_SUFFIXES, LayoutOptions, check_matches, layout_options, list_files


class FolderClass(BaseModel):
    """What one class folder means: its label, disease and organ (each defaults to the recipe's)."""

    model_config = ConfigDict(extra="forbid")
    label: str | None = None
    disease: str | None = None
    organ: str | None = None


class ClassFolderOptions(LayoutOptions):
    images: str = "*/*"  # glob; the first folder of each path is the class
    classes: dict[str, FolderClass] = {}  # class folder -> {label, disease, organ}
    normal: list[str] = []  # classes that mean "no disease"


@register_layout("class-folder")
class ClassFolderLayout:
    Options = ClassFolderOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.images = opts.images
        self.classes = {name: c.model_dump(exclude_none=True) for name, c in opts.classes.items()}
        self.normal = set(opts.normal)

    def _image_files(self) -> list[str]:
        files = list_files(self.root, self.images)
        return [f for f in files if "/" in f and Path(f).suffix.lower() in IMAGE_SUFFIXES]

    def check(self) -> None:
        check_matches(self._image_files(), self.root, self.images, self.recipe.name)

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        for image in self._image_files():
            cls = image.split("/", 1)[0]
            info = self.classes.get(cls, {})
            normal = cls in self.normal
            disease = None if normal else info.get("disease", r.disease)
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=image,
                modality=r.modality,
                organ=info.get("organ", r.organ),
                disease=disease,
                labels=[info.get("label", cls)] + (["normal"] if normal else []),
                split=r.split,
                expert=r.expert or "auto",
                label_kinds={"normal": "normal"} if normal else {},  # as options.normal says
            )
