"""NIfTI volumes cut into 2D slices, with the geometry that lets a user find each slice again.

Every volume is first reoriented to the closest canonical orientation (RAS+: voxel axes i, j, k point to
the patient's Right, Anterior and Superior), so `slice` indices mean the same thing whatever affine the
publisher wrote. A 2D slice is then laid out in the radiological display convention (DESIGN.md):

- axial    (k fixed): anterior up, patient's right on the image's LEFT  -> patient_left_on_image "right"
- coronal  (j fixed): superior up, patient's right on the image's LEFT  -> "right"
- sagittal (i fixed): superior up, anterior on the image's left        -> None (no left/right in-plane)

`slice_layout` is the one place that layout is written; label maps go through it too (`read_label_slice`),
so masks line up with the pixels exactly. Loaded volumes are cached per process (an LRU of two volumes),
so listing or reading many slices of one volume decompresses it once.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import ImageData, Reader, check_pixel_count
from medtrinity.sources.readers.intensity import (
    PERCENTILE_RULE,
    ct_window_rule,
    format_number,
    percentile_range,
    range_to_uint8,
    resolve_window,
    window_to_uint8,
)
from medtrinity.sources.readers.registry import register_reader

AXES = ("axial", "coronal", "sagittal")
# Index of the canonical (RAS) voxel axis each slicing axis holds fixed.
AXIS_INDEX = {"sagittal": 0, "coronal": 1, "axial": 2}
_WORLD_NAME = {"sagittal": "x", "coronal": "y", "axial": "z"}
_PATIENT_LEFT_ON_IMAGE = {"axial": "right", "coronal": "right", "sagittal": None}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
CACHE_SIZE = 2
# Single-file NIfTI-1 keeps "n+1\0" at byte 344 after sizeof_hdr 348; NIfTI-2 "n+2\0" at byte 4 after 540.
_NIFTI1, _NIFTI2 = (348, 344, b"n+1\x00"), (540, 4, b"n+2\x00")


@register_reader
class NiftiReader(Reader):
    name = "nifti"
    suffixes = NIFTI_SUFFIXES
    trust_suffix = True  # so a cut or corrupt volume gets a NIfTI reason, not "unrecognised format"
    priority = 20

    def sniff(self, head: bytes) -> bool:
        return _nifti_version(head) is not None

    def read(self, path, frame=None, slice_index=None, axis=None, window=None) -> ImageData:
        if frame is not None:
            raise StageError("a NIfTI volume has slices, not frames: give a slice index")
        return read_volume_slice(path, slice_index=slice_index, axis=axis, window=window)

    def read_mask_values(self, path, frame=None, slice_index=None, axis=None) -> np.ndarray:
        axis = check_axis(axis)
        index = default_slice(volume_shape(path), axis) if slice_index is None else int(slice_index)
        return read_label_slice(path, index, axis)


def _nifti_version(head: bytes) -> int | None:
    """1 or 2 when `head` starts a single-file NIfTI header (either byte order), else None."""
    for version, (size, at, magic) in ((1, _NIFTI1), (2, _NIFTI2)):
        if head[at : at + 4] == magic and size in (struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]):
            return version
    return None


@dataclass(eq=False)
class Volume:
    """A canonical (RAS+) volume: values as float32 (scaling applied) or the label map as stored ints."""

    data: np.ndarray  # 3D, canonical voxel order
    affine: np.ndarray  # 4x4 voxel -> world (RAS mm), canonical
    zooms: tuple[float, float, float]  # voxel size in mm along i, j, k
    percentiles: tuple[float, float] | None = None  # 0.5/99.5 of the whole volume, computed on first use


_CACHE: OrderedDict[tuple, Volume] = OrderedDict()


def check_axis(axis: str | None) -> str:
    axis = axis or "axial"
    if axis not in AXES:
        raise StageError(f"axis {axis!r} is not one of {', '.join(AXES)}")
    return axis


def load_volume(path: str | Path, labels: bool = False) -> Volume:
    """The canonical volume of a NIfTI file, from the per-process cache when it is there.
    `labels=True` keeps integer values (a label map) instead of scaled floats."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"file {path.name} not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, labels)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    volume = _load_uncached(path, labels)
    _CACHE[key] = volume
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return volume


def clear_cache() -> None:
    _CACHE.clear()


def _open_nifti(path: Path):
    """The nibabel image. nibabel picks the format by suffix; a file named otherwise (the registry found its
    NIfTI header) is opened from its bytes."""
    import gzip

    import nibabel as nib

    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return nib.load(str(path))
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    image_class = nib.Nifti2Image if _nifti_version(data[: _NIFTI1[0]]) == 2 else nib.Nifti1Image
    return image_class.from_bytes(data)


def _load_uncached(path: Path, labels: bool) -> Volume:
    import nibabel as nib

    try:
        img = _open_nifti(path)
        if len(img.shape) == 4 and img.shape[3] == 1:  # a trailing singleton time axis
            img = img.slicer[..., 0]
        if len(img.shape) != 3:
            raise StageError(f"{path.name}: a 3D volume was expected, the file holds shape {tuple(img.shape)}")
        img = nib.as_closest_canonical(img)
        if labels:
            data = np.rint(np.asanyarray(img.dataobj)).astype(np.int32)
        else:
            data = img.get_fdata(dtype=np.float32)
    except StageError:
        raise
    except Exception as e:  # nibabel raises ImageFileError, OSError (gzip), EOFError, ValueError …
        raise StageError(f"{path.name}: not a readable NIfTI volume ({_nifti_problem(path, e)})") from e
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return Volume(data=data, affine=np.asarray(img.affine, dtype=np.float64), zooms=zooms)


def _nifti_problem(path: Path, error: Exception) -> str:
    """What is wrong with an unreadable NIfTI file, in words. nibabel's messages carry the absolute path and
    library class names, so they are classified here, never passed on."""
    import gzip
    import zlib

    if not path.is_file():
        return "file not found"
    with open(path, "rb") as f:
        head = f.read(2)
    if path.name.lower().endswith(".gz") and head != b"\x1f\x8b":
        return "not gzip"
    if isinstance(error, (EOFError, gzip.BadGzipFile, zlib.error)) or "Expected" in str(error):
        return "truncated or corrupt data"
    if "Cannot work out file type" in str(error):
        return "truncated, or no NIfTI header"
    return f"corrupt header or data ({type(error).__name__})"


def volume_shape(path: str | Path) -> tuple[int, ...]:
    """Canonical shape from the header alone (no voxel data read)."""
    import nibabel as nib

    try:
        img = _open_nifti(Path(path))
        ornt = nib.orientations.io_orientation(img.affine)
    except Exception as e:
        raise StageError(f"{Path(path).name}: not a readable NIfTI volume ({_nifti_problem(Path(path), e)})") from e
    shape = img.shape[:3]
    return tuple(int(shape[int(ax)]) for ax in np.argsort(ornt[:, 0]))


def slice_layout(volume_data: np.ndarray, index: int, axis: str) -> np.ndarray:
    """The 2D slice `index` along `axis` of canonical data, in the radiological layout (module docstring)."""
    n = volume_data.shape[AXIS_INDEX[axis]]
    if not 0 <= index < n:
        raise StageError(f"{axis} slice {index} out of range: the volume has {n} {axis} slices")
    if axis == "axial":  # (i, j) -> rows: anterior first, columns: patient's right first
        return volume_data[::-1, ::-1, index].T
    if axis == "coronal":  # (i, k) -> rows: superior first, columns: patient's right first
        return volume_data[::-1, index, ::-1].T
    return volume_data[index, ::-1, ::-1].T  # sagittal (j, k) -> rows: superior first, columns: anterior first


def in_plane_spacing(zooms: tuple[float, float, float], axis: str) -> list[float]:
    """Row and column spacing in mm of a slice laid out by `slice_layout`."""
    i, j, k = zooms
    return {"axial": [j, i], "coronal": [k, i], "sagittal": [k, j]}[axis]


def world_position(volume: Volume, index: int, axis: str) -> float:
    """World coordinate (RAS mm) along the slicing axis of the slice's centre voxel."""
    centre = [(s - 1) / 2.0 for s in volume.data.shape]
    centre[AXIS_INDEX[axis]] = index
    return float((volume.affine @ np.array([*centre, 1.0]))[AXIS_INDEX[axis]])


def default_slice(shape: tuple[int, ...], axis: str) -> int:
    """The middle slice along `axis` of a canonical shape: the slice read when none is given."""
    return shape[AXIS_INDEX[axis]] // 2


def read_volume_slice(
    path: str | Path, slice_index: int | None = None, axis: str | None = None, window: str | None = None
) -> ImageData:
    """One slice of a NIfTI volume as 8-bit pixels. `window` (a CT preset or "L<level>/W<width>") maps HU;
    without it the volume's own 0.5-99.5 percentiles (over the whole volume, so every slice of one volume
    shares one intensity rule) map to 8-bit — the MRI rule. No slice index: the middle slice."""
    axis = check_axis(axis)
    volume = load_volume(path)
    index = default_slice(volume.data.shape, axis) if slice_index is None else int(slice_index)
    values = slice_layout(volume.data, index, axis)
    check_pixel_count(values.shape[1], values.shape[0])
    if window is not None:
        label, level, width = resolve_window(window)
        pixels = window_to_uint8(values, level, width)
        rule = ct_window_rule(label, level, width)
    else:
        if volume.percentiles is None:
            volume.percentiles = percentile_range(volume.data)
        pixels = range_to_uint8(values, *volume.percentiles)
        rule = f"{PERCENTILE_RULE} (over the volume)"
    position = world_position(volume, index, axis)
    return ImageData(
        pixels=np.ascontiguousarray(pixels),
        intensity=rule,
        spacing=[round(s, 6) for s in in_plane_spacing(volume.zooms, axis)],
        orientation=f"{axis} RAS {_WORLD_NAME[axis]}={format_number(round(position, 3) + 0.0)}mm",
        patient_left_on_image=_PATIENT_LEFT_ON_IMAGE[axis],
    )


def read_label_slice(path: str | Path, slice_index: int, axis: str | None = None) -> np.ndarray:
    """The integer label-map slice, laid out exactly as `read_volume_slice` lays out the image."""
    return np.ascontiguousarray(slice_layout(load_volume(path, labels=True).data, slice_index, check_axis(axis)))
