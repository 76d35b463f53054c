"""Verification of records read back from Parquet: the patient's orientation and the check statuses survive."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from medtrinity.describe.verify import verify
from medtrinity.records import (
    Check,
    Origin,
    Sample,
    row_to_sample,
    rows_to_table,
    sample_to_row,
)
from medtrinity.roi.geometry import roi_from_mask


def kidney_record(orientation: str | None) -> Sample:
    mask = np.zeros((100, 100), dtype=bool)
    mask[20:40, 65:85] = True  # centre (0.75, 0.3): upper-middle right-center
    return Sample(
        id="k1",
        source="synthetic",
        origin=Origin(file="case_00001/imaging.nii.gz", slice=40, axis="axial"),
        modality="CT",
        organ="kidney",
        width=100,
        height=100,
        rois=[roi_from_mask(mask, "tumor")],
        patient_left_on_image=orientation,
        image_bytes=b"\x89PNG\r\n\x1a\n",
    )


def read_back(sample: Sample, tmp_path) -> Sample:
    path = tmp_path / f"{sample.id}.parquet"
    pq.write_table(rows_to_table([sample_to_row(sample)]), path)
    return row_to_sample(pq.read_table(path).to_pylist()[0])


def statuses(sample: Sample, text: str) -> dict[str, str]:
    return {check.name: check.status for check in verify(sample, text)}


def test_patient_side_is_checked_on_a_record_read_back(tmp_path):
    loaded = read_back(kidney_record("right"), tmp_path)
    assert loaded.patient_left_on_image == "right"
    assert loaded.origin.patient_left_on_image == "right"
    assert statuses(loaded, "A left renal mass.")["side"] == "pass"
    assert statuses(loaded, "A right renal mass.")["side"] == "fail"
    # Photographs and sources without an orientation read back as unknown: the side is not verifiable.
    unknown = read_back(kidney_record(None), tmp_path)
    assert unknown.patient_left_on_image is None
    assert statuses(unknown, "A right renal mass.")["side"] == "not-verifiable"


def test_check_status_is_written_and_read(tmp_path):
    sample = kidney_record("right")
    sample.checks = verify(sample, "A right renal mass. The patient's orientation aside, it covers 4% of the image.")
    loaded = read_back(sample, tmp_path)
    assert [(c.name, c.ok, c.status) for c in loaded.checks] == [(c.name, c.ok, c.status) for c in sample.checks]
    assert {c.name: c.status for c in loaded.checks}["side"] == "fail"


def test_a_check_written_before_statuses_reads_as_pass_or_fail():
    assert Check(name="side", ok=True, detail="x").status == "pass"
    assert Check(name="side", ok=False, detail="x", status=None).status == "fail"
    assert Check("organ", True, "not verifiable: …", "not-verifiable").ok
