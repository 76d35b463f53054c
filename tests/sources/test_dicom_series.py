"""DICOM series: grouping by series, anatomical order from ImagePositionPatient, subsets, a build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from medtrinity.errors import UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build
from medtrinity.sources.base import Recipe, open_source
from medtrinity.sources.dicom_series import choose_series_slices
from medtrinity.sources.readers.dicom_series import axis_of_normal, list_series

from fixtures.volumes import make_ct_series

AXIAL_UID, CORONAL_UID = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
CORONAL_IOP = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def _dataset(root: Path) -> Path:
    make_ct_series(root / "study" / "axial", 6, AXIAL_UID)
    make_ct_series(root / "study" / "coronal", 3, CORONAL_UID, iop=CORONAL_IOP)
    (root / "study" / "axial" / "broken.dcm").write_bytes(b"not a dicom file at all")
    return root


def test_series_are_grouped_and_sorted_by_position_not_by_file_name(tmp_path):
    root = _dataset(tmp_path)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.dcm"))
    series, unreadable = list_series(root, files)
    assert unreadable == ["study/axial/broken.dcm"]
    axial, coronal = series
    assert axial.files == [f"study/axial/IM{6 - i:04d}.dcm" for i in range(6)]  # inferior first
    assert [s.position for s in axial.slices] == [-20.0, -18.0, -16.0, -14.0, -12.0, -10.0]
    assert (axial.axis, coronal.axis) == ("axial", "coronal")
    assert coronal.files == ["study/coronal/IM0003.dcm", "study/coronal/IM0002.dcm", "study/coronal/IM0001.dcm"]
    assert axis_of_normal(np.array([0.6, 0.6, 0.5])) is None


def test_subset_options():
    assert choose_series_slices(10) == list(range(10))
    assert choose_series_slices(10, every=3) == [0, 3, 6, 9]
    assert choose_series_slices(10, every=1, max_per_series=4) == [0, 3, 6, 9]
    assert choose_series_slices(10, every=2, max_per_series=3) == [0, 4, 8]


def test_layout_lists_one_item_per_slice_with_its_series_index(tmp_path):
    root = _dataset(tmp_path)
    recipe = Recipe(name="ct", layout="dicom-series", organ="abdomen", options={"every": 2})
    items = list(open_source(recipe, root).items())
    assert [(i.file, i.slice, i.axis) for i in items] == [
        ("study/axial/IM0006.dcm", 0, "axial"),
        ("study/axial/IM0004.dcm", 2, "axial"),
        ("study/axial/IM0002.dcm", 4, "axial"),
        ("study/coronal/IM0003.dcm", 0, "coronal"),
        ("study/coronal/IM0001.dcm", 2, "coronal"),
        ("study/axial/broken.dcm", None, None),
    ]
    with pytest.raises(UserError, match="options.max_per_series"):
        open_source(Recipe(name="ct", layout="dicom-series", options={"max_per_series": 0}), root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no file matching '\*\*/\*.dcm'"):
        open_source(Recipe(name="ct", layout="dicom-series"), tmp_path / "empty")


def test_build_over_a_series_keeps_order_window_and_quarantines_the_broken_file(tmp_path):
    root = _dataset(tmp_path)
    recipe = tmp_path / "ct.yaml"
    recipe.write_text("name: ct\nlayout: dicom-series\norgan: abdomen\nexpert: auto\noptions:\n  window: bone\n")
    manifest = run_build(BuildConfig(sources=[f"{recipe}:{root}"], out=str(tmp_path / "out")), show_progress=False)
    assert manifest["sources"]["ct"] == {"seen": 10, "written": 9, "quarantined": 1}
    rows = pq.read_table(tmp_path / "out" / "data" / "part-00000.parquet").to_pylist()
    axial = [r for r in rows if r["origin"]["axis"] == "axial"]
    assert [r["origin"]["slice"] for r in axial] == list(range(6))
    assert all(r["modality"] == "CT" and r["origin"]["intensity"] == "CT window bone (L400 W1800) HU" for r in rows)
    from medtrinity.sources.imaging import decode_image_bytes

    # slice i holds a bright square of side 4 + 2i: the order is anatomical, whatever the file names
    sides = [int((decode_image_bytes(r["image"]["bytes"])[2, :] > 200).sum()) for r in axial]
    assert sides == [4, 6, 8, 10, 12, 14]
    (bad,) = pq.read_table(tmp_path / "out" / "quarantine" / "part-00000.parquet").to_pylist()
    assert bad["file"] == "study/axial/broken.dcm"


def _rewrite_raw(path: Path, **raw: tuple[str, bytes]) -> None:
    """Store elements as raw bytes, as a corrupt or careless writer leaves them."""
    import warnings

    import pydicom
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(path)
    for keyword, (vr, value) in raw.items():
        tag = Tag(tag_for_keyword(keyword))
        ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=False)


def test_listing_prints_no_header_value_and_survives_corrupt_geometry(tmp_path, capfd, caplog):
    import logging
    import warnings

    import pydicom

    folder = tmp_path / "s"
    make_ct_series(folder, 3, AXIAL_UID)
    _rewrite_raw(folder / "IM0001.dcm", SeriesInstanceUID=("UI", b"1.2.Quixotl.Zebulonia\0"))
    _rewrite_raw(
        folder / "IM0002.dcm", ImagePositionPatient=("DS", b"0\\Quixotl\\4 "), InstanceNumber=("IS", b"Zebulonia ")
    )
    caplog.set_level(logging.DEBUG)
    mode = pydicom.config.settings.reading_validation_mode
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series, unreadable = list_series(tmp_path, ["s/IM0001.dcm", "s/IM0002.dcm", "s/IM0003.dcm"])
    out, err = capfd.readouterr()
    assert "Quixotl" not in out + err + caplog.text + " ".join(str(w.message) for w in caught)
    assert caplog.records == [] and caught == [] and pydicom.config.settings.reading_validation_mode == mode
    assert unreadable == []
    # IM0001 has its own (corrupt) series UID; IM0002's position and number are unusable: it sorts last
    assert sorted(s.files for s in series) == [["s/IM0001.dcm"], ["s/IM0003.dcm", "s/IM0002.dcm"]]
    assert [(s.position, s.instance) for s in series[1].slices][1] == (None, None)
