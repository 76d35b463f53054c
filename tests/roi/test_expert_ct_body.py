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
    assert regions["bone"].source == "expert:ct-body@1.0"


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
