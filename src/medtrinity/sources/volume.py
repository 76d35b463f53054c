"""Labelled volumes as a source: label-map slices as annotations, and which slices of a volume become records.

Reading a NIfTI volume, its canonical (RAS) orientation and the radiological layout of its slices live in
`sources/readers/nifti.py`; this module decides what to read: `SliceChoice` and `choose_slices` pick the
slices, `labelled_volume_items` makes one SourceItem per chosen slice, and `LabelMapSlice` turns the label
map's slice into regions that line up with the image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtrinity.errors import StageError, UserError
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.readers.nifti import (
    AXES,
    AXIS_INDEX,
    check_axis,
    default_slice,
    load_volume,
    read_label_slice,
    volume_shape,
)


def axis_option(options: dict, recipe_name: str) -> str:
    """A volume recipe's options.axis (axial when unset), checked before any work."""
    axis = options.get("axis") or "axial"
    if axis not in AXES:
        raise UserError(f"recipe {recipe_name}: options.axis must be axial, coronal or sagittal")
    return axis


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
            raise StageError(
                f"label map {self.path} slice is {values.shape[1]}x{values.shape[0]}, image {shape[1]}x{shape[0]}"
            )
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
    normal_slices: label-free slices added, evenly spaced inside the label-free run (never its first or last
      slice, which are usually outside the body). They are not called normal: in a tumour case they are
      slices of that case on which nothing is annotated (see `labelled_volume_items`).
    The union over labels is taken, so one record shows every label present in its slice."""

    per_label: int | None = 5  # None: all
    every: int = 1
    normal_slices: int = 2

    @classmethod
    def from_options(cls, options: dict, recipe_name: str) -> SliceChoice:
        per_label = options.get("per_label", 5)
        every, normal = options.get("every", 1), options.get("normal_slices", 2)
        ok = (
            (per_label == "all" or (isinstance(per_label, int) and per_label >= 1))
            and isinstance(every, int)
            and every >= 1
            and isinstance(normal, int)
            and normal >= 0
        )
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
    return [values[int(round(p))] for p in np.linspace(0, len(values) - 1, n)]  # noqa: RUF046 - numpy floats


def choose_slices(
    label_data: np.ndarray, axis: str, labels: dict[int, str], choice: SliceChoice
) -> dict[int, list[str]]:
    """{slice index: names of the labels present} for the chosen slices ([] for a label-free one), sorted."""
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
        result[s] = []
    return dict(sorted(result.items()))


def labelled_volume_items(
    recipe,
    root: Path,
    image: str,
    label_map: str,
    labels: dict[int, str],
    choice: SliceChoice,
    axis: str = "axial",
    window: str | None = None,
    not_disease: tuple[str, ...] = (),
):
    """SourceItems for the chosen slices of one image volume and its label map (both relative to root).

    A slice showing a label not in `not_disease` (e.g. kidney, cyst) carries the recipe's disease. A slice of a
    case whose label map shows the disease elsewhere, but not on this slice, carries no disease: it gets the
    recipe's disease as a label of kind "case" (the case has it; nothing of it is annotated here), never
    "normal". A missing or unreadable label map, or one whose shape differs from the image, still yields one
    item (the middle slice) that is quarantined with the reason, so one bad case never stops a run."""
    from medtrinity.sources.base import SourceItem

    def item(slice_index: int | None, names: list[str], annotation, case_has_disease: bool = False) -> SourceItem:
        diseased = any(n not in not_disease for n in names)
        case = [recipe.disease] if recipe.disease and case_has_disease and not diseased else []
        return SourceItem(
            source=recipe.name,
            root=str(root),
            file=image,
            modality=recipe.modality,
            organ=recipe.organ,
            disease=recipe.disease if diseased else None,
            labels=names + case,
            split=recipe.split,
            slice=slice_index,
            axis=axis,
            window=window,
            annotations=[annotation],
            expert=recipe.expert,
            label_kinds={name: "case" for name in case},
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
    disease_values = [value for value, name in labels.items() if name not in not_disease]
    case_has_disease = bool(np.isin(label_data, disease_values).any())
    for index, names in choose_slices(label_data, axis, labels, choice).items():
        yield item(index, names, annotation, case_has_disease)
