"""The imaging readers on files written here (PNG, JPEG, GIF, TIFF, DICOM) and on the DICOM files pydicom ships."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_decoder, pixel_array
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    generate_uid,
)

from medtrinity.errors import StageError, UserError
from medtrinity.records import MODALITIES
from medtrinity.sources.imaging import (
    DICOM_MODALITY_MAP,
    decode_image_bytes,
    dicom_frame_count,
    encode_png,
    read_dicom_overlay,
    read_image,
    read_mask,
)
from medtrinity.sources.readers import base as readers_base
from medtrinity.sources.readers.dicom_header import uid_name


def data_store_file(name: str) -> str:
    import data_store

    return os.path.join(os.path.dirname(data_store.__file__), "data", name)


def save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def expected_percentile(values: np.ndarray) -> np.ndarray:
    """The documented rule, written out independently: 0.5th..99.5th percentile -> 0..255, rounded."""
    low, high = np.percentile(values.astype(np.float64), [0.5, 99.5])
    return np.rint(np.clip((values.astype(np.float64) - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def expected_window(values: np.ndarray, level: float, width: float) -> np.ndarray:
    low = level - width / 2
    return np.rint(np.clip((values.astype(np.float64) - low) / width, 0, 1) * 255).astype(np.uint8)


def write_dicom(path: Path, pixels: np.ndarray, **attributes) -> Path:
    """A minimal single-frame DICOM file (CT Image Storage unless Modality says otherwise)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    photometric = "RGB" if pixels.ndim == 3 else "MONOCHROME2"
    ds.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=pixels.dtype.itemsize * 8)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


RAMP16 = (np.arange(1001, dtype=np.uint16) * 60).reshape(7, 143)  # 0 .. 60000


# ---------------------------------------------------------------- 2D images (Pillow)
def test_8bit_gray_png_is_returned_as_stored(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    image = read_image(save(Image.fromarray(gray), tmp_path / "g.png"))
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, gray)
    assert image.intensity == "8-bit gray as stored"
    assert (image.n_frames, image.spacing, image.orientation, image.modality_hint) == (1, None, None, None)
    assert image.patient_left_on_image is None
    assert (image.width, image.height) == (8, 6)


def test_rgb_png_is_returned_as_stored(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = read_image(save(Image.fromarray(rgb), tmp_path / "c.png"))
    np.testing.assert_array_equal(image.pixels, rgb)
    assert image.intensity == "8-bit RGB as stored"


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (200, 100, 50, 128)
    rgba[0, 1] = (10, 20, 30, 255)
    rgba[1, 0] = (250, 250, 250, 0)
    image = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert image.pixels.shape == (2, 2, 3)
    assert image.pixels[0, 0].tolist() == [100, 50, 25]  # 200*128/255 = 100.4 -> 100, …
    assert image.pixels[0, 1].tolist() == [10, 20, 30]
    assert image.pixels[1, 0].tolist() == [0, 0, 0]
    assert image.intensity == "alpha composited on black; 8-bit RGB as stored"


def test_opaque_alpha_is_dropped_and_recorded(tmp_path):
    rgba = np.full((3, 3, 4), 255, dtype=np.uint8)
    rgba[..., 0] = 17
    image = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "o.png"))
    np.testing.assert_array_equal(image.pixels, rgba[..., :3])
    assert image.intensity == "8-bit RGB as stored (opaque alpha dropped)"


def test_palette_png_becomes_rgb_through_its_palette(tmp_path):
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    img = Image.fromarray(indices, "P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9))
    image = read_image(save(img, tmp_path / "p.png"))
    assert image.pixels.tolist() == [[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [40, 50, 60]]]
    assert image.intensity.startswith("palette converted to RGB")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    image = read_image(save(cyan, tmp_path / "k.jpg", quality=95))
    assert image.pixels.shape == (16, 16, 3)
    assert image.intensity == "CMYK converted to RGB"
    np.testing.assert_allclose(image.pixels.reshape(-1, 3).mean(axis=0), [0, 255, 255], atol=6)


def test_16bit_png_ramp_is_normalised_by_percentile(tmp_path):
    img = Image.fromarray(RAMP16)
    assert img.mode == "I;16"
    image = read_image(save(img, tmp_path / "r16.png"))
    assert image.intensity == "16-bit gray percentile 0.5-99.5 to 8-bit"
    # Over the ramp 0..60000 in 1001 steps the 0.5th/99.5th percentiles are 300 and 59700.
    expected = np.rint(np.clip((RAMP16.astype(float) - 300) / 59400, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.pixels.flat[5] == 0 and image.pixels.flat[995] == 255 and image.pixels.flat[500] == 128


def test_16bit_rgb_png_reduction_by_pillow_is_recorded(tmp_path):
    # Pillow reads 16-bit RGB PNGs as 8-bit RGB (high byte); the rule must say so.
    h, w = 2, 3
    rows = b"".join(b"\x00" + np.full((w, 3), 1000, dtype=">u2").tobytes() for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    (tmp_path / "rgb16.png").write_bytes(png)
    image = read_image(tmp_path / "rgb16.png")
    assert image.intensity == "16-bit RGB PNG reduced to 8-bit by Pillow (high byte)"
    assert image.pixels[0, 0].tolist() == [3, 3, 3]  # 1000 >> 8


def test_multi_frame_gif_selects_the_frame(tmp_path):
    frames = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in (0, 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image = read_image(path, frame=1)
    assert image.n_frames == 2
    assert int(np.asarray(image.pixels).max()) > 0  # frame 1 is the white one
    with pytest.raises(StageError, match=r"frame 2 out of range: the file has 2 frame\(s\)"):
        read_image(path, frame=2)


# ---------------------------------------------------------------- TIFF
def test_uint16_tiff_ramp_is_normalised_by_percentile(tmp_path):
    tifffile.imwrite(tmp_path / "r.tif", RAMP16)
    image = read_image(tmp_path / "r.tif")
    assert image.intensity == "16-bit gray percentile 0.5-99.5 to 8-bit"
    np.testing.assert_array_equal(image.pixels, expected_percentile(RAMP16))


def test_multi_page_tiff_selects_the_page(tmp_path):
    pages = np.stack([np.full((3, 4), v, dtype=np.uint8) for v in (5, 6, 7)])
    tifffile.imwrite(tmp_path / "p.tif", pages, photometric="minisblack")
    image = read_image(tmp_path / "p.tif", frame=2)
    assert image.n_frames == 3 and image.pixels.shape == (3, 4) and int(image.pixels[0, 0]) == 7
    assert int(read_image(tmp_path / "p.tif").pixels[0, 0]) == 5
    with pytest.raises(StageError, match="frame 3 out of range"):
        read_image(tmp_path / "p.tif", frame=3)


def test_rgba_tiff_and_planar_rgb_tiff(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [51, 255]]
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    image = read_image(tmp_path / "a.tif")
    assert image.pixels[..., 0].tolist() == [[200, 0], [40, 200]]
    assert image.intensity == "alpha composited on black; 8-bit RGB as stored"

    planar = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    tifffile.imwrite(tmp_path / "s.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "s.tif").pixels, np.moveaxis(planar, 0, -1))


def test_multi_sample_tiff_uses_the_first_three_samples(tmp_path):
    channels = np.random.default_rng(1).integers(0, 4096, (6, 5, 5), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", channels, photometric="minisblack", planarconfig="contig")
    image = read_image(tmp_path / "m.tif")
    assert image.pixels.shape == (6, 5, 3)
    np.testing.assert_array_equal(image.pixels, expected_percentile(channels[..., :3]))
    assert image.intensity == "16-bit RGB percentile 0.5-99.5 to 8-bit; samples 0-2 of 5 used"


def test_miniswhite_tiff_is_inverted(tmp_path):
    values = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    tifffile.imwrite(tmp_path / "w.tif", values, photometric="miniswhite")
    image = read_image(tmp_path / "w.tif")
    np.testing.assert_array_equal(image.pixels, 255 - values)
    assert image.intensity == "8-bit gray as stored; MINISWHITE inverted"


def test_float_tiff_ignores_nan_when_normalising(tmp_path):
    values = np.linspace(-1.0, 1.0, 200, dtype=np.float32).reshape(10, 20)
    values[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", values)
    image = read_image(tmp_path / "f.tif")
    assert image.intensity == "32-bit float gray percentile 0.5-99.5 to 8-bit"
    assert image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255


def test_lzw_tiff_is_read_even_without_imagecodecs(tmp_path):
    gray = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    image = read_image(save(Image.fromarray(gray), tmp_path / "lzw.tif", compression="tiff_lzw"))
    np.testing.assert_array_equal(image.pixels, gray)


# ---------------------------------------------------------------- unreadable files
def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(StageError, match=r"^empty file \(0 bytes\)$"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize(("name", "fmt"), [("t.png", "PNG"), ("t.jpg", "JPEG")])
def test_truncated_image(tmp_path, name, fmt):
    noisy = np.random.default_rng(2).integers(0, 256, (64, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format=fmt)
    (tmp_path / name).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(StageError, match=f"^truncated or corrupt {fmt}: "):
        read_image(tmp_path / name)


def test_random_bytes_are_not_an_image(tmp_path):
    (tmp_path / "x.png").write_bytes(np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(StageError, match="not a readable image"):
        read_image(tmp_path / "x.png")


def test_missing_file(tmp_path):
    with pytest.raises(StageError, match="not found"):
        read_image(tmp_path / "nope.png")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(readers_base, "MAX_IMAGE_PIXELS", 100)
    png = save(Image.new("L", (20, 10)), tmp_path / "bomb.png")
    with pytest.raises(StageError, match=r"200 pixels \(20x10\) exceeds the limit of 100 pixels"):
        read_image(png)
    tifffile.imwrite(tmp_path / "bomb.tif", np.zeros((10, 20), np.uint8))
    with pytest.raises(StageError, match="exceeds the limit of 100 pixels"):
        read_image(tmp_path / "bomb.tif")
    with pytest.raises(StageError, match=r"16384 pixels \(128x128\) exceeds"):
        read_image(get_testdata_file("CT_small.dcm"))


def test_pillows_own_bomb_error_is_a_stage_error(tmp_path, monkeypatch):
    png = save(Image.new("L", (20, 10)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow refuses above twice this
    with pytest.raises(StageError, match="decompression bomb"):
        read_image(png)


# ---------------------------------------------------------------- masks
def test_mask_threshold_value_and_channels(tmp_path):
    values = np.array([[0, 127, 128], [255, 3, 3]], dtype=np.uint8)
    path = save(Image.fromarray(values), tmp_path / "m.png")
    assert read_mask(path, (2, 3)).tolist() == [[False, False, True], [True, False, False]]
    assert read_mask(path, (2, 3), value=3).tolist() == [[False, False, False], [False, True, True]]
    assert read_mask(path, (2, 3), threshold=0).sum() == 5

    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 1, 2] = 255  # a blue-only pixel still counts: max over channels
    assert read_mask(save(Image.fromarray(rgb), tmp_path / "c.png"), (2, 3)).tolist() == [
        [False, True, False],
        [False, False, False],
    ]


def test_palette_label_map_uses_the_indices(tmp_path):
    labels = np.array([[0, 1, 2], [2, 2, 0]], dtype=np.uint8)
    img = Image.fromarray(labels, "P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))
    assert read_mask(save(img, tmp_path / "l.png"), (2, 3), value=2).tolist() == [
        [False, False, True],
        [True, True, False],
    ]


def test_16bit_tiff_label_map_keeps_stored_values(tmp_path):
    labels = np.array([[0, 300], [300, 7]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "l.tif", labels)
    assert read_mask(tmp_path / "l.tif", (2, 2), value=300).tolist() == [[False, True], [True, False]]


def test_bilevel_mask(tmp_path):
    img = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    assert read_mask(save(img, tmp_path / "b.png"), (1, 2)).tolist() == [[False, True]]


def test_mask_of_the_wrong_size(tmp_path):
    path = save(Image.new("L", (4, 3)), tmp_path / "m.png")
    with pytest.raises(StageError, match=r"^mask m.png is 4x3 but its image is 5x3$"):
        read_mask(path, (3, 5))


def test_unreadable_mask(tmp_path):
    (tmp_path / "m.png").write_bytes(b"")
    with pytest.raises(StageError, match="empty file"):
        read_mask(tmp_path / "m.png", (3, 5))


# ---------------------------------------------------------------- encode / decode
def test_png_round_trip():
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6)
    rgb = np.random.default_rng(4).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    for pixels in (gray, rgb):
        data = encode_png(pixels)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        np.testing.assert_array_equal(decode_image_bytes(data), pixels)
    with pytest.raises(ValueError):
        encode_png(gray.astype(np.uint16))
    with pytest.raises(StageError):
        decode_image_bytes(encode_png(gray)[:40])


# ---------------------------------------------------------------- DICOM (files pydicom ships)
def test_ct_applies_rescale_and_the_soft_tissue_window():
    path = get_testdata_file("CT_small.dcm")
    image = read_image(path)
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)  # intercept -1024
    np.testing.assert_array_equal(image.pixels, expected_window(hu, 40, 400))
    assert image.intensity == "CT window soft tissue (L40 W400) HU"
    assert image.modality_hint == "CT"
    assert image.spacing == [0.661468, 0.661468]
    assert image.orientation == "1,0,0,0,1,0"
    assert image.patient_left_on_image == "right"  # row vector +x: towards the patient's left

    lung = read_image(path, window="lung")
    assert lung.intensity == "CT window lung (L-600 W1500) HU"
    np.testing.assert_array_equal(lung.pixels, expected_window(hu, -600, 1500))
    assert read_image(path, window="L50/W100").intensity == "CT window custom (L50 W100) HU"
    with pytest.raises(UserError, match="unknown window"):
        read_image(path, window="liver-ish")


def test_ct_head_defaults_to_the_brain_window(tmp_path):
    hu = np.array([[0, 40], [80, 1000]], dtype=np.int16)
    path = write_dicom(tmp_path / "h.dcm", hu, BodyPartExamined="HEAD", RescaleIntercept=0, RescaleSlope=1)
    image = read_image(path)
    assert image.intensity == "CT window brain (L40 W80) HU"
    assert image.pixels.tolist() == [[0, 128], [255, 255]]
    assert image.body_part == "head"


def test_window_presets_are_for_ct_only(tmp_path):
    with pytest.raises(StageError, match="applies to CT"):
        read_image(get_testdata_file("MR_small.dcm"), window="brain")
    path = save(Image.new("L", (2, 2)), tmp_path / "g.png")
    with pytest.raises(StageError, match="CT DICOM only"):
        read_image(path, window="lung")


def test_mr_uses_the_files_window():
    path = get_testdata_file("MR_small.dcm")
    image = read_image(path)
    assert image.intensity == "DICOM window L600/W1600"
    assert image.modality_hint == "MRI"
    np.testing.assert_array_equal(image.pixels, expected_window(pydicom.dcmread(path).pixel_array, 600, 1600))


def test_rgb_ultrasound():
    path = data_store_file("US1_UNCI.dcm")
    image = read_image(path)
    assert image.pixels.shape == (480, 640, 3)
    assert image.intensity == "8-bit RGB as stored"
    assert image.modality_hint == "Ultrasound"
    np.testing.assert_array_equal(image.pixels, pydicom.dcmread(path).pixel_array)


def test_monochrome1_chest_radiograph_is_inverted_after_windowing():
    path = data_store_file("RG1_UNCI.dcm")
    image = read_image(path)
    raw = pydicom.dcmread(path).pixel_array
    assert image.intensity == "DICOM window L15000/W30000; MONOCHROME1 inverted"
    np.testing.assert_array_equal(image.pixels, 255 - expected_window(raw, 15000, 30000))
    h, w = image.pixels.shape
    band = image.pixels[int(h * 0.35) : int(h * 0.55)]
    lungs = (band[:, int(w * 0.2) : int(w * 0.35)].mean() + band[:, int(w * 0.65) : int(w * 0.8)].mean()) / 2
    mediastinum = band[:, int(w * 0.45) : int(w * 0.55)].mean()
    assert lungs < mediastinum - 30  # displayed as radiologists see it: dark lungs
    assert (image.modality_hint, image.body_part, image.orientation) == ("X-Ray", "chest", "PA; rows L, columns F")
    assert image.patient_left_on_image == "right"  # PatientOrientation rows point to L
    assert image.spacing is None  # the file's PixelSpacing is 0\0


def test_patient_orientation_towards_the_right():
    # RG3 is an AP view whose rows point to the patient's right: the convention alone would be wrong.
    assert read_image(data_store_file("RG3_UNCI.dcm")).patient_left_on_image == "left"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"ImageOrientationPatient": [-1, 0, 0, 0, 1, 0]}, "left"),
        ({"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}, None),  # sagittal: no left-right in plane
        ({"ImageOrientationPatient": [0.57, 0.82, 0, 0, 0, -1]}, None),  # oblique beyond 45 degrees
        ({"ViewPosition": "AP", "Modality": "DX"}, "right"),  # display convention
        ({"ViewPosition": "LL", "Modality": "DX"}, None),
        ({}, None),
    ],
)
def test_patient_side_rules(tmp_path, attributes, expected):
    path = write_dicom(tmp_path / "o.dcm", np.zeros((4, 4), np.uint16), **attributes)
    assert read_image(path).patient_left_on_image == expected


def test_overlay_plane():
    path = get_testdata_file("examples_overlay.dcm")
    mask = read_dicom_overlay(path)
    assert mask.dtype == bool and mask.shape == (300, 484)
    assert int(mask.sum()) == 222
    assert read_dicom_overlay(path, group=0x6002) is None
    assert read_dicom_overlay(get_testdata_file("CT_small.dcm")) is None


def test_overlay_is_placed_at_its_origin(tmp_path):
    path = write_dicom(tmp_path / "ov.dcm", np.zeros((6, 8), np.uint16))
    ds = pydicom.dcmread(path)
    plane = np.zeros((2, 8), dtype=np.uint8)
    plane[0, :3] = 1
    ds.add_new(0x60000010, "US", 2)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [4, 2])  # 1-based row 4, column 2
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", pydicom.pixels.pack_bits(plane))
    ds.save_as(path)
    mask = read_dicom_overlay(path)
    assert mask.shape == (6, 8)
    assert np.argwhere(mask).tolist() == [[3, 1], [3, 2], [3, 3]]


def test_multi_frame():
    path = data_store_file("emri_small.dcm")
    assert dicom_frame_count(path) == 10
    image = read_image(path, frame=3)
    assert image.n_frames == 10
    np.testing.assert_array_equal(image.pixels, expected_percentile(pixel_array(path, index=3)))
    with pytest.raises(StageError, match=r"frame 10 out of range: the file has 10 frame\(s\)"):
        read_image(path, frame=10)
    with pytest.raises(StageError, match="out of range"):
        read_dicom_overlay(path, frame=10)


def test_enhanced_multi_frame_rescale_comes_from_the_functional_groups(tmp_path):
    stored = np.array([[0, 1024], [1064, 2000]], dtype=np.uint16)
    path = write_dicom(tmp_path / "e.dcm", stored)
    ds = pydicom.dcmread(path)
    transform, measures, shared = Dataset(), Dataset(), Dataset()
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = -1024, 1, "HU"
    measures.PixelSpacing = [0.5, 0.7]
    shared.PixelValueTransformationSequence = Sequence([transform])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.save_as(path)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, expected_window(stored.astype(float) - 1024, 40, 400))
    assert image.spacing == [0.5, 0.7]


def test_file_window_that_misses_the_data_falls_back_to_percentiles(tmp_path):
    values = np.arange(100, dtype=np.uint16).reshape(10, 10)
    path = write_dicom(tmp_path / "w.dcm", values, Modality="MR", WindowCenter=20000, WindowWidth=100)
    image = read_image(path)
    assert image.intensity == "percentile 0.5-99.5 to 8-bit (DICOM window L20000/W100 misses the data range)"
    np.testing.assert_array_equal(image.pixels, expected_percentile(values))


def test_palette_and_ybr_dicom_become_rgb():
    palette = read_image(data_store_file("OT-PAL-8-face.dcm"))  # also: no 128-byte preamble
    assert palette.pixels.shape == (480, 640, 3)
    assert palette.intensity == "PALETTE COLOR converted to RGB"
    assert palette.modality_hint is None  # OT
    ybr = read_image(data_store_file("SC_ybr_full_uncompressed.dcm"))
    rgb = read_image(data_store_file("SC_rgb.dcm"))
    assert ybr.intensity == "YBR_FULL converted to RGB; 8-bit RGB as stored"
    difference = np.abs(ybr.pixels.astype(int) - rgb.pixels.astype(int))  # unconverted YBR would differ by ~180
    assert difference.max() <= 8 and difference.mean() < 1


def test_dicom_without_pixel_data():
    with pytest.raises(StageError, match=r"DICOM file has no pixel data \(RT Structure Set Storage\)"):
        read_image(get_testdata_file("rtstruct.dcm"))


def test_truncated_dicom_pixel_data():
    with pytest.raises(StageError, match="truncated or corrupt DICOM pixel data"):
        read_image(get_testdata_file("MR_truncated.dcm"))


@pytest.mark.parametrize(
    ("path", "syntax", "name"),
    [
        (lambda: get_testdata_file("JPEG2000.dcm"), JPEG2000, "JPEG 2000 Image Compression"),
        (
            lambda: data_store_file("emri_small_jpeg_ls_lossless.dcm"),
            JPEGLSLossless,
            "JPEG-LS Lossless Image Compression",
        ),
    ],
)
def test_compressed_syntax_without_a_decoder_names_it(path, syntax, name, monkeypatch):
    decoder = get_decoder(syntax)
    if decoder.is_available:  # the default install has the decoders: play a machine without them
        monkeypatch.setattr(decoder, "_available", {})
        monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0")})
    assert not decoder.is_available
    with pytest.raises(StageError, match=f"^{name}: no decoder installed; install one of .*pylibjpeg"):
        read_image(path())


def test_patient_identifiers_are_never_copied(tmp_path):
    path = write_dicom(
        tmp_path / "p.dcm",
        np.arange(16, dtype=np.uint16).reshape(4, 4),
        PatientName="Doe^Jane",
        PatientID="ID-4711-XYZ",
        PatientBirthDate="19610203",
        InstitutionName="Saint Nowhere",
        AccessionNumber="ACC998877",
        BodyPartExamined="CHEST",
    )
    image = read_image(path)
    text = repr(image) + repr(vars(image))
    for secret in ("Doe", "Jane", "4711", "19610203", "Nowhere", "998877"):
        assert secret not in text
    assert set(vars(image)) == {
        "pixels",
        "intensity",
        "spacing",
        "orientation",
        "modality_hint",
        "body_part",
        "n_frames",
        "patient_left_on_image",
    }


def test_modality_map_uses_the_record_vocabulary():
    assert {v for v in DICOM_MODALITY_MAP.values() if v is not None} <= set(MODALITIES)
    assert DICOM_MODALITY_MAP["MG"] == "X-Ray" and DICOM_MODALITY_MAP["OT"] is None


def test_modality_lut_sequence_and_voi_lut_sequence():
    from pydicom.pixels import apply_modality_lut

    path = data_store_file("mlut_18.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    assert image.intensity == "percentile 0.5-99.5 to 8-bit"
    np.testing.assert_array_equal(image.pixels, expected_percentile(apply_modality_lut(ds.pixel_array, ds)))
    assert read_image(data_store_file("vlut_04.dcm")).intensity == "DICOM VOI LUT (first) min-max to 8-bit"


def test_sigmoid_voi_function(tmp_path):
    values = np.array([[0, 100, 200]], dtype=np.uint16)
    path = write_dicom(
        tmp_path / "s.dcm", values, Modality="MR", WindowCenter=100, WindowWidth=100, VOILUTFunction="SIGMOID"
    )
    image = read_image(path)
    assert image.intensity == "DICOM window L100/W100 sigmoid"
    assert image.pixels.tolist() == [[round(255 / (1 + np.exp(4))), 128, round(255 / (1 + np.exp(-4)))]]


def test_palette_tiff_becomes_rgb(tmp_path):
    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[:, 1] = [65535, 0, 32768]
    tifffile.imwrite(tmp_path / "p.tif", np.array([[0, 1]], dtype=np.uint8), photometric="palette", colormap=colormap)
    image = read_image(tmp_path / "p.tif")
    assert image.pixels.tolist() == [[[0, 0, 0], [255, 0, 128]]]
    assert image.intensity == "palette converted to RGB"


@pytest.mark.parametrize("content", [b"", b"hello, this is not DICOM", bytes(range(256)) * 8])
def test_non_dicom_with_a_dcm_suffix(tmp_path, content):
    (tmp_path / "x.dcm").write_bytes(content)
    with pytest.raises(StageError):
        read_image(tmp_path / "x.dcm")
    with pytest.raises(StageError):
        read_dicom_overlay(tmp_path / "x.dcm")
    with pytest.raises(StageError):
        dicom_frame_count(tmp_path / "x.dcm")


@pytest.mark.parametrize("compressed", ["693_J2KR.dcm", "MR2_J2KR.dcm"])
def test_compressed_dicom_decodes_with_the_default_install(compressed):
    """JPEG 2000 lossless decodes (pylibjpeg-openjpeg) to exactly the uncompressed file's pixels."""
    uncompressed = compressed.replace("J2KR", "UNCR")
    assert np.array_equal(
        read_image(data_store_file(compressed)).pixels, read_image(data_store_file(uncompressed)).pixels
    )


# ---------------------------------------------------------------- privacy: header values never reach a reason
IDENTIFIERS = {
    "PatientName": "Quixotl^Zebulonia",
    "PatientID": "PIDX8842731Q",
    "PatientBirthDate": "19370412",
    "PatientAddress": "77 Wrenfeather Lane",
    "InstitutionName": "Bartolomeo Quarry Hospital",
}
NEEDLES = ("Quixotl", "Zebulonia", "PIDX8842731Q", "19370412", "Wrenfeather", "Bartolomeo")


def leaked(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle.lower() in text.lower()]


def with_raw(path: Path, **raw: tuple[str, bytes]) -> Path:
    """Rewrite `path` with elements stored as raw bytes, as a corrupt or careless writer leaves them."""
    import warnings

    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement

    ds = pydicom.dcmread(path)
    for keyword, (vr, value) in raw.items():
        tag = pydicom.tag.Tag(tag_for_keyword(keyword))
        target = ds.file_meta if tag.group == 2 else ds
        target._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing validates the meta header: the invalid values are the point
        ds.save_as(path, enforce_file_format=False)
    return path


def identified_dicom(path: Path, **attributes) -> Path:
    return write_dicom(path, RAMP16[:4, :8].copy(), **IDENTIFIERS, **attributes)


def stage_error(path: Path, **kwargs) -> str:
    with pytest.raises(StageError) as caught:
        read_image(path, **kwargs)
    return str(caught.value)


def test_sop_class_uid_with_a_corrupt_length_is_not_quoted(tmp_path):
    """A too-long SOPClassUID swallows the elements after it; UID.name of that would be the identifiers."""
    path = identified_dicom(tmp_path / "s.dcm")
    data = bytearray(path.read_bytes())
    at = data.index(b"\x08\x00\x16\x00UI", 132 + 100)
    for length in (120, 160, 200):
        data[at + 6 : at + 8] = struct.pack("<H", length)
        path.write_bytes(bytes(data))
        reason = stage_error(path)
        assert leaked(reason) == [], reason


def test_no_pixel_data_names_only_registered_sop_classes(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    ds.SOPClassUID = "1.2.826.0.1.3680043.8.498.4242"  # valid but unregistered: UID.name is the value
    ds.save_as(tmp_path / "r.dcm")
    assert stage_error(tmp_path / "r.dcm") == "DICOM file has no pixel data (unknown SOP class)"
    assert uid_name(CTImageStorage, "?") == "CT Image Storage"
    assert uid_name("Quixotl 1.2", "unknown SOP class") == "unknown SOP class"


def test_invalid_header_values_print_nothing_and_validation_is_restored(tmp_path, capfd, caplog):
    import logging
    import warnings

    ds = pydicom.dcmread(identified_dicom(tmp_path / "v.dcm"))
    del ds.PixelData  # the no-pixel-data reason reads SOPClassUID, whose invalid value pydicom would quote
    ds.save_as(tmp_path / "v.dcm")
    path = with_raw(tmp_path / "v.dcm", SOPClassUID=("UI", b"1.2.Quixotl.Zebulonia\0"))
    mode = pydicom.config.settings.reading_validation_mode
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert stage_error(path) == "DICOM file has no pixel data (unknown SOP class)"
        assert dicom_frame_count(path) == 1 and read_dicom_overlay(path) is None
    out, err = capfd.readouterr()
    assert leaked(out + err + caplog.text + " ".join(str(w.message) for w in caught)) == []
    assert caplog.records == [] and caught == []
    assert pydicom.config.settings.reading_validation_mode == mode
    with warnings.catch_warnings(record=True) as caught:  # the scan can see: pydicom does warn on its own
        warnings.simplefilter("always")
        _ = pydicom.dcmread(path).SOPClassUID
    assert leaked(" ".join(str(w.message) for w in caught))


@pytest.mark.parametrize(
    ("attributes", "raw", "reason"),
    [
        (
            {"Modality": "MR", "WindowWidth": 400},
            {"WindowCenter": ("DS", b"Quixotl ")},
            "corrupt DICOM header: WindowCenter is not a number",
        ),
        (
            {"Modality": "MR", "WindowCenter": 40},
            {"WindowWidth": ("DS", b"Zebulonia\\40 ")},
            "corrupt DICOM header: WindowWidth is not a number",
        ),
        ({}, {"RescaleSlope": ("DS", b"Quixotl ")}, "corrupt DICOM header: RescaleSlope is not a number"),
        ({}, {"RescaleIntercept": ("DS", b"-l024.0 ")}, "corrupt DICOM header: RescaleIntercept is not a number"),
        ({}, {"PixelSpacing": ("DS", b"0.5\\Quixotl")}, "corrupt DICOM header: PixelSpacing is not a number"),
        (
            {},
            {"ImageOrientationPatient": ("DS", b"1\\0\\0\\0\\Quixotl\\0 ")},
            "corrupt DICOM header: ImageOrientationPatient is not a number",
        ),
        ({}, {"NumberOfFrames": ("IS", b"Quixotl ")}, "corrupt DICOM header: NumberOfFrames is not a number"),
        (
            {},
            {"TransferSyntaxUID": ("UI", b"1.2.Quixotl\0")},
            "corrupt DICOM header: TransferSyntaxUID is not a known transfer syntax",
        ),
        ({}, {"Modality": ("QX", b"Quixotl ")}, "corrupt DICOM header (could not parse Modality)"),
    ],
)
def test_corrupt_header_values_give_a_fixed_reason_naming_the_tag(tmp_path, attributes, raw, reason):
    path = with_raw(identified_dicom(tmp_path / "c.dcm", **attributes), **raw)
    assert stage_error(path) == reason


def test_window_error_never_quotes_a_free_text_modality(tmp_path):
    path = with_raw(identified_dicom(tmp_path / "m.dcm"), Modality=("CS", b"Quixotl "))
    assert stage_error(path, window="bone") == "window 'bone' applies to CT (HU) but this file's modality is unknown"


def test_random_corruptions_never_leak_and_always_give_a_stage_error(tmp_path):
    import random

    path = identified_dicom(
        tmp_path / "src.dcm",
        Modality="MR",
        WindowCenter=40,
        WindowWidth=400,
        PixelSpacing=[0.5, 0.5],
        ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
    )
    original, rng = path.read_bytes(), random.Random(1)
    header_end = len(original) - RAMP16[:4, :8].nbytes
    target, reasons = tmp_path / "f.dcm", set()
    for _ in range(1500):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(132, header_end if rng.random() < 0.9 else len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(132, len(data))]
        target.write_bytes(bytes(data))
        try:
            read_image(target)
        except StageError as e:  # anything else fails the test
            reasons.add(str(e))
    assert len(reasons) > 10  # the corruptions do reach many parsing paths
    assert [r for r in reasons if leaked(r) or "\n" in r or "0x" in r] == []


@pytest.mark.parametrize(
    ("raw", "organ"),
    [
        (b"QUIXOTL ", None),
        (b"Quixotl Zebulonia ", None),
        (b"CHEST ", "chest"),
        (b"CSPINE", "cervical spine"),
        (b"WHOLEBODY ", "whole body"),
        (b"abdomen ", "abdomen"),
    ],
)
def test_body_part_only_from_defined_terms(tmp_path, raw, organ):
    path = with_raw(identified_dicom(tmp_path / "b.dcm"), BodyPartExamined=("CS", raw))
    assert read_image(path).body_part == organ


@pytest.mark.parametrize(
    ("raw", "orientation", "side"),
    [
        ({"ViewPosition": ("CS", b"Zebulonia "), "PatientOrientation": ("CS", b"Quixotl\\F ")}, None, None),
        ({"ViewPosition": ("CS", b"PA"), "PatientOrientation": ("CS", b"Quixotl\\F ")}, "PA", "right"),
        ({"ViewPosition": ("CS", b"Zebulonia "), "PatientOrientation": ("CS", b"R\\FL")}, "rows R, columns FL", "left"),
        ({"ViewPosition": ("CS", b"AP"), "PatientOrientation": ("CS", b"L\\F ")}, "AP; rows L, columns F", "right"),
    ],
)
def test_view_and_patient_orientation_only_from_defined_terms(tmp_path, raw, orientation, side):
    path = with_raw(identified_dicom(tmp_path / "o.dcm", Modality="DX"), **raw)
    image = read_image(path)
    assert (image.orientation, image.patient_left_on_image) == (orientation, side)


def test_header_truncated_inside_an_identifier_is_a_truncated_file(tmp_path):
    data = identified_dicom(tmp_path / "t.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(data[: data.index(b"Quixotl") + 4])
    assert stage_error(tmp_path / "t.dcm") == "truncated DICOM file (it ends inside an element)"


def test_mask_errors_name_the_mask_never_its_absolute_path(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "x.png").write_bytes(b"garbage")
    with pytest.raises(StageError) as caught:
        read_mask(tmp_path / "masks" / "x.png", (3, 5), name="masks/x.png")
    assert str(caught.value) == "mask masks/x.png: not a readable image (unrecognised format)"
    with pytest.raises(StageError, match=r"^mask x.png: empty file \(0 bytes\)$"):
        (tmp_path / "masks" / "x.png").write_bytes(b"")
        read_mask(tmp_path / "masks" / "x.png", (3, 5))


def _encapsulated(path: Path, syntax: str, fragment: bytes) -> Path:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(identified_dicom(path))
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=False)
    return path


@pytest.mark.parametrize(
    ("syntax", "fragment", "name"),
    [
        ("1.2.840.10008.1.2.4.90", b"Quixotl garbage frame", "JPEG 2000 Image Compression (Lossless Only)"),
        ("1.2.840.10008.1.2.5", b"\x01\x00\x00\x00\x40\x00\x00\x00" + b"\0" * 56 + b"Quixotl", "RLE Lossless"),
    ],
)
def test_undecodable_compressed_pixels_give_one_fixed_line_and_no_traceback(
    tmp_path, capfd, caplog, syntax, fragment, name
):
    import logging

    caplog.set_level(logging.DEBUG)
    path = _encapsulated(tmp_path / "j.dcm", syntax, fragment)
    assert stage_error(path) == f"could not decode {name} pixel data"
    out, err = capfd.readouterr()
    assert caplog.records == [] and "Traceback" not in err and leaked(out + err) == []
