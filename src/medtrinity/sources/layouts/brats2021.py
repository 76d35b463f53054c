"""BraTS 2021 (RSNA-ASNR-MICCAI): one folder per case, four MRI sequences and a label map, as published.

    BraTS2021_<id>/BraTS2021_<id>_{flair,t1,t1ce,t2,seg}.nii.gz

PATH is the folder holding the case folders, or its parent (the archive's own top folder). Records are
axial slices of one sequence (options.sequence, FLAIR by default) chosen by the label map
(volume.SliceChoice: options per_label, every, normal_slices; options.axis: axial/coronal/sagittal).
Labels: 1 necrotic tumor core, 2 peritumoral edema, 4 GD-enhancing tumor. A label-free slice of a case is
not "normal" (every case is a glioma): it gets the label "glioma" of kind "case". A case without its seg
file is one quarantined record naming the missing file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Literal

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import SliceOptions, layout_options
from medtrinity.sources.volume import SliceChoice, axis_option, labelled_volume_items

SEQUENCES = ("flair", "t1", "t1ce", "t2")
BRATS_LABELS = {1: "necrotic tumor core", 2: "peritumoral edema", 4: "GD-enhancing tumor"}
CASE_GLOB = "BraTS2021_*"


def _case_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(CASE_GLOB) if p.is_dir())


class Brats2021Options(SliceOptions):
    sequence: Literal["flair", "t1", "t1ce", "t2"] = "flair"  # the image the records show


@register_layout("brats2021")
class Brats2021Layout:
    Options = Brats2021Options

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        parsed = layout_options(self, recipe)
        opts = parsed.model_dump()
        self.sequence = parsed.sequence
        self.axis = axis_option(opts, recipe.name)
        self.choice = SliceChoice.from_options(opts, recipe.name)

    def _cases(self) -> list[Path]:
        """Case folders directly under PATH, else under its one sub-folder that holds them."""
        cases = _case_dirs(self.root)
        if cases:
            return cases
        for sub in sorted(p for p in self.root.iterdir() if p.is_dir()):
            cases = _case_dirs(sub)
            if cases:
                return cases
        return []

    def check(self) -> None:
        if not self._cases():
            raise UserError(
                f"{self.recipe.name} expects case folders BraTS2021_<id>/ (with BraTS2021_<id>_{self.sequence}.nii.gz) "
                f"under {self.root}: no BraTS2021_* folder is there"
            )

    def items(self) -> Iterator[SourceItem]:
        for case in self._cases():
            rel = case.relative_to(self.root).as_posix()
            image = f"{rel}/{case.name}_{self.sequence}.nii.gz"
            label_map = f"{rel}/{case.name}_seg.nii.gz"
            yield from labelled_volume_items(
                self.recipe,
                self.root,
                image,
                label_map,
                BRATS_LABELS,
                self.choice,
                axis=self.axis,
            )
