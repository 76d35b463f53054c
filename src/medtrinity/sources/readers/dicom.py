"""Single DICOM files through pydicom: modality LUT, CT windows, DICOM windows and VOI LUTs, MONOCHROME1,
colour spaces and palettes, frames, overlay planes, compressed syntaxes (via pylibjpeg where installed).

Every use of a dataset happens inside `dicom_reading()` (dicom_header.py), so no header value reaches a
warning, a log or a reason. Only defined terms are copied out (modality, body part), mapped below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtrinity.errors import StageError
from medtrinity.sources.readers.base import (
    ImageData,
    Reader,
    check_frame,
    check_pixel_count,
    check_readable_file,
)
from medtrinity.sources.readers.dicom_geometry import (
    dicom_orientation,
    dicom_spacing,
    patient_left_on_image,
)
from medtrinity.sources.readers.dicom_header import (
    check_decoder,
    count,
    dicom_reading,
    frame_value,
    header,
    header_text,
    is_truncated,
    n_frames,
    number,
    read_dataset,
    transfer_syntax,
    uid_name,
)
from medtrinity.sources.readers.intensity import (
    PERCENTILE_RULE,
    ct_window_rule,
    default_ct_window,
    format_number,
    lut_to_uint8,
    percentile_range,
    percentile_to_uint8,
    range_to_uint8,
    resolve_window,
    to_uint8,
    window_to_uint8,
)
from medtrinity.sources.readers.registry import register_reader

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# DICOM Modality (0008,0060) -> records.MODALITIES; absent or None: the file does not say.
DICOM_MODALITY_MAP: dict[str, str | None] = {
    "CT": "CT",
    "MR": "MRI",
    "CR": "X-Ray",
    "DX": "X-Ray",
    "RG": "X-Ray",
    "DR": "X-Ray",
    "XA": "X-Ray",
    "RF": "X-Ray",
    "PX": "X-Ray",
    "IO": "X-Ray",
    "MG": "X-Ray",
    "US": "Ultrasound",
    "PT": "PET",
    "NM": "Nuclear Medicine",
    "ES": "Endoscopy",
    "OPT": "OCT",
    "SM": "Histopathology",
    "GM": "Microscopy",
    "OT": None,
    "SC": None,
}

# BodyPartExamined (0018,0015) defined terms -> organ words. The tag is free text in practice (sites put
# names and notes there), so only these terms are copied; anything else becomes None.
BODY_PART_ORGANS: dict[str, str] = {
    "ABDOMEN": "abdomen",
    "ABDOMENPELVIS": "abdomen and pelvis",
    "ABDPELV": "abdomen and pelvis",
    "CHEST": "chest",
    "THORAX": "chest",
    "CHESTABDOMEN": "chest and abdomen",
    "CHESTABDPELVIS": "chest, abdomen and pelvis",
    "HEAD": "head",
    "HEADNECK": "head and neck",
    "BRAIN": "brain",
    "SKULL": "skull",
    "NECK": "neck",
    "PELVIS": "pelvis",
    "SPINE": "spine",
    "CSPINE": "cervical spine",
    "TSPINE": "thoracic spine",
    "LSPINE": "lumbar spine",
    "SSPINE": "sacral spine",
    "EXTREMITY": "extremity",
    "ARM": "arm",
    "HAND": "hand",
    "WRIST": "wrist",
    "ELBOW": "elbow",
    "FOREARM": "forearm",
    "HUMERUS": "humerus",
    "LEG": "leg",
    "FOOT": "foot",
    "ANKLE": "ankle",
    "KNEE": "knee",
    "FEMUR": "femur",
    "SHOULDER": "shoulder",
    "CLAVICLE": "clavicle",
    "HIP": "hip",
    "BREAST": "breast",
    "HEART": "heart",
    "LUNG": "lung",
    "LIVER": "liver",
    "KIDNEY": "kidney",
    "PANCREAS": "pancreas",
    "SPLEEN": "spleen",
    "PROSTATE": "prostate",
    "BLADDER": "bladder",
    "COLON": "colon",
    "STOMACH": "stomach",
    "ESOPHAGUS": "esophagus",
    "THYROID": "thyroid",
    "JAW": "jaw",
    "EYE": "eye",
    "WHOLEBODY": "whole body",
    "WHOLE BODY": "whole body",
}
_YBR_PHOTOMETRICS = ("YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@register_reader
class DicomReader(Reader):
    name = "dicom"
    suffixes = (".dcm", ".dicom")
    trust_suffix = True  # files without the 128-byte preamble (ACR-NEMA style) have no magic
    priority = 10  # DICOM files may hold a TIFF header in their preamble (dual-personality WSI)

    def sniff(self, head: bytes) -> bool:
        return head[128:132] == b"DICM"

    def read(self, path, frame=None, slice_index=None, axis=None, window=None) -> ImageData:
        with dicom_reading():
            return _read_frame(path, frame, window)

    def read_mask_values(self, path, frame=None, slice_index=None, axis=None) -> np.ndarray:
        """The frame's stored values (no LUT, no window); colour masks use the max channel."""
        with dicom_reading():
            _, syntax, index = _checked_header(path, frame)
            values = _decode_frame(_with_pixel_data(path), index, syntax)
        return values if values.ndim == 2 else values[..., :3].max(axis=2)


def dicom_frame_count(path: str | Path) -> int:
    """NumberOfFrames of a DICOM file (1 when absent)."""
    path = Path(path)
    check_readable_file(path)
    with dicom_reading():
        return n_frames(read_dataset(path, stop_before_pixels=True))


def _read_frame(path: Path, frame: int | None, window: str | None) -> ImageData:
    header_only, syntax, index = _checked_header(path, frame)
    preset = resolve_window(window) if window is not None else None
    modality = header_text(header_only, "Modality")
    if preset is not None and modality != "CT":
        stated = modality if modality in DICOM_MODALITY_MAP else "unknown"  # a defined term, never free text
        raise StageError(f"window {window!r} applies to CT (HU) but this file's modality is {stated}")
    ds = _with_pixel_data(path)
    pixels, rule = _dicom_pixels(ds, index, preset, modality, syntax)
    return ImageData(
        pixels=pixels,
        intensity=rule,
        spacing=dicom_spacing(ds, index),
        orientation=dicom_orientation(ds, index),
        modality_hint=DICOM_MODALITY_MAP.get(modality),
        body_part=BODY_PART_ORGANS.get(header_text(ds, "BodyPartExamined")),
        n_frames=n_frames(header_only),
        patient_left_on_image=patient_left_on_image(ds, index),
    )


def _checked_header(path: Path, frame: int | None) -> tuple[Dataset, object, int]:
    """(header without pixel data, transfer syntax, frame index), checked before anything is decoded:
    a decoder exists, the frame is in range, the pixel count is below the bomb limit."""
    header_only = read_dataset(path, stop_before_pixels=True)
    syntax = transfer_syntax(header_only)
    check_decoder(syntax)
    index = 0 if frame is None else frame
    check_frame(index, n_frames(header_only))
    rows, columns = count(header_only, "Rows"), count(header_only, "Columns")
    if rows is not None and columns is not None:
        check_pixel_count(columns, rows)
    return header_only, syntax, index


def _with_pixel_data(path: Path) -> Dataset:
    """The whole dataset (pixel data deferred); StageError when it has none, saying why."""
    ds = read_dataset(path)
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        if is_truncated(ds, path):
            raise StageError("truncated DICOM file (it ends inside an element)")
        sop = header(ds, "SOPClassUID") or header(ds.file_meta, "MediaStorageSOPClassUID")
        kind = f" ({uid_name(sop, 'unknown SOP class')})" if sop else ""
        raise StageError(f"DICOM file has no pixel data{kind}")
    transfer_syntax(ds)  # sets the syntax on files without file meta, so the decoder knows the layout
    return ds


def _decode_frame(ds: Dataset, index: int, syntax) -> np.ndarray:
    """The frame's stored values. Decoder messages are not passed on: they quote the data, memory addresses
    and plugin chatter over several lines."""
    from pydicom.pixels import pixel_array

    try:
        return pixel_array(ds, index=index)  # YBR_FULL(_422) come back as RGB
    except Exception as e:
        name = uid_name(syntax, "unknown transfer syntax")
        if syntax.is_compressed:
            raise StageError(f"could not decode {name} pixel data") from e
        raise StageError(f"truncated or corrupt DICOM pixel data ({name})") from e


def _dicom_pixels(ds: Dataset, index: int, preset: tuple[str, float, float] | None, modality: str, syntax):
    from pydicom.pixels import apply_color_lut

    values = _decode_frame(ds, index, syntax)
    photometric = header_text(ds, "PhotometricInterpretation") or "MONOCHROME2"
    if photometric == "PALETTE COLOR":
        return lut_to_uint8(apply_color_lut(values, ds)), "PALETTE COLOR converted to RGB"
    if values.ndim == 3:  # samples per pixel 3: RGB, or YBR already converted by the decoder
        pixels, rule = to_uint8(values, "RGB")
        if photometric in _YBR_PHOTOMETRICS:
            return pixels, f"{photometric} converted to RGB; {rule}"
        return pixels, rule
    pixels, rule = _dicom_gray(ds, index, values, preset, modality)
    if photometric == "MONOCHROME1":
        return 255 - pixels, f"{rule}; MONOCHROME1 inverted"
    return pixels, rule


def _modality_lut(ds: Dataset, index: int, values: np.ndarray) -> np.ndarray:
    """Stored values -> output units (HU for CT) via pydicom's Modality LUT, with rescale taken from the
    functional groups when an enhanced multi-frame file keeps it there."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_modality_lut

    if "ModalityLUTSequence" in ds:
        return apply_modality_lut(values, ds)
    slope, intercept = frame_value(ds, index, "RescaleSlope"), frame_value(ds, index, "RescaleIntercept")
    if slope is None and intercept is None:
        return values
    rescale = Dataset()
    rescale.RescaleSlope = 1.0 if slope is None else number(slope, "RescaleSlope")
    rescale.RescaleIntercept = 0.0 if intercept is None else number(intercept, "RescaleIntercept")
    return apply_modality_lut(values, rescale)


def _dicom_gray(ds: Dataset, index: int, values: np.ndarray, preset, modality: str) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_voi

    values = _modality_lut(ds, index, values)
    if modality == "CT":
        label, level, width = preset or default_ct_window(header_text(ds, "BodyPartExamined"))
        return window_to_uint8(values, level, width), ct_window_rule(label, level, width)
    center, width = frame_value(ds, index, "WindowCenter"), frame_value(ds, index, "WindowWidth")
    if center is not None and width is not None and number(width, "WindowWidth") > 0:
        level, span = number(center, "WindowCenter"), number(width, "WindowWidth")
        function = str(frame_value(ds, index, "VOILUTFunction") or "LINEAR").upper()
        rule = f"DICOM window L{format_number(level)}/W{format_number(span)}" + (
            " sigmoid" if function == "SIGMOID" else ""
        )
        low, high = percentile_range(values)
        if level + span / 2 >= low and level - span / 2 <= high:
            return window_to_uint8(values, level, span, function), rule
        # A window that misses the data entirely would give a blank image.
        return percentile_to_uint8(values), f"{PERCENTILE_RULE} ({rule} misses the data range)"
    if "VOILUTSequence" in ds:
        mapped = apply_voi(values, ds, index=0)
        lut = np.asarray(ds.VOILUTSequence[0].LUTData)
        return range_to_uint8(mapped, float(lut.min()), float(lut.max())), "DICOM VOI LUT (first) min-max to 8-bit"
    return percentile_to_uint8(values), PERCENTILE_RULE


# ---------------------------------------------------------------- overlay planes (group 60xx)
def read_dicom_overlay(path: str | Path, group: int = 0x6000, frame: int = 0) -> np.ndarray | None:
    """The overlay plane of `group` (0x6000..0x601E) as a bool mask the size of the image, placed at
    its OverlayOrigin; None if the file has no overlay in that group or none for that frame."""
    path = Path(path)
    check_readable_file(path)
    with dicom_reading():
        return _read_overlay(path, group, frame)


def _read_overlay(path: Path, group: int, frame: int) -> np.ndarray | None:
    ds = read_dataset(path, stop_before_pixels=True)  # overlays (60xx) come before pixel data
    check_frame(frame, n_frames(ds))
    if (group, 0x0010) not in ds:
        return None
    if (group, 0x3000) not in ds:
        raise StageError(f"overlay {group:04X} is kept in the pixel data's unused bits (retired form): not supported")
    planes = ds.overlay_array(group).astype(bool)
    first = int(ds[(group, 0x0051)].value) - 1 if (group, 0x0051) in ds else 0
    if planes.ndim == 3:
        if not 0 <= frame - first < planes.shape[0]:
            return None
        planes = planes[frame - first]
    origin = ds.get((group, 0x0050))
    row0, col0 = (int(origin.value[0]) - 1, int(origin.value[1]) - 1) if origin is not None else (0, 0)
    return _place(planes, count(ds, "Rows") or 0, count(ds, "Columns") or 0, row0, col0)


def _place(plane: np.ndarray, rows: int, cols: int, row0: int, col0: int) -> np.ndarray:
    """`plane` put at (row0, col0) of a rows x cols canvas, clipped to it."""
    canvas = np.zeros((rows, cols), dtype=bool)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + plane.shape[0], rows), min(col0 + plane.shape[1], cols)
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = plane[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
    return canvas
