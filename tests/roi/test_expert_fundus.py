"""fundus-disc on a synthetic fundus photograph and on scikit-image's real retina image."""

import numpy as np
import pytest
import skimage.data

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def synthetic_fundus(seed=0):
    """A round reddish field on black with dark vessels, and a bright yellowish disc left of centre."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    field = np.hypot(rows - 128, cols - 128) <= 115
    disc = np.hypot(rows - 124, cols - 70) <= 17
    image = np.zeros(shape + (3,))
    shading = 1.0 - 0.25 * (np.hypot(rows - 128, cols - 128) / 115) ** 2  # vignetting toward the rim
    image[field] = np.array([200, 85, 45]) * shading[field][:, None]
    image[disc] = (250, 215, 150)
    for slope, offset in ((0.5, 60), (-0.4, 175), (0.05, 120)):  # three vessels crossing the disc region
        vessel = field & (np.abs(rows - (slope * (cols - 70) + offset + (124 - offset))) <= 2)
        image[vessel] = (120, 30, 20)
    image += rng.normal(0, 4, image.shape) * field[..., None]
    return np.clip(image, 0, 255).astype(np.uint8), field, disc


def test_synthetic_disc_and_field_match_the_known_masks():
    image, field, disc = synthetic_fundus()
    regions = {r.label: r for r in get_expert("fundus-disc").locate(image, "Fundus", "eye", [])}
    assert sorted(regions) == ["optic disc", "retinal field"]
    assert dice(regions["retinal field"].mask, field) >= 0.95
    assert dice(regions["optic disc"].mask, disc) >= 0.8
    assert regions["optic disc"].score > 0.4
    assert regions["retinal field"].source == "expert:fundus-disc@1.0"


def test_a_black_image_has_no_field():
    assert get_expert("fundus-disc").locate(np.zeros((64, 64, 3), np.uint8), "Fundus", None, []) == []


@pytest.fixture(scope="module")
def retina_regions():
    image = skimage.data.retina()  # 1411 x 1411 RGB, bundled with scikit-image
    return image, {r.label: r for r in get_expert("fundus-disc").locate(image, "Fundus", "eye", [])}


def test_real_retina_disc_is_where_the_disc_is(retina_regions):
    image, regions = retina_regions
    disc = regions["optic disc"].mask
    assert disc.shape == image.shape[:2]
    # By inspection of the image, the optic disc is the bright yellow round area left of centre,
    # spanning about x 110-300, y 560-760; its centre is near (x=215, y=655), radius ~95 px.
    centre_y, centre_x = np.argwhere(disc).mean(axis=0)
    assert abs(centre_x - 215) <= 50 and abs(centre_y - 655) <= 50
    assert disc[655, 215]
    assert 0.005 <= disc.mean() <= 0.03
    # the disc is brighter than the rest of the field
    gray = image.mean(axis=2)
    assert gray[disc].mean() > gray[regions["retinal field"].mask & ~disc].mean() + 20


def test_real_retina_field_is_the_lit_circle(retina_regions):
    image, regions = retina_regions
    field = regions["retinal field"].mask
    assert 0.7 <= field.mean() <= 0.85  # a circle of ~1400 px diameter in the 1411 px square
    assert image[~field].max(axis=-1).mean() < 20 and image[field].max(axis=-1).mean() > 100
