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

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtrinity.errors import StageError, UserError
from medtrinity.sources.annotations import SourceProblem

if TYPE_CHECKING:
    from medtrinity.sources.imaging import ImageData

AXES = ("axial", "coronal", "sagittal")
# Index of the canonical (RAS) voxel axis each slicing axis holds fixed.
AXIS_INDEX = {"sagittal": 0, "coronal": 1, "axial": 2}
_WORLD_NAME = {"sagittal": "x", "coronal": "y", "axial": "z"}
_PATIENT_LEFT_ON_IMAGE = {"axial": "right", "coronal": "right", "sagittal": None}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
CACHE_SIZE = 2


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


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


def axis_option(options: dict, recipe_name: str) -> str:
    """A volume recipe's options.axis (axial when unset), checked before any work."""
    axis = options.get("axis") or "axial"
    if axis not in AXES:
        raise UserError(f"recipe {recipe_name}: options.axis must be axial, coronal or sagittal")
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


def _load_uncached(path: Path, labels: bool) -> Volume:
    import nibabel as nib

    try:
        img = nib.load(str(path))
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
        img = nib.load(str(path))
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
    from medtrinity.sources.imaging import (
        PERCENTILE_RULE, ImageData, _check_pixel_count, _num, percentile_range, range_to_uint8, resolve_window,
        window_to_uint8,
    )

    axis = check_axis(axis)
    volume = load_volume(path)
    index = default_slice(volume.data.shape, axis) if slice_index is None else int(slice_index)
    values = slice_layout(volume.data, index, axis)
    _check_pixel_count(values.shape[1], values.shape[0])
    if window is not None:
        label, level, width = resolve_window(window)
        pixels = window_to_uint8(values, level, width)
        rule = f"CT window {label} (L{_num(level)} W{_num(width)}) HU"
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
        orientation=f"{axis} RAS {_WORLD_NAME[axis]}={_num(round(position, 3) + 0.0)}mm",
        patient_left_on_image=_PATIENT_LEFT_ON_IMAGE[axis],
    )


def read_label_slice(path: str | Path, slice_index: int, axis: str | None = None) -> np.ndarray:
    """The integer label-map slice, laid out exactly as `read_volume_slice` lays out the image."""
    return np.ascontiguousarray(slice_layout(load_volume(path, labels=True).data, slice_index, check_axis(axis)))


# ---------------------------------------------------------------- label maps: annotation and slice choice
@dataclass
class LabelMapSlice:
    """The regions of one slice of a label-map volume: one Region per label value present in the slice.

    `labels` maps label values to names; values absent from it are ignored. The label volume must have the
    image volume's canonical shape, else the record is quarantined (the masks would not line up)."""

    path: str  # label volume, relative to the source root
    image: str  # image volume, relative to the source root (for the shape check)
    labels: dict[int, str]

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list:
        from medtrinity.records import Region

        label_path = Path(root) / self.path
        if not label_path.is_file():
            raise StageError(f"label map {self.path} is missing")
        image_shape = check_same_shape(Path(root), self.path, self.image)
        axis = check_axis(item.axis)
        index = default_slice(image_shape, axis) if item.slice is None else item.slice  # header shape: no voxels read
        values = read_label_slice(label_path, index, axis)
        if values.shape != tuple(shape):
            raise StageError(f"label map {self.path} slice is {values.shape[1]}x{values.shape[0]}, image {shape[1]}x{shape[0]}")
        masks = ((name, values == value) for value, name in sorted(self.labels.items()))
        return [Region(label=name, mask=mask) for name, mask in masks if mask.any()]


def check_same_shape(root: Path, label_map: str, image: str) -> tuple[int, ...]:
    """The image volume's canonical shape; StageError when the label map's differs (masks would not line up)."""
    label_shape, image_shape = volume_shape(root / label_map), volume_shape(root / image)
    if label_shape != image_shape:
        raise StageError(
            f"label map {label_map} has shape {'x'.join(map(str, label_shape))} but its image "
            f"{image} has {'x'.join(map(str, image_shape))}"
        )
    return image_shape


@dataclass(frozen=True)
class SliceChoice:
    """Which slices of a labelled volume become records (recipe options, same names).

    per_label: for each label, at most this many slices containing it ("all" for every one): the slice
      where the label's area is largest, plus the rest evenly spaced over the slices containing it.
    every: first keep only every Nth of the slices containing a label (1: all of them).
    normal_slices: label-free slices added as normal examples, evenly spaced inside the label-free run
      (never its first or last slice, which are usually outside the body).
    The union over labels is taken, so one record shows every label present in its slice."""

    per_label: int | None = 5  # None: all
    every: int = 1
    normal_slices: int = 2

    @classmethod
    def from_options(cls, options: dict, recipe_name: str) -> "SliceChoice":
        per_label = options.get("per_label", 5)
        every, normal = options.get("every", 1), options.get("normal_slices", 2)
        ok = (per_label == "all" or (isinstance(per_label, int) and per_label >= 1)) and isinstance(every, int) \
            and every >= 1 and isinstance(normal, int) and normal >= 0
        if not ok:
            raise UserError(
                f"recipe {recipe_name}: options per_label (int >= 1 or 'all'), every (int >= 1) and "
                f"normal_slices (int >= 0) are invalid: {per_label!r}, {every!r}, {normal!r}"
            )
        return cls(per_label=None if per_label == "all" else per_label, every=every, normal_slices=normal)


def evenly_spaced(values: list[int], n: int, interior: bool = False) -> list[int]:
    """n items of a sorted list, evenly spaced (ends included, or strictly inside with `interior`)."""
    if n <= 0 or not values:
        return []
    if n >= len(values):
        return list(values)
    if interior:
        positions = [(k + 1) * len(values) / (n + 1) for k in range(n)]
        return sorted({values[min(int(p), len(values) - 1)] for p in positions})
    return [values[int(round(p))] for p in np.linspace(0, len(values) - 1, n)]


def choose_slices(label_data: np.ndarray, axis: str, labels: dict[int, str], choice: SliceChoice) -> dict[int, list[str]]:
    """{slice index: names of the labels present} for the chosen slices (["normal"] when none), sorted."""
    moved = np.moveaxis(label_data, AXIS_INDEX[axis], 0)
    areas = {value: (moved == value).reshape(moved.shape[0], -1).sum(axis=1) for value in labels}
    chosen: set[int] = set()
    for value in sorted(labels):
        present = [int(s) for s in np.flatnonzero(areas[value])][:: choice.every]
        if choice.per_label is None or len(present) <= choice.per_label:
            chosen.update(present)
            continue
        largest = max(present, key=lambda s: (areas[value][s], -s))  # ties: the lowest slice
        rest = [s for s in present if s != largest]
        chosen.update([largest, *evenly_spaced(rest, choice.per_label - 1)])
    labelled_area = sum(areas.values(), np.zeros(moved.shape[0], dtype=np.int64))  # no second pass over the volume
    label_free = [int(s) for s in np.flatnonzero(labelled_area == 0)]
    result = {s: [labels[v] for v in sorted(labels) if areas[v][s]] for s in sorted(chosen)}
    for s in evenly_spaced(label_free, choice.normal_slices, interior=True):
        result[s] = ["normal"]
    return dict(sorted(result.items()))


def labelled_volume_items(
    recipe, root: Path, image: str, label_map: str, labels: dict[int, str], choice: SliceChoice,
    axis: str = "axial", window: str | None = None, not_disease: tuple[str, ...] = (),
):
    """SourceItems for the chosen slices of one image volume and its label map (both relative to root).

    A slice showing a label not in `not_disease` (e.g. kidney, cyst) carries the recipe's disease. A missing or
    unreadable label map, or one whose shape differs from the image, still yields one item (the middle
    slice) that is quarantined with the reason, so one bad case never stops a run."""
    from medtrinity.sources.base import SourceItem

    def item(slice_index: int | None, names: list[str], annotation) -> SourceItem:
        diseased = any(n not in not_disease and n != "normal" for n in names)
        return SourceItem(
            source=recipe.name, root=str(root), file=image, modality=recipe.modality, organ=recipe.organ,
            disease=recipe.disease if diseased else None, labels=names, split=recipe.split, slice=slice_index,
            axis=axis, window=window, annotations=[annotation], expert=recipe.expert,
        )

    if not (root / label_map).is_file():
        yield item(None, [], SourceProblem(f"label map {label_map} is missing"))
        return
    try:
        check_same_shape(root, label_map, image)
        label_data = load_volume(root / label_map, labels=True).data
    except StageError as e:
        yield item(None, [], SourceProblem(str(e)))
        return
    annotation = LabelMapSlice(path=label_map, image=image, labels=labels)
    for index, names in choose_slices(label_data, axis, labels, choice).items():
        yield item(index, names, annotation)
