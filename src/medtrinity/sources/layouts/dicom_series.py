"""Generic layout: a folder of DICOM series, one record per slice (or a configured subset).

    name: my-ct
    layout: dicom-series
    modality: CT            # optional: else each file's Modality tag
    organ: abdomen
    expert: auto            # the series gives no ROI: experts find them
    options:
      files: "**/*.dcm"     # glob under the source folder
      every: 1              # keep every Nth slice of each sorted series
      max_per_series: 20    # then at most this many, evenly spaced (omit: no limit)
      window: soft-tissue   # CT window preset or L<level>/W<width> (omit: by BodyPartExamined)

Files are grouped by SeriesInstanceUID and sorted by position along the slice normal (dicom_series.py);
`slice` is the index in the sorted series, `file` the slice's own path. A file that is not readable
DICOM is still listed, so the read stage quarantines it by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pydantic import Field

from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.dicom_series import choose_series_slices, list_series
from medtrinity.sources.layout_util import LayoutOptions, check_matches, layout_options, list_files


class DicomSeriesOptions(LayoutOptions):
    files: str = "**/*.dcm"  # glob under the source folder
    every: int = Field(1, ge=1)  # every Nth slice of a series
    max_per_series: int | None = Field(None, ge=1)  # at most N slices per series, evenly spaced
    window: str | None = None  # CT window preset or L<level>/W<width>


@register_layout("dicom-series")
class DicomSeriesLayout:
    Options = DicomSeriesOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        opts = layout_options(self, recipe)
        self.pattern, self.every, self.window = opts.files, opts.every, opts.window
        self.max_per_series = opts.max_per_series
        if self.window is not None:
            from medtrinity.sources.imaging import resolve_window

            resolve_window(self.window)

    def check(self) -> None:
        check_matches(list_files(self.root, self.pattern), self.root, self.pattern, self.recipe.name)

    def _item(self, file: str, slice_index: int | None, axis: str | None) -> SourceItem:
        r = self.recipe
        return SourceItem(
            source=r.name,
            root=str(self.root),
            file=file,
            modality=r.modality,
            organ=r.organ,
            disease=r.disease,
            labels=[r.label] if r.label else [],
            split=r.split,
            slice=slice_index,
            axis=axis,
            window=self.window,
            expert=r.expert,
        )

    def items(self) -> Iterator[SourceItem]:
        series, unreadable = list_series(self.root, list_files(self.root, self.pattern))
        listed = []
        for s in series:
            for index in choose_series_slices(len(s.slices), self.every, self.max_per_series):
                listed.append(self._item(s.slices[index].file, index, s.axis))  # s.files builds a list per call
        # Series in order of their first file name, slices in anatomical order, then unreadable files.
        yield from listed
        yield from (self._item(f, None, None) for f in unreadable)
