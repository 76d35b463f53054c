"""chest-xray-lungs on a synthetic frontal radiograph and on pydicom's real chest radiograph."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def ellipse(shape, centre_xy, radii_xy) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (cols - centre_xy[0]) ** 2 / radii_xy[0] ** 2 + (rows - centre_xy[1]) ** 2 / radii_xy[1] ** 2 <= 1


def synthetic_chest(left_level=0.3, right_level=0.3, seed=0):
    """Bright body in dark air, two dark lung fields either side of a bright mediastinum; rib-like stripes."""
    shape = (256, 256)
    rng = np.random.default_rng(seed)
    image = np.full(shape, 0.08)
    image[ellipse(shape, (128, 140), (118, 125))] = 0.75
    lungs = {"left": ellipse(shape, (78, 118), (38, 72)), "right": ellipse(shape, (178, 118), (38, 72))}
    image[lungs["left"]] = left_level
    image[lungs["right"]] = right_level
    ribs = (np.arange(shape[0]) // 6) % 4 == 0
    image[ribs[:, None] & (lungs["left"] | lungs["right"])] += 0.08
    image += rng.normal(0, 0.03, shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), lungs


def test_synthetic_lung_fields_match_the_known_masks():
    image, lungs = synthetic_chest()
    regions = get_expert("chest-xray-lungs").locate(image, "X-Ray", "chest", ["No Finding"])
    by_label = {r.label: r for r in regions}
    assert sorted(by_label) == ["lung field (image left)", "lung field (image right)"]
    assert dice(by_label["lung field (image left)"].mask, lungs["left"]) >= 0.8
    assert dice(by_label["lung field (image right)"].mask, lungs["right"]) >= 0.8
    assert all(r.score > 0.5 for r in regions)
    assert all(r.source == "expert:chest-xray-lungs@1.1" for r in regions)


def test_a_named_finding_adds_the_more_opaque_lung_with_a_lower_score():
    image, lungs = synthetic_chest(left_level=0.3, right_level=0.45)
    regions = get_expert("chest-xray-lungs").locate(image, "X-Ray", "chest", ["Pneumonia"])
    assert [r.label for r in regions][-1] == "Pneumonia (more opaque lung)"
    opaque = regions[-1]
    assert dice(opaque.mask, lungs["right"]) >= 0.8
    assert opaque.score < min(r.score for r in regions[:2])


def test_similar_lungs_put_the_finding_on_no_side():
    image, _ = synthetic_chest(left_level=0.3, right_level=0.3)
    regions = get_expert("chest-xray-lungs").locate(image, "X-Ray", "chest", ["Effusion"])
    assert sorted(r.label for r in regions) == ["lung field (image left)", "lung field (image right)"]


def test_devices_and_uncertain_labels_are_not_placed_on_a_side():
    image, _ = synthetic_chest(left_level=0.3, right_level=0.45)
    for labels in (["Support Devices"], ["Cardiomegaly (uncertain)"], ["no lung opacity / not normal"]):
        regions = get_expert("chest-xray-lungs").locate(image, "X-Ray", "chest", labels)
        assert not any("more opaque" in r.label for r in regions), labels


def test_an_image_without_enclosed_dark_fields_gives_nothing():
    rows = np.linspace(0, 255, 128).astype(np.uint8)
    assert get_expert("chest-xray-lungs").locate(np.tile(rows, (128, 1)), "X-Ray", "chest", []) == []


@pytest.fixture(scope="module")
def real_chest() -> np.ndarray:
    """pydicom's RG1_UNCI.dcm: a PA chest film, MONOCHROME1 (inverted), downsampled to ~512 px."""
    dataset = pydicom.dcmread(get_testdata_file("RG1_UNCI.dcm"))
    assert dataset.PhotometricInterpretation == "MONOCHROME1"
    values = dataset.pixel_array.astype(np.float64)[::4, ::4]
    low, high = np.percentile(values, [0.5, 99.5])
    return ((1.0 - np.clip((values - low) / (high - low), 0, 1)) * 255).astype(np.uint8)


def test_real_chest_radiograph_has_one_lung_field_each_side_of_the_midline(real_chest):
    height, width = real_chest.shape
    regions = get_expert("chest-xray-lungs").locate(real_chest, "X-Ray", "chest", [])
    by_label = {r.label: r.mask for r in regions}
    assert sorted(by_label) == ["lung field (image left)", "lung field (image right)"]
    left_cols = np.nonzero(by_label["lung field (image left)"])[1]
    right_cols = np.nonzero(by_label["lung field (image right)"])[1]
    assert left_cols.max() < width / 2 < right_cols.min()
    # by inspection: the lung fields span roughly x 0.1-0.43 and 0.55-0.9, y 0.1-0.75 of the film
    for cols, span in ((left_cols, (0.08, 0.45)), (right_cols, (0.53, 0.92))):
        assert span[0] * width <= np.median(cols) <= span[1] * width
    for mask in by_label.values():
        rows = np.nonzero(mask)[0]
        assert 0.05 <= mask.mean() <= 0.25 and 0.2 * height <= np.median(rows) <= 0.6 * height
        # the field is darker (more air) than the mediastinum between the lungs
        assert real_chest[mask].mean() < real_chest[:, int(0.45 * width) : int(0.55 * width)].mean()
