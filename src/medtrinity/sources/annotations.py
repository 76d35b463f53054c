"""Source-given localisations, resolved against the image once it is read.

Each kind is a small picklable dataclass with `resolve(root, item, shape) -> list[Region]`; a layout
attaches them to its items, the read stage resolves them. A new kind is one new class here or in its
own module — the read stage never branches on the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medtrinity.errors import StageError
from medtrinity.records import Region
from medtrinity.sources.imaging import read_mask
from medtrinity.sources.readers.dicom import read_dicom_overlay


@dataclass
class SourceProblem:
    """A problem the source itself has for this record (a malformed row, a missing entry), found while
    listing: the read stage quarantines the record with this reason before touching any file."""

    reason: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        raise StageError(self.reason)


@dataclass
class MaskFile:
    """A binary (or label-map) mask image; `value` selects one label of a label map."""

    path: str  # relative to the source root
    label: str
    threshold: int = 127
    value: int | None = None
    # Why an empty mask is wrong here ("Kvasir-SEG images each show a polyp"): the record is quarantined with
    # it. None: an empty mask gives no region (a normal image, or a finding the source does not localise).
    empty: str | None = None

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        full = Path(root) / self.path
        if full.is_dir():
            raise StageError(f"mask {self.path} is a directory, not a mask file")
        if not full.is_file():
            raise StageError(f"mask file {self.path} is missing")
        mask = read_mask(full, shape, threshold=self.threshold, value=self.value, name=self.path)
        if mask.any():
            return [Region(label=self.label, mask=mask)]
        if self.empty:
            raise StageError(f"mask {self.path} is empty: {self.empty}")
        return []


@dataclass
class Box:
    """An axis-aligned box in pixels, x1/y1 exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        return [Region(label=self.label, bbox=(self.x0, self.y0, self.x1, self.y1))]


@dataclass
class DicomOverlay:
    """The overlay plane (group 60xx) stored in the DICOM file itself, e.g. a lesion outline."""

    label: str
    group: int = 0x6000

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        overlay = read_dicom_overlay(item.path, group=self.group, frame=item.frame or 0)
        if overlay is None or not overlay.any():
            raise StageError(f"{item.file} has no overlay plane in group {self.group:04X}")
        if overlay.shape != tuple(shape):
            raise StageError(
                f"overlay of {item.file} is {overlay.shape[1]}x{overlay.shape[0]} but the image is {shape[1]}x{shape[0]}"
            )
        return [Region(label=self.label, mask=largest_enclosed_region(overlay))]


def largest_enclosed_region(outline):
    """Overlays are drawn outlines next to text and markers: fill the outlines and keep the largest
    region that encloses area (a closed contour), which is the marked structure."""
    import numpy as np
    from scipy import ndimage

    filled = ndimage.binary_fill_holes(outline)
    components, count = ndimage.label(filled, structure=np.ones((3, 3)))
    if count == 0:
        raise StageError("the overlay plane is empty")
    sizes = ndimage.sum_labels(filled, components, index=range(1, count + 1))
    outline_sizes = ndimage.sum_labels(outline, components, index=range(1, count + 1))
    enclosing = [(size, i + 1) for i, (size, drawn) in enumerate(zip(sizes, outline_sizes)) if size > drawn]
    if not enclosing:
        raise StageError("the overlay has no closed outline to take as a region")
    return components == max(enclosing)[1]
