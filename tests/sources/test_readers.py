"""The reader registry: content decides over the file name, every format family has its reader, the readers
sit below the rest of `sources` (no import circles), and the pixels of the demo's images stay exactly the same."""

from __future__ import annotations

import ast
import gzip
import hashlib
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

import medtrinity
from medtrinity.errors import StageError
from medtrinity.sources.imaging import read_image, read_mask
from medtrinity.sources.layouts.demo import package_dir
from medtrinity.sources.readers.registry import reader_for, registered_readers

from fixtures.volumes import make_ct_series

SRC = Path(medtrinity.__file__).parent


def test_every_format_family_has_a_registered_reader():
    assert {r.name for r in registered_readers()} >= {"raster", "tiff", "dicom", "nifti", "dicom-series"}
    order = [r.name for r in registered_readers()]
    assert order.index("dicom") < order.index("tiff")  # a DICOM preamble may hold a TIFF header


# ---------------------------------------------------------------- content decides, not the suffix
def test_a_png_named_dcm_is_read_as_png(tmp_path):
    pixels = np.arange(12 * 9, dtype=np.uint8).reshape(12, 9)
    Image.fromarray(pixels).save(tmp_path / "scan.dcm", format="PNG")
    assert reader_for(tmp_path / "scan.dcm").name == "raster"
    image = read_image(tmp_path / "scan.dcm")
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.intensity == "8-bit gray as stored"


def test_a_dicom_named_png_is_read_as_dicom(tmp_path):
    original = Path(get_testdata_file("CT_small.dcm"))
    shutil.copy(original, tmp_path / "photo.png")
    assert reader_for(tmp_path / "photo.png").name == "dicom"
    image, expected = read_image(tmp_path / "photo.png"), read_image(original)
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    assert (image.intensity, image.modality_hint) == ("CT window soft tissue (L40 W400) HU", "CT")


def test_a_tiff_named_jpg_is_read_as_tiff(tmp_path):
    values = (np.arange(6 * 10, dtype=np.uint16) * 1000).reshape(6, 10)
    tifffile.imwrite(tmp_path / "slide.jpg", values)
    assert reader_for(tmp_path / "slide.jpg").name == "tiff"
    image = read_image(tmp_path / "slide.jpg")
    assert image.intensity == "16-bit gray percentile 0.5-99.5 to 8-bit"
    assert image.pixels.shape == (6, 10) and image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_a_nifti_without_its_suffix_is_recognised_by_its_header(tmp_path, compressed):
    data = np.arange(8 * 6 * 4, dtype=np.int16).reshape(8, 6, 4)
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "ref.nii.gz"))
    raw = (tmp_path / "ref.nii.gz").read_bytes()
    (tmp_path / "volume.dat").write_bytes(raw if compressed else gzip.decompress(raw))
    assert reader_for(tmp_path / "volume.dat").name == "nifti"
    image, expected = (
        read_image(tmp_path / "volume.dat", slice_index=1),
        read_image(tmp_path / "ref.nii.gz", slice_index=1),
    )
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    assert (
        (image.spacing, image.orientation)
        == ([0.7, 0.5], "axial RAS z=2mm")
        == (expected.spacing, expected.orientation)
    )


def test_the_suffix_decides_only_where_the_content_has_no_magic(tmp_path):
    # DICOM without its 128-byte preamble and 'DICM' (ACR-NEMA style): the .dcm suffix is trusted
    headless = Path(get_testdata_file("CT_small.dcm")).read_bytes()[132:]
    (tmp_path / "old.dcm").write_bytes(headless)
    assert reader_for(tmp_path / "old.dcm").name == "dicom"
    np.testing.assert_array_equal(
        read_image(tmp_path / "old.dcm").pixels, read_image(get_testdata_file("CT_small.dcm")).pixels
    )
    # a .tif without a TIFF header is not trusted: Pillow, the fallback, says what it is
    (tmp_path / "x.tif").write_bytes(b"garbage" * 20)
    assert reader_for(tmp_path / "x.tif").name == "raster"
    with pytest.raises(StageError, match=r"^not a readable image \(unrecognised format\)$"):
        read_image(tmp_path / "x.tif")


# ---------------------------------------------------------------- a folder read as one DICOM series
def test_a_folder_holding_one_series_is_read_slice_by_slice_in_anatomical_order(tmp_path):
    make_ct_series(tmp_path / "series", 5, "1.2.826.0.1.3680043.8.498.7")  # slice i shows a square of side 4 + 2i
    assert reader_for(tmp_path / "series").name == "dicom-series"
    bright = [int((read_image(tmp_path / "series", slice_index=i).pixels == 255).sum()) for i in range(5)]
    assert bright == [(4 + 2 * i) ** 2 for i in range(5)]
    assert int((read_image(tmp_path / "series").pixels == 255).sum()) == 8 * 8  # the middle slice
    with pytest.raises(StageError, match=r"^slice 5 out of range: the series has 5 slices$"):
        read_image(tmp_path / "series", slice_index=5)
    make_ct_series(tmp_path / "series" / "other", 2, "1.2.826.0.1.3680043.8.498.8")
    for file in (tmp_path / "series" / "other").iterdir():
        file.rename(tmp_path / "series" / f"b-{file.name}")
    with pytest.raises(StageError, match=r"^folder series holds 2 DICOM series; read as one volume it must hold one$"):
        read_image(tmp_path / "series")


# ---------------------------------------------------------------- masks in DICOM and NIfTI files
def test_masks_stored_as_dicom_or_as_a_label_volume(tmp_path):
    labels = np.zeros((5, 7), np.uint8)
    labels[1:3, 2:6] = 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = SecondaryCaptureImageStorage, generate_uid(), "OT"
    ds.set_pixel_data(labels, photometric_interpretation="MONOCHROME2", bits_stored=8)
    ds.save_as(tmp_path / "mask.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.dcm", (5, 7), threshold=0), labels == 1)

    volume = np.zeros((6, 5, 3), np.uint8)
    volume[1:3, 1:4, 2] = 4
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "seg.nii.gz"))
    on_slice = read_mask(tmp_path / "seg.nii.gz", (5, 6), value=4, slice_index=2)
    assert on_slice.sum() == 6 and not read_mask(tmp_path / "seg.nii.gz", (5, 6), value=4, slice_index=0).any()
    with pytest.raises(StageError, match=r"^mask seg.nii.gz is 6x5 but its image is 5x6$"):
        read_mask(tmp_path / "seg.nii.gz", (6, 5), value=4, slice_index=2)


# ---------------------------------------------------------------- layering: no import circles
def _imports(path: Path) -> set[str]:
    """Every medtrinity module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medtrinity"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("medtrinity"))
    return found


def _module_name(path: Path) -> str:
    return "medtrinity." + ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def test_the_readers_sit_below_the_rest_of_sources_and_nothing_imports_in_a_circle():
    reader_files = sorted((SRC / "sources" / "readers").glob("*.py"))
    for path in reader_files:
        outside = {m for m in _imports(path) if not m.startswith("medtrinity.sources.readers")}
        assert outside <= {
            "medtrinity.errors",
            "medtrinity.errors.StageError",
            "medtrinity.errors.UserError",
            "medtrinity.sources",
            "medtrinity.sources.readers",
        }, path.name
    assert _imports(SRC / "image_codec.py") <= {"medtrinity.errors", "medtrinity.errors.StageError"}

    files = reader_files + [
        SRC / "sources" / f"{name}.py" for name in ("imaging", "volume", "dicom_series", "annotations")
    ]
    modules = {_module_name(p): p for p in files}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"import circle: {' -> '.join((*trail, name))}"
        for nxt in graph[name]:
            visit(nxt, (*trail, name))

    for name in graph:
        visit(name, ())


# ---------------------------------------------------------------- the demo's pixels do not change
# sha256 of the 8-bit pixels read from demo images (installed packages, so the digests are stable). Recorded
# before the readers were split into sources/readers/; any change to a reader that moves a pixel fails here.
# The demo's ultrasound images are left out: burned-in text is removed from them after reading.
DEMO_PIXEL_DIGESTS = [
    (
        "pydicom",
        "data/test_files/CT_small.dcm",
        None,
        None,
        "eba28ea5722c4a22bd1a087f87813797816bb8a1a1344eb418cdf68165030d44",
    ),
    (
        "data_store",
        "data/693_UNCI.dcm",
        None,
        "brain",
        "7d4d4855db002cbf150bac065c1fbb1761e8acedf23997ba5961dea615e3339d",
    ),
    (
        "pydicom",
        "data/test_files/examples_overlay.dcm",
        None,
        None,
        "bf4c8bd5ccfecb230680ae9d2bf7be112567e72267a758e3d76cc6de4a069c2d",
    ),
    ("data_store", "data/emri_small.dcm", 5, None, "e134d3c1e1b51b345578e3932897d0b4a0dcc640a35c71cd5cfdd2e48545aa2a"),
    (
        "pydicom",
        "data/test_files/MR_small.dcm",
        None,
        None,
        "fc96d833b3491f38be8718e46763b2e32ceb7a9361bbffd288cc828c66e2a66d",
    ),
    ("data_store", "data/RG3_UNCI.dcm", None, None, "11a27dd65955b6e5ac8e70dc872c7ea202cbdab96765ba7cd5f03059f0639a7b"),
    (
        "data_store",
        "data/JPEG2000_UNC.dcm",
        None,
        None,
        "299ac921690711956985f214a3bf01c227da87903dc4ef054391abb5b1a9f1ef",
    ),
    ("skimage", "data/retina.jpg", None, None, "3670e389d0dae9f755cc1bb7e4da4c3d2cdf10eba2dc3060836d8d4b8024d860"),
    ("skimage", "data/ihc.png", None, None, "c5b3ef509a92f16d4c29be8cf0300fe75d53e13a3ce650159db932caea8dcc1b"),
    ("skimage", "data/cell.png", None, None, "dc464a59c68346fbe7a36fb75421d02a5e29780874b92efd3c920a319bfcb3b0"),
]


@pytest.mark.parametrize(
    "package, file, frame, window, digest", DEMO_PIXEL_DIGESTS, ids=[d[1].split("/")[-1] for d in DEMO_PIXEL_DIGESTS]
)
def test_demo_images_read_to_the_recorded_pixels(package, file, frame, window, digest):
    image = read_image(package_dir(package) / file, frame=frame, window=window)
    assert hashlib.sha256(image.pixels.tobytes()).hexdigest() == digest
