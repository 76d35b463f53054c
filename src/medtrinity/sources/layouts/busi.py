"""BUSI, Breast Ultrasound Images (Al-Dhabyani et al., Data in Brief 2020), as published.

    Dataset_BUSI_with_GT/            optional: PATH may be this folder or the one holding it
      benign/benign (12).png
      benign/benign (12)_mask.png    the lesion mask (white = lesion)
      benign/benign (12)_mask_1.png  a further lesion of the same image (also _mask_2 …)
      malignant/malignant (3).png, malignant (3)_mask.png
      normal/normal (7).png, normal (7)_mask.png   all black: no lesion

Each mask file is one region (several files = several ROIs; a mask with several blobs gives one ROI
per blob). Class folder -> disease and labels (recipe options.classes); the normal class has no disease,
its empty masks give no region, so the recipe's expert (auto) outlines the primary organ instead.
A benign/malignant image without any mask file is quarantined naming the expected mask; so is one whose
mask marks nothing ("mask … is empty: BUSI's benign images each show a lesion"), unless the recipe sets
`options.empty_mask: unlocalised` (then it is kept as a lesion record without a region).

    options:
      classes: {benign: {label: benign lesion, disease: benign breast lesion}, …}
      normal: [normal]            # classes without disease (their empty masks give no region)
      empty_mask: quarantine      # or unlocalised
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict

from medtrinity.errors import UserError
from medtrinity.sources.annotations import MaskFile
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import EmptyMask, LayoutOptions, layout_options, listable

CLASSES = ("benign", "malignant", "normal")
NESTED_FOLDER = "Dataset_BUSI_with_GT"
_MASK_NAME = re.compile(r"_mask(_\d+)?$")


def mask_order(name: str) -> int:
    """`x_mask.png` first, then `x_mask_1.png`, `x_mask_2.png` … (numerically, not as text)."""
    suffix = _MASK_NAME.search(Path(name).stem).group(1)
    return int(suffix[1:]) if suffix else 0


class BusiClass(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = None
    disease: str | None = None


class BusiOptions(LayoutOptions):
    classes: dict[Literal["benign", "malignant", "normal"], BusiClass] = {}
    normal: list[Literal["benign", "malignant", "normal"]] = ["normal"]
    empty_mask: EmptyMask = "quarantine"


@register_layout("busi")
class BusiLayout:
    Options = BusiOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        # Files keep the path as published, "Dataset_BUSI_with_GT/benign/…" when PATH is the outer folder.
        self.base = f"{NESTED_FOLDER}/" if (root / NESTED_FOLDER).is_dir() else ""
        opts = layout_options(self, recipe)
        self.classes = {name: c.model_dump(exclude_none=True) for name, c in opts.classes.items()}
        self.normal = set(opts.normal)
        self.quarantine_empty = opts.empty_mask == "quarantine"

    def check(self) -> None:
        for folder in CLASSES:
            if not (self.root / self.base / folder).is_dir():
                raise UserError(
                    f"busi expects benign/, malignant/ and normal/ (optionally under {NESTED_FOLDER}/) "
                    f"under {self.root}: {self.base}{folder}/ is missing"
                )

    def _images_and_masks(self, folder: str) -> Iterator[tuple[str, list[str]]]:
        """(image, its mask files) as paths relative to root; `folder` includes the optional outer folder."""
        names = sorted(p.name for p in (self.root / folder).iterdir() if listable(p) and p.suffix.lower() == ".png")
        masks: dict[str, list[str]] = {}
        for name in names:
            stem = Path(name).stem
            if _MASK_NAME.search(stem):
                masks.setdefault(_MASK_NAME.sub("", stem), []).append(name)
        for name in names:
            stem = Path(name).stem
            if not _MASK_NAME.search(stem):
                yield f"{folder}/{name}", [f"{folder}/{m}" for m in sorted(masks.get(stem, []), key=mask_order)]

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        for folder in CLASSES:
            info = self.classes.get(folder, {})
            normal = folder in self.normal
            label = info.get("label", folder)
            # Every benign/malignant image shows a lesion: a mask that marks nothing is a broken annotation.
            empty = f"BUSI's {folder} images each show a lesion" if self.quarantine_empty and not normal else None
            for image, masks in self._images_and_masks(self.base + folder):
                if not masks and not normal:  # kept as a reference so the record is quarantined by its name
                    masks = [f"{self.base}{folder}/{Path(image).stem}_mask.png"]
                yield SourceItem(
                    source=r.name,
                    root=str(self.root),
                    file=image,
                    modality=r.modality,
                    organ=r.organ,
                    disease=None if normal else info.get("disease", r.disease),
                    labels=["normal"] if normal else [label],
                    split=r.split,
                    annotations=[MaskFile(m, label, empty=empty) for m in masks],
                    expert=r.expert,
                    label_kinds={"normal": "normal"} if normal else {},  # the publisher's "normal" class
                )
