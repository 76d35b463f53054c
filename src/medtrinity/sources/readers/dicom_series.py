"""DICOM series: files grouped by SeriesInstanceUID and put in anatomical order; a folder read as one series.

Slices are ordered by ImagePositionPatient projected on the slice normal (the cross product of the
ImageOrientationPatient row and column directions), never by file name: publishers name files by
instance number, by UID or at random. Files without a position fall back to InstanceNumber, then name.
Only the geometry tags are read (no pixels), and no identifier leaves this module: a series is known by
its files, not by its UID.

`DicomSeriesReader` reads a folder holding one series: `slice_index` counts slices in that order (the
middle one when none is given), and the slice file is read by the DICOM reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import ImageData, Reader
from medtrinity.sources.readers.dicom import DicomReader
from medtrinity.sources.readers.dicom_header import quiet_pydicom
from medtrinity.sources.readers.registry import register_reader

_GEOMETRY_TAGS = ["SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber"]


@register_reader
class DicomSeriesReader(Reader):
    name = "dicom-series"
    reads_folders = True

    def read(self, path, frame=None, slice_index=None, axis=None, window=None) -> ImageData:
        return DicomReader().read(series_slice_file(path, slice_index), frame=frame, window=window)

    def read_mask_values(self, path, frame=None, slice_index=None, axis=None) -> np.ndarray:
        return DicomReader().read_mask_values(series_slice_file(path, slice_index), frame=frame)


def series_slice_file(folder: Path, slice_index: int | None) -> Path:
    """The file of slice `slice_index` (middle when None) of the one series the folder holds."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    series, _ = list_series(folder, files)
    if not series:
        raise StageError(f"folder {folder.name} holds no readable DICOM file")
    if len(series) > 1:
        raise StageError(f"folder {folder.name} holds {len(series)} DICOM series; read as one volume it must hold one")
    slices = series[0].files
    index = len(slices) // 2 if slice_index is None else int(slice_index)
    if not 0 <= index < len(slices):
        raise StageError(f"slice {index} out of range: the series has {len(slices)} slices")
    return folder / slices[index]


@dataclass
class SeriesSlice:
    file: str  # relative to the source root
    position: float | None  # mm along the slice normal
    instance: int | None


@dataclass
class DicomSeries:
    slices: list[SeriesSlice] = field(default_factory=list)  # sorted, inferior/posterior/right first
    axis: str | None = None  # "axial", "coronal", "sagittal" from the slice normal; None if oblique/unknown

    @property
    def files(self) -> list[str]:
        return [s.file for s in self.slices]


def slice_normal(iop) -> np.ndarray:
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:6], float)
    return np.cross(row, col)


def axis_of_normal(normal: np.ndarray) -> str | None:
    """The slicing axis a normal points along (within ~45 degrees), in LPS patient axes."""
    main = int(np.argmax(np.abs(normal)))
    if abs(normal[main]) < 0.7:
        return None
    return ("sagittal", "coronal", "axial")[main]


def _sort_key(s: SeriesSlice) -> tuple:
    return (s.position is None, s.position or 0.0, s.instance is None, s.instance or 0, s.file)


def _geometry_value(ds, keyword: str, size: int) -> np.ndarray | None:
    """A multi-valued geometry tag as `size` finite floats; None when absent or corrupt (the slice then
    sorts by instance number; the read stage reports what is wrong with the file)."""
    try:
        value = ds.get(keyword)
        array = np.asarray(value, float) if value is not None else None
    except Exception:  # noqa: BLE001 - unparsable values, wrong VR, text where numbers belong
        return None
    return array if array is not None and array.shape == (size,) and np.isfinite(array).all() else None


def _instance_number(ds) -> int | None:
    try:
        number = ds.get("InstanceNumber")
        return int(number) if number not in (None, "") else None
    except Exception:  # noqa: BLE001 - a corrupt number only loses the fallback sort key
        return None


def _series_key(ds, rel: str) -> str:
    try:
        uid = ds.get("SeriesInstanceUID", "")
    except Exception:  # noqa: BLE001 - a corrupt UID groups the file by its folder
        uid = ""
    return (uid if isinstance(uid, str) else "") or f"folder:{Path(rel).parent.as_posix()}"


def list_series(root: Path, files: list[str]) -> tuple[list[DicomSeries], list[str]]:
    """(series in order of their first file, files that could not be read as DICOM).

    Read under `quiet_pydicom`: validation warnings and log records quote header values."""
    import pydicom

    groups: dict[str, list[SeriesSlice]] = {}
    normals: dict[str, np.ndarray | None] = {}
    unreadable: list[str] = []
    with quiet_pydicom():
        for rel in files:
            try:
                ds = pydicom.dcmread(str(root / rel), stop_before_pixels=True, specific_tags=_GEOMETRY_TAGS)
            except Exception:  # noqa: BLE001 - InvalidDicomError, OSError, struct errors: the read stage quarantines it
                unreadable.append(rel)
                continue
            uid = _series_key(ds, rel)
            if uid not in normals:
                iop = _geometry_value(ds, "ImageOrientationPatient", 6)
                normals[uid] = slice_normal(iop) if iop is not None else None
            normal, ipp = normals[uid], _geometry_value(ds, "ImagePositionPatient", 3)
            position = float(np.dot(ipp, normal)) if normal is not None and ipp is not None else None
            groups.setdefault(uid, []).append(SeriesSlice(rel, position, _instance_number(ds)))
    series = []
    for uid, slices in groups.items():
        normal = normals[uid]
        series.append(
            DicomSeries(sorted(slices, key=_sort_key), axis_of_normal(normal) if normal is not None else None)
        )
    series.sort(key=lambda s: min(s.files))
    return series, unreadable
