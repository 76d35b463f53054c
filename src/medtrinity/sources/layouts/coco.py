"""Generic layout: a COCO instances JSON (images, annotations, categories), as detection and
segmentation datasets ship it.

    name: my-lesions
    layout: coco
    modality: Endoscopy
    organ: colon
    disease: polyp
    expert: auto                         # images without annotations: an expert finds the ROI
    options:
      annotations: annotations/instances_train.json   # the JSON, relative to the source folder
      images: images/train                # folder the JSON's file_name is relative to (default: the source folder)
      use: segmentation                   # "segmentation" (polygons / RLE when present, else the box) or "bbox"
      categories:                         # optional: category name -> label (default: the name)
        adenoma: polyp

Boxes are COCO's [x, y, width, height] in pixels; polygons and RLE (compressed or not) are rasterised
with pycocotools. Labels are the category names (an image without annotations has none: the JSON does not
call it normal; declare kinds with `label_kinds`). An annotation that names an unknown category or has a
malformed box/segmentation, and a box outside the image, quarantine their image with the reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterator, Literal

from pydantic import Field

from medtrinity.errors import UserError
from medtrinity.sources.annotation_formats import CocoSegmentation, PixelBox
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, layout_options


class CocoOptions(LayoutOptions):
    annotations: str = Field(examples=["annotations/instances_train.json"])  # the JSON, relative to the folder
    images: str = ""  # folder the JSON's file_name is relative to
    use: Literal["segmentation", "bbox"] = "segmentation"
    categories: dict[str, str] = {}  # category name -> label


@register_layout("coco")
class CocoLayout:
    Options = CocoOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.annotations = opts.annotations
        self.images = opts.images.strip("/")
        self.use = opts.use
        self.category_labels: dict = opts.categories

    def check(self) -> None:
        if not (self.root / self.annotations).is_file():
            raise UserError(f"recipe {self.recipe.name} expects {self.annotations} under {self.root}: it is missing")

    def _load(self) -> dict:
        try:
            data = json.loads((self.root / self.annotations).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{self.annotations} under {self.root} is not readable JSON: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise UserError(f"{self.annotations} is not a COCO file: it has no 'images' list")
        return data

    def _annotation(self, ann: dict, categories: dict, index: int):
        where = f"{self.annotations} annotation {ann.get('id', f'#{index}')}"
        name = categories.get(ann.get("category_id"))
        if name is None:
            return SourceProblem(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
        label = str(self.category_labels.get(name, name))
        segmentation = ann.get("segmentation")
        if self.use == "segmentation" and segmentation:
            return CocoSegmentation(segmentation, label, where)
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int | float) for v in box):
            return SourceProblem(f"{where}: bbox {box!r} is not [x, y, width, height]")
        x, y, w, h = (float(v) for v in box)
        return PixelBox(x, y, x + w, y + h, label, where)

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        data = self._load()
        categories = {c.get("id"): str(c.get("name")) for c in data.get("categories", []) if isinstance(c, dict)}
        per_image: dict = defaultdict(list)
        for index, ann in enumerate(data.get("annotations", []) or []):
            if isinstance(ann, dict):
                per_image[ann.get("image_id")].append(self._annotation(ann, categories, index))
        prefix = f"{self.images}/" if self.images else ""
        entries = sorted(
            (f"{prefix}{img.get('file_name', '')}", img) for img in data["images"] if isinstance(img, dict)
        )
        for file, image in entries:
            annotations = per_image.get(image.get("id"), [])
            labels = list(dict.fromkeys(a.label for a in annotations if hasattr(a, "label")))
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=file,
                modality=r.modality,
                organ=r.organ,
                # No annotation: the JSON names no object on this image; that is not a statement of "normal".
                disease=r.disease if annotations else None,
                labels=labels,
                split=r.split,
                annotations=annotations,
                expert=r.expert,
            )
