"""Generic layout: YOLO detection labels, `images/…/<name>.<ext>` beside `labels/…/<name>.txt`.

    name: my-fractures
    layout: yolo
    modality: X-Ray
    organ: wrist
    expert: auto                        # images without a label file (YOLO's background images)
    options:
      images: "images/**/*"             # glob of the images (default)
      data_yaml: data.yaml              # the dataset's data.yaml with `names` (list or {index: name}) …
      names: [fracture, plate]          # … or the class names here (index = class id)
      normal: [plate]                   # optional: classes that are not findings

Each label line is `class cx cy w h`, normalised to 0..1 by the image size. The label file of
`images/train/x.jpg` is `labels/train/x.txt` (the last `images` folder becomes `labels`). The split is
the folder under images/ when it is train / val / valid / test, else the recipe's split. A missing
label file means no object (a background image); a malformed line or an unknown class id quarantines
its image with the file and line number.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

import yaml

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import NormalisedBox
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import IMAGE_SUFFIXES, LayoutOptions, check_matches, layout_options, list_files

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def label_path(image: str) -> str:
    """labels/… path of an images/… path (the last 'images' folder replaced), suffix .txt."""
    parts = list(PurePosixPath(image).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return str(PurePosixPath(*parts).with_suffix(".txt"))


class YoloOptions(LayoutOptions):
    images: str = "images/**/*"  # glob of the images
    data_yaml: str | None = None  # the dataset's data.yaml with `names`
    names: list[str] | dict[int, str] | None = None  # class names (index = class id)
    normal: list[str] = []  # classes that are not findings


@register_layout("yolo")
class YoloLayout:
    Options = YoloOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.opts = layout_options(self, recipe)
        self.images = self.opts.images
        self.normal = set(self.opts.normal)

    def _names(self) -> list[str]:
        names = self.opts.names
        if names is None and self.opts.data_yaml is not None:
            path = self.root / self.opts.data_yaml
            if not path.is_file():
                raise UserError(
                    f"recipe {self.recipe.name} expects {self.opts.data_yaml} under {self.root}: it is missing"
                )
            names = (yaml.safe_load(path.read_text()) or {}).get("names")
        if isinstance(names, dict):
            names = [str(names[k]) for k in sorted(names, key=int)]
        if not isinstance(names, list) or not names:
            raise UserError(f"recipe {self.recipe.name}: give options.names (a list) or options.data_yaml with `names`")
        return [str(n) for n in names]

    def _image_files(self) -> list[str]:
        return [f for f in list_files(self.root, self.images) if PurePosixPath(f).suffix.lower() in IMAGE_SUFFIXES]

    def check(self) -> None:
        check_matches(self._image_files(), self.root, self.images, self.recipe.name)
        self._names()

    def _annotations(self, label_file: str, names: list[str]) -> list:
        path = self.root / label_file
        if not path.is_file():
            return []
        annotations = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{label_file} line {number}"
            fields = line.split()
            try:
                cls = int(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:5])
                if len(fields) != 5:
                    raise ValueError
            except (ValueError, IndexError):
                annotations.append(SourceProblem(f"{where}: expected 'class cx cy w h', got {line.strip()!r}"))
                continue
            if not 0 <= cls < len(names):
                annotations.append(SourceProblem(f"{where}: class {cls} is not one of the {len(names)} names"))
                continue
            annotations.append(NormalisedBox(cx, cy, w, h, names[cls], where))
        return annotations

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        names = self._names()
        for image in self._image_files():
            annotations = self._annotations(label_path(image), names)
            labels = list(dict.fromkeys(a.label for a in annotations if hasattr(a, "label")))
            findings = [label for label in labels if label not in self.normal]
            folder = PurePosixPath(image).parts
            split = next((SPLIT_FOLDERS[p] for p in folder[:-1] if p in SPLIT_FOLDERS), r.split)
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=image,
                modality=r.modality,
                organ=r.organ,
                # A background image (no label file) names no object; that is not a statement of "normal".
                disease=r.disease if findings else None,
                labels=labels,
                split=split,
                annotations=annotations,
                expert=r.expert,
            )
