"""Generic layout: Pascal VOC XML, one `Annotations/<name>.xml` per image in `JPEGImages/`.

    name: my-nodules
    layout: pascal-voc
    modality: X-Ray
    organ: chest
    disease: lung nodule
    expert: auto
    options:
      annotations: "Annotations/*.xml"  # glob of the XML files (default)
      images: JPEGImages                # folder that <filename> is relative to (default)
      labels: {nodule: lung nodule}     # optional: object name -> label

Each `<object>` gives `<name>` and `<bndbox>` xmin, ymin, xmax, ymax. VOC coordinates are 1-based and
inclusive (the top-left pixel is (1, 1)); they are converted to this project's 0-based, exclusive
boxes as x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax. The split comes from
ImageSets/Main/{train,val,test}.txt when present, else the recipe's split. A malformed XML or box, and
a box outside the image, quarantine the image with the XML file named.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Iterator

from medtrinity.sources.annotation_formats import PixelBox
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, check_matches, layout_options, list_files

SPLITS = ("train", "val", "test")


def voc_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """1-based inclusive VOC corners -> 0-based, x1/y1-exclusive (x0, y0, x1, y1)."""
    return xmin - 1, ymin - 1, xmax, ymax


class PascalVocOptions(LayoutOptions):
    annotations: str = "Annotations/*.xml"  # glob of the XML files
    images: str = "JPEGImages"  # folder that <filename> is relative to
    labels: dict[str, str] = {}  # object name -> label


@register_layout("pascal-voc")
class PascalVocLayout:
    Options = PascalVocOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.annotations = opts.annotations
        self.images = opts.images.strip("/")
        self.labels: dict = opts.labels

    def check(self) -> None:
        check_matches(list_files(self.root, self.annotations), self.root, self.annotations, self.recipe.name)

    def _splits(self) -> dict[str, str]:
        found = {}
        for split in SPLITS:
            path = self.root / "ImageSets" / "Main" / f"{split}.txt"
            if path.is_file():
                found.update({line.split()[0]: split for line in path.read_text().splitlines() if line.strip()})
        return found

    def _image_by_stem(self, stem: str) -> str:
        """The image named like the XML file (any suffix), for XML that cannot say its <filename>."""
        found = list_files(self.root, f"{self.images}/{stem}.*")
        return found[0] if found else f"{self.images}/{stem}.jpg"

    def _parse(self, xml_file: str) -> tuple[str, list]:
        """(image file relative to root, annotations) of one XML file."""
        stem = PurePosixPath(xml_file).stem
        try:
            tree = ET.parse(self.root / xml_file).getroot()
        except ET.ParseError as e:
            return self._image_by_stem(stem), [SourceProblem(f"{xml_file}: not well-formed XML ({e})")]
        filename = (tree.findtext("filename") or "").strip()
        # The folder is globbed only for XML naming no image: a glob per file would scan it once per image.
        image = f"{self.images}/{filename}" if filename else self._image_by_stem(stem)
        annotations: list = []
        for index, obj in enumerate(tree.findall("object"), start=1):
            where = f"{xml_file} object {index}"
            name = (obj.findtext("name") or "").strip()
            box = obj.find("bndbox")
            try:
                corners = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError):
                annotations.append(SourceProblem(f"{where}: <bndbox> lacks numeric xmin, ymin, xmax, ymax"))
                continue
            if not name:
                annotations.append(SourceProblem(f"{where}: <name> is empty"))
                continue
            annotations.append(PixelBox(*voc_box(*corners), str(self.labels.get(name, name)), where))
        return image, annotations

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        splits = self._splits()
        for xml_file in list_files(self.root, self.annotations):
            image, annotations = self._parse(xml_file)
            labels = list(dict.fromkeys(a.label for a in annotations if hasattr(a, "label")))
            yield SourceItem(
                source=r.name,
                root=str(self.root),
                file=image,
                modality=r.modality,
                organ=r.organ,
                disease=r.disease if labels else None,
                labels=labels,  # no object is not a statement of "normal"
                split=splits.get(PurePosixPath(xml_file).stem, r.split),
                annotations=annotations,
                expert=r.expert,
            )
