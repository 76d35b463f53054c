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

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import IMAGE_SUFFIXES, check_matches, list_files


@register_layout("class-folder")
class ClassFolderLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.images = recipe.options.get("images", "*/*")
        self.classes: dict = recipe.options.get("classes", {}) or {}
        if not isinstance(self.classes, dict) or not all(isinstance(v, dict) for v in self.classes.values()):
            raise UserError(f"recipe {recipe.name}: options.classes must map a class folder to "
                            "{label: …, disease: …}, e.g. TUM: {label: tumor epithelium}")
        normal = recipe.options.get("normal", [])
        if not isinstance(normal, list):
            raise UserError(f"recipe {recipe.name}: options.normal must be a list of class folders, e.g. [NORM]")
        self.normal = set(normal)

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
                source=r.name, root=str(self.root), file=image, modality=r.modality,
                organ=info.get("organ", r.organ), disease=disease,
                labels=[info.get("label", cls)] + (["normal"] if normal else []), split=r.split,
                expert=r.expert or "auto",
            )
