"""DICOM series as a source: which slices of each series become records.

Grouping files into series and ordering them anatomically is the reader's work
(`sources/readers/dicom_series.py`); its names are re-exported here for the dicom-series layout.
"""

from __future__ import annotations

from medtrinity.sources.readers.dicom_series import (
    DicomSeries,
    SeriesSlice,
    axis_of_normal,
    list_series,
    slice_normal,
)
from medtrinity.sources.volume import evenly_spaced


def choose_series_slices(n: int, every: int = 1, max_per_series: int | None = None) -> list[int]:
    """Indices into a sorted series of n slices: every Nth, then at most max_per_series evenly spaced."""
    indices = list(range(n))[::every]
    if max_per_series is not None:
        indices = evenly_spaced(indices, max_per_series)
    return indices


__all__ = ["DicomSeries", "SeriesSlice", "axis_of_normal", "choose_series_slices", "list_series", "slice_normal"]
