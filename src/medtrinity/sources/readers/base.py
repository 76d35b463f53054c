"""What every reader returns (`ImageData`), what every reader is (`Reader`), and the checks they share.

Patient identifiers never leave a reader: `ImageData` only has the fields below, and each field holds a
number, a defined term or a fixed text, never a header value copied as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from medtrinity.errors import StageError

# Pillow's hard decompression-bomb limit (2 x its default MAX_IMAGE_PIXELS); applied to every format.
MAX_IMAGE_PIXELS = 178_956_970


@dataclass(repr=False, eq=False)  # eq would compare pixel arrays ambiguously
class ImageData:
    """A 2D image as stored, made 8-bit, with the rule that made it so and the geometry the file gives."""

    pixels: np.ndarray  # uint8, HxW (gray) or HxWx3 (RGB)
    intensity: str  # the normalisation/windowing rule applied
    spacing: list[float] | None = None  # row, column spacing in mm
    orientation: str | None = None  # compact ImageOrientationPatient, or the view ("PA")
    modality_hint: str | None = None  # a records.MODALITIES value the file states
    body_part: str | None = None  # lower-case BodyPartExamined
    n_frames: int = 1
    patient_left_on_image: str | None = None  # "left"/"right": the image side showing the patient's left

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def __repr__(self) -> str:
        return (
            f"ImageData(shape={self.pixels.shape}, intensity={self.intensity!r}, spacing={self.spacing}, "
            f"orientation={self.orientation!r}, modality_hint={self.modality_hint!r}, "
            f"body_part={self.body_part!r}, n_frames={self.n_frames}, "
            f"patient_left_on_image={self.patient_left_on_image!r})"
        )


class Reader:
    """One format family. The registry (`readers/registry.py`) picks a reader for a path by content first:
    `sniff` sees the file's first bytes (gunzipped when the file is gzip). Only when no reader recognises
    the content does the suffix decide, and only for readers with `trust_suffix` (formats whose files may
    lack their magic, like DICOM without its preamble); otherwise Pillow, the raster reader, tries.

    `read` gives the 8-bit image; `read_mask_values` the stored values of a mask or label image, unscaled.
    Arguments a format has no use for are ignored (a 2D file's `slice_index` only says where it sits)."""

    name: ClassVar[str]  # short, lower case ("dicom"); shown in docs and tests
    suffixes: ClassVar[tuple[str, ...]] = ()  # lower-case name endings its files usually carry
    trust_suffix: ClassVar[bool] = False  # a file with one of `suffixes` but no magic still comes here
    reads_folders: ClassVar[bool] = False  # reads a folder (a series) instead of one file
    priority: ClassVar[int] = 50  # sniffing order, lowest first: a magic found inside another format's goes first

    def sniff(self, head: bytes) -> bool:
        """Whether the content (its first bytes) is this format."""
        return False

    def read(
        self,
        path: Path,
        frame: int | None = None,
        slice_index: int | None = None,
        axis: str | None = None,
        window: str | None = None,
    ) -> ImageData:
        raise NotImplementedError

    def read_mask_values(
        self, path: Path, frame: int | None = None, slice_index: int | None = None, axis: str | None = None
    ) -> np.ndarray:
        raise StageError(f"a {self.name} file cannot be read as a mask")


def check_readable_file(path: Path) -> None:
    if not path.is_file():
        raise StageError(f"file {path.name} not found")
    if path.stat().st_size == 0:
        raise StageError("empty file (0 bytes)")


def check_pixel_count(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise StageError(
            f"image of {width * height} pixels ({width}x{height}) exceeds the limit of {MAX_IMAGE_PIXELS} "
            "pixels (decompression bomb guard): refused"
        )


def check_frame(frame: int, n_frames: int) -> None:
    if not 0 <= frame < n_frames:
        raise StageError(f"frame {frame} out of range: the file has {n_frames} frame(s)")


def refuse_window(window: str | None) -> None:
    """Windows are in HU: only CT DICOM and NIfTI volumes have them."""
    if window is not None:
        raise StageError(f"window {window!r} applies to CT DICOM only; this file is not DICOM")
