"""ct-body on a synthetic axial chest CT slice: body in air, darker lungs, bright spine, scanner table."""

import numpy as np

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def ellipse(shape, centre_xy, radii_xy) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (cols - centre_xy[0]) ** 2 / radii_xy[0] ** 2 + (rows - centre_xy[1]) ** 2 / radii_xy[1] ** 2 <= 1


def synthetic_chest_ct(seed=0):
    """Soft-tissue window: air 0, fat 0.3, soft tissue 0.55, lung air 0.03, bone 1."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    body = ellipse(shape, (128, 120), (112, 80))
    lungs = ellipse(shape, (80, 112), (34, 50)) | ellipse(shape, (176, 112), (34, 50))
    spine = ellipse(shape, (128, 172), (13, 13))
    sternum = ellipse(shape, (128, 50), (14, 5))
    bone = spine | sternum
    image = np.zeros(shape)
    image[body] = 0.3
    image[ellipse(shape, (128, 120), (102, 70))] = 0.55
    image[lungs] = 0.03
    image[bone] = 1.0
    image[212:215, 20:236] = 0.6  # the scanner table, apart from the body
    image += rng.normal(0, 0.02, shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), body, lungs, bone


def test_synthetic_body_lungs_and_bone_match_the_known_masks():
    image, body, lungs, bone = synthetic_chest_ct()
    regions = {r.label: r for r in get_expert("ct-body").locate(image, "CT", "chest", [])}
    assert sorted(regions) == ["body", "bone", "lungs"]
    assert dice(regions["body"].mask, body) >= 0.95
    assert not regions["body"].mask[212:215].any()  # the table is not the body
    assert dice(regions["lungs"].mask, lungs) >= 0.9
    assert dice(regions["bone"].mask, bone) >= 0.8
    assert all(r.score > 0.5 for r in regions.values())
    assert regions["bone"].source == "expert:ct-body@1.2"


def test_abdominal_slice_has_no_lungs_and_small_gas_is_not_called_lung():
    image, body, _, _ = synthetic_chest_ct()
    image[body] = 140
    image[ellipse(image.shape, (150, 130), (5, 4))] = 5  # a bubble of bowel gas
    regions = {r.label for r in get_expert("ct-body").locate(image, "CT", "abdomen", [])}
    assert "lungs" not in regions and "body" in regions


def test_without_bone_no_bone_is_reported():
    image, body, lungs, bone = synthetic_chest_ct()
    image[bone] = 140  # soft tissue where the bone was
    regions = {r.label for r in get_expert("ct-body").locate(image, "CT", "chest", [])}
    assert regions == {"body", "lungs"}


def test_real_ct_bone_is_the_vertebra():
    """pydicom's CT_small.dcm (a 128 px crop around a vertebra) at a soft-tissue window (W400 L40)."""
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    image = (np.clip((hounsfield + 160) / 400, 0, 1) * 255).astype(np.uint8)
    regions = {r.label: r for r in get_expert("ct-body").locate(image, "CT", None, [])}
    bone = regions["bone"].mask
    assert bone[hounsfield > 400].mean() > 0.95  # all cortical bone is in it
    assert np.median(hounsfield[bone]) > 150  # and what is in it is bone density, not muscle (~40 HU)


def test_no_lungs_are_looked_for_in_a_head_slice():
    image, _, _, _ = synthetic_chest_ct()  # dark pockets a chest would call lungs
    assert "lungs" in {r.label for r in get_expert("ct-body").locate(image, "CT", None, [])}
    for organ in ("head", "Brain", "neck", "knee"):
        assert "lungs" not in {r.label for r in get_expert("ct-body").locate(image, "CT", organ, [])}


def test_pockets_of_fat_darkness_are_not_lungs():
    """Soft-tissue window (L40/W400): fat (-100 HU) is 0.15, lungs (-850 HU) clip to 0 like the outside air."""
    image, body, lungs, _ = synthetic_chest_ct()
    image[lungs] = round(0.15 * 255)
    assert "lungs" not in {r.label for r in get_expert("ct-body").locate(image, "CT", "chest", [])}


def test_lungs_on_a_lung_window_are_found_though_lighter_than_the_outside_air():
    """Lung window (L-600/W1500): air 0.23, lung parenchyma 0.33, fat 0.83, soft tissue 0.93, bone 1."""
    _, body, lungs, bone = synthetic_chest_ct()
    values = np.full(body.shape, 0.23)
    values[body] = 0.83
    values[ellipse(body.shape, (128, 120), (102, 70))] = 0.93
    values[lungs] = 0.33
    values[bone] = 1.0
    noisy = values + np.random.default_rng(1).normal(0, 0.02, values.shape)
    image = (np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    regions = {r.label: r for r in get_expert("ct-body").locate(image, "CT", "chest", [])}
    assert dice(regions["lungs"].mask, lungs) >= 0.9


def head_ct():
    """pydicom-data's head CT 693_UNCI.dcm as the demo reads it: brain window L40/W80, so below ~0 HU is black."""
    import sys
    from pathlib import Path

    import pydicom

    from medtrinity.sources.imaging import read_image

    path = Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "data_store" / "data" / "693_UNCI.dcm"
    dataset = pydicom.dcmread(path)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    return read_image(path, window="brain").pixels, hounsfield


def test_real_head_ct_has_body_and_skull_and_no_lungs():
    image, hounsfield = head_ct()
    for organ in ("head", None):
        regions = {r.label: r for r in get_expert("ct-body").locate(image, "CT", organ, [])}
        assert sorted(regions) == ["body", "bone"]  # the dark pockets inside the head are not lungs
    body, bone = regions["body"].mask, regions["bone"].mask
    brain = (hounsfield > 0) & (hounsfield < 80)  # grey and white matter
    assert body[brain].mean() > 0.95
    assert bone[hounsfield > 300].mean() > 0.95  # the skull is in it
    assert np.median(hounsfield[bone]) > 300  # and what is in it is bone density, not brain (~40 HU)


def test_a_slice_of_one_material_has_no_body():
    """Fat-like noise with no air around it (the KiTS miniature's slices without kidney: -50 HU on an abdomen
    window): Otsu still splits the noise, and a clump of its brighter half used to be called the body."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        image = np.clip(70 + rng.normal(0, 6, (32, 32)), 0, 255).astype(np.uint8)
        assert get_expert("ct-body").locate(image, "CT", "kidney", []) == []
        body_in_fat = image.copy()  # the same noise standing for the air around a body
        body_in_fat[ellipse(body_in_fat.shape, (16, 16), (10, 8))] += 70
        assert [r.label for r in get_expert("ct-body").locate(body_in_fat, "CT", "kidney", [])] == ["body"]
