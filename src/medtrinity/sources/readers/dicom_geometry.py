"""The geometry a DICOM header gives: pixel spacing, orientation, and which image side shows the patient's left.

Patient side (`patient_left_on_image`): "right" when the image's right side shows the patient's left,
"left" for the reverse, None when it cannot be derived. Rules, in this order:
1. ImageOrientationPatient (cross-sections): DICOM's patient axes are LPS, +x pointing to the patient's
   left. The row direction cosine is the direction of increasing column index, i.e. towards the
   image's right. If it points mainly along x (|x| > 0.7, within ~45 degrees), x > 0 gives "right"
   (standard axial/coronal slices) and x < 0 gives "left". Otherwise (sagittal, strongly oblique) None.
2. PatientOrientation (projection images): its first value is the patient direction of the rows
   (towards the image's right): "L…" gives "right", "R…" gives "left"; other directions give None.
3. ViewPosition PA or AP without PatientOrientation: the radiological display convention (patient
   facing the viewer) puts the patient's left on the image's right, so "right".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from medtrinity.sources.readers.dicom_header import (
    frame_value,
    header,
    header_text,
    number,
)
from medtrinity.sources.readers.intensity import format_number

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# ViewPosition (0018,5101) defined terms (projection radiography and mammography); others become None.
VIEW_POSITIONS = frozenset(
    {
        "AP",
        "PA",
        "LL",
        "RL",
        "LLD",
        "RLD",
        "LLO",
        "RLO",
        "LATERAL",
        "LAT",
        "CC",
        "MLO",
        "ML",
        "LM",
        "LMO",
        "XCCL",
        "XCCM",
        "FB",
        "SIO",
        "ISO",
    }
)
_PATIENT_DIRECTION = re.compile(r"^[APLRHF]{1,3}$")  # PatientOrientation values: patient direction letters


def dicom_spacing(ds: Dataset, index: int) -> list[float] | None:
    """PixelSpacing (row, column mm), else ImagerPixelSpacing (at the detector, for projection images)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = frame_value(ds, index, keyword)
        if value is not None and isinstance(value, Sequence) and len(value) == 2:
            spacing = [number(v, keyword) for v in value]
            if all(v > 0 for v in spacing):
                return spacing
    return None


def dicom_orientation(ds: Dataset, index: int) -> str | None:
    """The compact ImageOrientationPatient ("1,0,0,0,1,0"), else the view and PatientOrientation in words."""
    iop = _image_orientation(ds, index)
    if iop is not None:
        return ",".join(format_number(round(v, 4) + 0.0) for v in iop)  # + 0.0 turns -0.0 into 0
    view = _view_position(ds)
    rows_cols = _patient_orientation(ds)
    parts = [view] if view else []
    if rows_cols is not None:
        parts.append(f"rows {rows_cols[0]}, columns {rows_cols[1]}")
    return "; ".join(parts) or None


def patient_left_on_image(ds: Dataset, index: int) -> str | None:
    """See the module docstring for the rules."""
    iop = _image_orientation(ds, index)
    if iop is not None:
        row_x = iop[0]
        if abs(row_x) > 0.7:
            return "right" if row_x > 0 else "left"
        return None
    rows_cols = _patient_orientation(ds)
    if rows_cols is not None:
        return {"L": "right", "R": "left"}.get(rows_cols[0][0])
    if _view_position(ds) in ("PA", "AP"):
        return "right"
    return None


def _image_orientation(ds: Dataset, index: int) -> list[float] | None:
    """ImageOrientationPatient as six finite numbers, or None."""
    iop = frame_value(ds, index, "ImageOrientationPatient")
    if iop is None or not isinstance(iop, Sequence) or len(iop) != 6:
        return None
    return [number(v, "ImageOrientationPatient") for v in iop]


def _view_position(ds: Dataset) -> str | None:
    """ViewPosition when it is a defined term (free text there may name the patient)."""
    view = header_text(ds, "ViewPosition")
    return view if view in VIEW_POSITIONS else None


def _patient_orientation(ds: Dataset) -> tuple[str, str] | None:
    """PatientOrientation (rows, columns) when both are patient direction letters (A P L R H F)."""
    value = header(ds, "PatientOrientation")
    if isinstance(value, str):
        value = value.split("\\")
    if not isinstance(value, Sequence) or len(value) != 2:
        return None
    parts = [str(v).strip().upper() for v in value]
    return (parts[0], parts[1]) if all(_PATIENT_DIRECTION.match(p) for p in parts) else None
