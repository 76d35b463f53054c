"""KiTS23 (kidney tumor segmentation challenge 2023): contrast CT volumes with label maps, as published.

    case_<nnnnn>/imaging.nii.gz, case_<nnnnn>/segmentation.nii.gz   (directly under PATH or under dataset/)

Values are Hounsfield units: slices are windowed (options.window, soft tissue by default; any
imaging.WINDOW_PRESETS name or "L<level>/W<width>"). Labels: 1 kidney, 2 tumor, 3 cyst. Slices are chosen
by the label map (volume.SliceChoice options); a slice showing only kidney or cyst carries no disease, and a
slice without the tumour (label-free or kidney/cyst only) of a case whose tumour is on other slices gets the
label "renal tumor" of kind "case" — never "normal": the case has a tumour, this slice just shows none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import SliceOptions, layout_options
from medtrinity.sources.volume import SliceChoice, axis_option, labelled_volume_items

KITS_LABELS = {1: "kidney", 2: "tumor", 3: "cyst"}
NOT_DISEASE = ("kidney", "cyst")  # labels that do not show the recipe's disease (renal tumor)


class Kits23Options(SliceOptions):
    window: str = "soft-tissue"  # CT window preset or L<level>/W<width>


@register_layout("kits23")
class Kits23Layout:
    Options = Kits23Options

    def __init__(self, recipe: Recipe, root: Path) -> None:
        from medtrinity.sources.imaging import resolve_window

        self.recipe, self.root = recipe, root
        parsed = layout_options(self, recipe)
        opts = parsed.model_dump()
        self.window = parsed.window
        resolve_window(self.window)  # UserError for an unknown window, before any work
        self.axis = axis_option(opts, recipe.name)
        self.choice = SliceChoice.from_options(opts, recipe.name)

    def _cases(self) -> list[str]:
        for base in (self.root, self.root / "dataset"):
            cases = sorted(p for p in base.glob("case_*") if (p / "imaging.nii.gz").is_file())
            if cases:
                return [p.relative_to(self.root).as_posix() for p in cases]
        return []

    def check(self) -> None:
        if not self._cases():
            raise UserError(
                f"{self.recipe.name} expects case_<nnnnn>/imaging.nii.gz under {self.root} or {self.root}/dataset: "
                "no case_*/imaging.nii.gz is there"
            )

    def items(self) -> Iterator[SourceItem]:
        for case in self._cases():
            yield from labelled_volume_items(
                self.recipe,
                self.root,
                f"{case}/imaging.nii.gz",
                f"{case}/segmentation.nii.gz",
                KITS_LABELS,
                self.choice,
                axis=self.axis,
                window=self.window,
                not_disease=NOT_DISEASE,
            )
