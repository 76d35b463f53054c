"""The entry point for reading an image or a mask, whatever its format: `read_image` and `read_mask`.

`read_image` returns an `ImageData`: the stored image as 8-bit pixels plus the geometry and the exact
intensity rule applied, so a user can trace every pixel back to the file. The reader is chosen by content,
then by suffix (`sources/readers/registry.py`); each format family is one module of `sources/readers/`, and
the intensity rules they share are in `readers/intensity.py`.

The names below the functions are re-exported for the modules that import them from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtrinity.errors import StageError
from medtrinity.image_codec import decode_image_bytes, encode_png
from medtrinity.sources.readers.base import ImageData
from medtrinity.sources.readers.dicom import (
    BODY_PART_ORGANS,
    DICOM_MODALITY_MAP,
    dicom_frame_count,
    read_dicom_overlay,
)
from medtrinity.sources.readers.dicom_geometry import VIEW_POSITIONS
from medtrinity.sources.readers.dicom_header import (
    dicom_reading,
    exception_name,
    quiet_pydicom,
    uid_name,
)
from medtrinity.sources.readers.intensity import (
    PERCENTILE_RULE,
    WINDOW_PRESETS,
    percentile_range,
    percentile_to_uint8,
    range_to_uint8,
    resolve_window,
    window_to_uint8,
)
from medtrinity.sources.readers.registry import reader_for


def read_image(
    path: str | Path,
    frame: int | None = None,
    window: str | None = None,
    slice_index: int | None = None,
    axis: str | None = None,
) -> ImageData:
    """Read one 2D image, one DICOM frame or one NIfTI slice as 8-bit pixels. `window` names a CT preset
    (see WINDOW_PRESETS) or a custom window "L<level>/W<width>" in HU; it applies to CT DICOM and to NIfTI
    volumes in HU. `slice_index`/`axis` select the slice of a NIfTI volume (or of a folder holding one DICOM
    series); for other files they only describe where the file sits (a DICOM series slice is its own file)
    and are ignored."""
    path = Path(path)
    return reader_for(path).read(path, frame=frame, slice_index=slice_index, axis=axis, window=window)


def read_mask(
    path: str | Path,
    expected_shape: tuple[int, int],
    threshold: int = 127,
    value: int | None = None,
    name: str | None = None,
    frame: int | None = None,
    slice_index: int | None = None,
    axis: str | None = None,
) -> np.ndarray:
    """A bool HxW mask from a mask image: stored value > threshold, or == value for label maps.

    Values are the stored ones (no normalisation); RGB masks use the max channel, palette masks their
    indices. Masks stored as 0/1 need threshold=0. `name` (the mask's path relative to the source root)
    names the mask in reasons; the file name is used without it, never the absolute path. `frame`,
    `slice_index` and `axis` pick the plane of a multi-frame file or a label volume (the middle slice
    when a volume is given none).
    """
    path = Path(path)
    name = name or path.name
    try:
        values = reader_for(path).read_mask_values(path, frame=frame, slice_index=slice_index, axis=axis)
    except StageError as e:
        raise StageError(f"mask {name}: {e}") from e
    height, width = expected_shape
    if values.shape != (height, width):
        raise StageError(f"mask {name} is {values.shape[1]}x{values.shape[0]} but its image is {width}x{height}")
    return values == value if value is not None else values > threshold


__all__ = [
    "BODY_PART_ORGANS",
    "DICOM_MODALITY_MAP",
    "PERCENTILE_RULE",
    "VIEW_POSITIONS",
    "WINDOW_PRESETS",
    "ImageData",
    "decode_image_bytes",
    "dicom_frame_count",
    "dicom_reading",
    "encode_png",
    "exception_name",
    "percentile_range",
    "percentile_to_uint8",
    "quiet_pydicom",
    "range_to_uint8",
    "read_dicom_overlay",
    "read_image",
    "read_mask",
    "resolve_window",
    "uid_name",
    "window_to_uint8",
]
