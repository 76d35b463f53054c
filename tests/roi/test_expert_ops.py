"""The image operations the built-in experts share."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import disk

from medtrinity.roi.experts import ops


@pytest.mark.parametrize("radius", [2, 6, 11])
def test_disk_closing_equals_scipy_closing_with_a_disk(radius):
    rng = np.random.default_rng(radius)
    mask = ndimage.gaussian_filter(rng.random((90, 120)), 3) > 0.52
    mask[:3], mask[:, :3] = True, False  # a region on the frame: outside the frame stays background
    pad = radius + 1
    expected = ndimage.binary_closing(np.pad(mask, pad), structure=disk(radius))[pad:-pad, pad:-pad]
    assert np.array_equal(ops.disk_closing(mask, radius), expected)


def test_downscale_and_upscale_round_trip_the_shape():
    image = np.zeros((1000, 600, 3), np.uint8)
    image[200:800, 100:500] = 200
    small = ops.downscale(image, 512)
    assert small.shape == (512, 307, 3) and small.dtype == np.uint8
    mask = ops.upscale_mask(small[..., 0] > 100, image.shape)
    assert mask.shape == (1000, 600)
    assert abs(int(mask.sum()) - 600 * 400) < 0.02 * 600 * 400


def test_contrast_score_is_cnr_over_one_plus_cnr():
    image = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    inside = np.array([1, 1, 0, 0, 0, 0], bool)
    outside = np.array([0, 0, 0, 0, 1, 1], bool)
    assert ops.contrast_score(image, inside, outside) == pytest.approx(0.5 / 1e-6 / (1 + 0.5 / 1e-6))
    noisy = np.array([0.0, 1.0, 0.0, 1.0])
    assert ops.contrast_score(noisy, np.array([1, 1, 0, 0], bool), np.array([0, 0, 1, 1], bool)) == 0.0


def test_small_parts_and_small_holes():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5, 5] = False  # a 1-pixel hole
    mask[16:18, 16:18] = True  # a 4-pixel speck
    kept = ops.drop_small(mask, 5)
    assert not kept[16:18, 16:18].any() and kept[2:12, 2:12].sum() == 99
    assert ops.fill_small_holes(kept, 2)[5, 5]
    assert ops.circularity(np.hypot(*np.mgrid[-30:31, -30:31]) <= 25) > 0.9
