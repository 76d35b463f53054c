"""Patient identifiers in DICOM files never reach an output: every byte of a build's output folder and of
its console output is scanned for each identifier (Parquet both raw and decoded)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build

from fixtures.volumes import make_ct_series

# Distinctive values, so that a hit can only be a leak, never chance.
IDENTIFIERS = {
    "PatientName": "Quixotl^Zebulonia^Marvella",
    "PatientID": "PIDX8842731Q",
    "PatientBirthDate": "19370412",
    "PatientAddress": "77 Wrenfeather Lane, Oxbury",
    "InstitutionName": "Saint Bartolomeo Quarry Hospital",
    "AccessionNumber": "ACCN5519307Z",
    "StudyDate": "20010919",
    "ReferringPhysicianName": "Drummondvale^Ignatia",
    "OtherPatientIDs": "OPID6620481K",
}


def _needles() -> list[bytes]:
    needles = []
    for value in IDENTIFIERS.values():
        needles += [value.encode(), value.replace("^", " ").encode()]
        needles += [part.encode() for part in value.split("^") if len(part) >= 6]
    return needles


def _leaks(data: bytes, where: str) -> list[str]:
    return [f"{needle.decode()} in {where}" for needle in _needles() if needle in data]


def test_no_identifier_reaches_any_output_byte_or_the_console(tmp_path, capfd):
    root = tmp_path / "series"
    make_ct_series(root / "study" / "s1", 4, "1.2.826.0.1.3680043.8.498.77", identifiers=IDENTIFIERS)
    (root / "study" / "s1" / "zz_broken.dcm").write_bytes(b"DICM but truncated")  # an errors.log/quarantine entry
    recipe = tmp_path / "ct.yaml"
    recipe.write_text("name: phi-ct\nlayout: dicom-series\norgan: abdomen\nexpert: auto\n")
    out = tmp_path / "out"
    manifest = run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(out)), show_progress=True)
    captured = capfd.readouterr()

    assert manifest["sources"]["phi-ct"] == {"seen": 5, "written": 4, "quarantined": 1}
    leaks = _leaks(captured.out.encode() + captured.err.encode(), "stdout/stderr")
    leaks += _leaks(json.dumps(manifest).encode(), "the returned manifest")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and (out / "manifest.json").is_file()
    for path in files:
        leaks += _leaks(path.read_bytes(), str(path.relative_to(out)))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            leaks += _leaks(json.dumps(table.to_pylist(), default=repr).encode(), f"{path.name} decoded rows")
            leaks += _leaks(str(table.schema.metadata).encode(), f"{path.name} metadata")
    assert leaks == []
    # the scan itself can see: the identifiers really are in the input files
    assert _leaks((root / "study" / "s1" / "IM0001.dcm").read_bytes(), "input")


def _corrupt_copies(folder) -> None:
    """Damaged copies of one slice: each would put an identifier into a reason, the console or a record."""
    import struct
    import warnings

    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    data = (folder / "IM0001.dcm").read_bytes()
    sop = bytearray(data)
    at = sop.index(b"\x08\x00\x16\x00UI", 132 + 100)
    sop[at + 6 : at + 8] = struct.pack("<H", 160)  # SOPClassUID swallows the identifiers after it
    (folder / "zz_sop.dcm").write_bytes(bytes(sop))
    (folder / "zz_truncated.dcm").write_bytes(data[: data.index(b"Quixotl") + 4])
    for name, keyword, vr, value in [
        ("zz_slope.dcm", "RescaleSlope", "DS", b"Quixotl "),
        ("zz_bodypart.dcm", "BodyPartExamined", "CS", b"Quixotl Zebulonia "),
    ]:
        ds = pydicom.dcmread(folder / "IM0001.dcm")
        tag = Tag(keyword)
        ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(folder / name, enforce_file_format=False)


def test_damaged_files_leak_no_identifier_through_reasons_console_or_records(tmp_path, capfd):
    root = tmp_path / "series"
    make_ct_series(root / "s1", 2, "1.2.826.0.1.3680043.8.498.78", identifiers=IDENTIFIERS)
    _corrupt_copies(root / "s1")
    recipe = tmp_path / "ct.yaml"
    recipe.write_text("name: phi-damaged\nlayout: dicom-series\nexpert: auto\n")  # no organ: BodyPartExamined counts
    out = tmp_path / "out"
    manifest = run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(out)), show_progress=True)
    captured = capfd.readouterr()

    assert manifest["sources"]["phi-damaged"] == {"seen": 6, "written": 3, "quarantined": 3}
    reasons = {r["file"]: r["reason"] for r in pq.read_table(out / "quarantine").to_pylist()}
    assert reasons == {
        "s1/zz_sop.dcm": "truncated DICOM file (it ends inside an element)",
        "s1/zz_truncated.dcm": "truncated DICOM file (it ends inside an element)",
        "s1/zz_slope.dcm": "corrupt DICOM header: RescaleSlope is not a number",
    }
    organs = {r["origin"]["file"]: r["organ"] for r in pq.read_table(out / "data").to_pylist()}
    assert organs["s1/zz_bodypart.dcm"] is None
    leaks = _leaks(captured.out.encode() + captured.err.encode(), "stdout/stderr")
    for path in (p for p in out.rglob("*") if p.is_file()):
        leaks += _leaks(path.read_bytes(), str(path.relative_to(out)))
        if path.suffix == ".parquet":
            leaks += _leaks(json.dumps(pq.read_table(path).to_pylist(), default=repr).encode(), path.name)
    assert leaks == []
