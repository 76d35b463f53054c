"""NIfTI slices: reorientation to RAS, radiological layout, world position, intensity rules, label maps,
slice choice and the per-process volume cache."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medtrinity.errors import StageError
from medtrinity.sources.base import SourceItem
from medtrinity.sources.imaging import read_image
from medtrinity.sources.readers import nifti
from medtrinity.sources.readers.nifti import load_volume, read_label_slice, read_volume_slice
from medtrinity.sources.volume import LabelMapSlice, SliceChoice, choose_slices, evenly_spaced

# LPS voxel order (like DICOM-derived NIfTI): file voxel (a, b, c) -> world RAS
# x = 15.5 - a, y = 15.5 - b, z = 2c - 10 (mm).
LPS_AFFINE = np.array([[-1.0, 0, 0, 15.5], [0, -1.0, 0, 15.5], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])
LESION = (slice(24, 28), slice(4, 8), slice(7, 8))  # file voxels: world x -8.5..-12.5 (patient's left),
# y 11.5..7.5 (anterior), z = 4 mm


@pytest.fixture(autouse=True)
def _fresh_cache():
    nifti.clear_cache()
    yield
    nifti.clear_cache()


def _lps_volume(tmp_path: Path, name: str = "lps.nii.gz") -> tuple[Path, Path]:
    image = np.full((32, 32, 16), 100, np.int16)
    labels = np.zeros((32, 32, 16), np.uint8)
    image[LESION] = 900
    labels[LESION] = 3
    img_path, lab_path = tmp_path / name, tmp_path / f"seg_{name}"
    nib.save(nib.Nifti1Image(image, LPS_AFFINE), str(img_path))
    nib.save(nib.Nifti1Image(labels, LPS_AFFINE), str(lab_path))
    return img_path, lab_path


def _box(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def test_axial_slice_of_an_lps_volume_is_radiological_and_at_the_known_world_position(tmp_path):
    path, _ = _lps_volume(tmp_path)
    image = read_volume_slice(
        path, slice_index=7, axis="axial", window="soft-tissue"
    )  # canonical k = c (z not flipped)
    assert image.orientation == "axial RAS z=4mm"
    assert image.spacing == [1.0, 1.0]
    assert image.patient_left_on_image == "right"
    # patient's left (low RAS i) on the image's right, anterior at the top
    assert _box(image.pixels == 255) == [24, 4, 28, 8]
    assert image.pixels.shape == (32, 32)
    assert read_volume_slice(path, slice_index=6, axis="axial").orientation == "axial RAS z=2mm"


def test_coronal_and_sagittal_slices_put_superior_up(tmp_path):
    path, _ = _lps_volume(tmp_path)
    coronal = read_volume_slice(path, slice_index=25, axis="coronal", window="soft-tissue")  # canonical j = 31 - b
    assert coronal.pixels.shape == (16, 32)
    assert _box(coronal.pixels == 255) == [24, 8, 28, 9]  # row = 15 - k
    assert coronal.patient_left_on_image == "right"
    assert coronal.spacing == [2.0, 1.0]
    assert coronal.orientation == "coronal RAS y=9.5mm"
    sagittal = read_volume_slice(path, slice_index=5, axis="sagittal", window="soft-tissue")  # canonical i = 31 - a
    assert _box(sagittal.pixels == 255) == [4, 8, 8, 9]  # anterior on the left
    assert sagittal.patient_left_on_image is None
    assert sagittal.orientation == "sagittal RAS x=-10.5mm"


def test_the_same_anatomy_stored_in_ras_order_gives_the_same_pixels(tmp_path):
    lps, _ = _lps_volume(tmp_path)
    data = np.asanyarray(nib.load(str(lps)).dataobj)
    ras = tmp_path / "ras.nii"
    ras_affine = np.array([[1.0, 0, 0, -15.5], [0, 1.0, 0, -15.5], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data[::-1, ::-1, :].copy(), ras_affine), str(ras))
    a, b = read_image(lps, slice_index=7, axis="axial"), read_image(ras, slice_index=7, axis="axial")
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.orientation == b.orientation == "axial RAS z=4mm"


def test_label_map_slice_lines_up_with_the_image_and_names_labels(tmp_path):
    img, seg = _lps_volume(tmp_path)
    item = SourceItem(source="t", root=str(tmp_path), file=img.name, slice=7, axis="axial")
    regions = LabelMapSlice(path=seg.name, image=img.name, labels={3: "lesion", 5: "absent"}).resolve(
        tmp_path, item, (32, 32)
    )
    assert [r.label for r in regions] == ["lesion"]
    np.testing.assert_array_equal(regions[0].mask, read_volume_slice(img, 7, "axial", window="bone").pixels > 128)
    assert read_label_slice(seg, 7, "axial").dtype == np.int32


def test_label_map_of_another_shape_is_a_stage_error_naming_both_files(tmp_path):
    img, _ = _lps_volume(tmp_path)
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 12), np.uint8), LPS_AFFINE), str(tmp_path / "short.nii.gz"))
    item = SourceItem(source="t", root=str(tmp_path), file=img.name, slice=7, axis="axial")
    with pytest.raises(
        StageError, match=r"label map short.nii.gz has shape 32x32x12 but its image lps.nii.gz has 32x32x16"
    ):
        LabelMapSlice(path="short.nii.gz", image=img.name, labels={1: "x"}).resolve(tmp_path, item, (32, 32))


def test_intensity_rules_are_recorded(tmp_path):
    path, _ = _lps_volume(tmp_path)
    mri = read_volume_slice(path, 7)
    assert mri.intensity == "percentile 0.5-99.5 to 8-bit (over the volume)"
    ct = read_image(path, slice_index=7, window="soft-tissue")  # 100 HU -> (100+160)/400*255
    assert ct.intensity == "CT window soft tissue (L40 W400) HU"
    assert ct.pixels[0, 0] == round((100 - (40 - 200)) / 400 * 255) and ct.pixels[4, 24] == 255
    assert read_image(path, slice_index=7, window="L100/W2").pixels[0, 0] == 128
    assert read_image(path).orientation == "axial RAS z=6mm"  # no slice index: the middle slice (8 of 16)


def test_unreadable_volume_bad_slice_and_frame_are_stage_errors(tmp_path):
    path, _ = _lps_volume(tmp_path)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(StageError, match="bad.nii.gz: not a readable NIfTI volume"):
        read_image(bad, slice_index=0)
    with pytest.raises(StageError, match="axial slice 16 out of range: the volume has 16 axial slices"):
        read_image(path, slice_index=16)
    with pytest.raises(StageError, match="slices, not frames"):
        read_image(path, frame=1)
    with pytest.raises(StageError, match="axis 'oblique'"):
        read_image(path, slice_index=1, axis="oblique")


def test_volumes_are_cached_per_process_lru_of_two(tmp_path, monkeypatch):
    a, b = _lps_volume(tmp_path, "a.nii.gz")
    c, _ = _lps_volume(tmp_path, "c.nii.gz")
    calls = []
    original = nifti._load_uncached
    monkeypatch.setattr(nifti, "_load_uncached", lambda p, labels: calls.append(p.name) or original(p, labels))
    for index in range(16):
        read_volume_slice(a, index)
    assert calls == ["a.nii.gz"]
    assert load_volume(a) is load_volume(a)
    load_volume(b, labels=True)
    load_volume(c)  # evicts a
    load_volume(a)
    assert calls == ["a.nii.gz", "seg_a.nii.gz", "c.nii.gz", "a.nii.gz"]


def test_slice_choice_is_the_largest_slice_plus_evenly_spaced_ones_and_interior_label_free_ones():
    labels = np.zeros((4, 4, 20), np.int32)
    labels[0, 0, 2:12] = 1  # label 1 on slices 2..11, largest at slice 9
    labels[:2, :2, 9] = 1
    labels[3, 3, 14] = 2
    choice = SliceChoice(per_label=4, every=1, normal_slices=2)
    chosen = choose_slices(labels, "axial", {1: "a", 2: "b"}, choice)
    # rest of label 1 = 2..8, 10, 11 (9 slices): positions 0, 4, 8 -> 2, 6, 11
    # label-free slices carry no label: nothing says they are normal
    assert chosen == {2: ["a"], 6: ["a"], 9: ["a"], 11: ["a"], 14: ["b"], 13: [], 17: []}
    assert list(choose_slices(labels, "axial", {1: "a"}, SliceChoice(per_label=None, every=3, normal_slices=0))) == [
        2,
        5,
        8,
        11,
    ]
    assert evenly_spaced([0, 1, 12, 13, 15, 16, 17, 18, 19], 2, interior=True) == [13, 17]
    assert evenly_spaced([5, 6], 3) == [5, 6]


def test_unreadable_volume_reasons_say_what_is_wrong_without_paths_or_library_names(tmp_path):
    import gzip

    path, _ = _lps_volume(tmp_path)
    raw = gzip.decompress(path.read_bytes())
    cases = {
        "not_gzip.nii.gz": (b"garbage" * 50, "not gzip"),
        "short.nii.gz": (gzip.compress(raw[:-100]), "truncated or corrupt data"),
        "header.nii": (raw[:200], "truncated, or no NIfTI header"),
    }
    for name, (data, problem) in cases.items():
        (tmp_path / name).write_bytes(data)
        for read in (lambda p: read_image(p, slice_index=0), nifti.volume_shape):
            if name == "short.nii.gz" and read is nifti.volume_shape:
                continue  # the header alone is intact
            with pytest.raises(StageError) as caught:
                read(tmp_path / name)
            assert str(caught.value) == f"{name}: not a readable NIfTI volume ({problem})"
