import math

import numpy as np
import pytest
from scipy import ndimage

from medtrinity.errors import StageError
from medtrinity.records import Region
from medtrinity.roi import measure
from medtrinity.roi.geometry import rois_from_region
from medtrinity.roi.measure import (
    brightness_word,
    colour_overlay,
    dark_margin,
    default_ring_width,
    homogeneity_word,
    margin_word,
    mask_for_roi,
    measure_region,
    read_texture,
    ring_mask,
    to_gray,
)

SIZE = 96


def _disc(radius: float, cx: float = SIZE / 2, cy: float = SIZE / 2, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def _image(values: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(values + rng.normal(0.0, noise, values.shape), 0, 255).round().astype(np.uint8)


# ---------------------------------------------------------------- gray
def test_to_gray_uses_bt601_luminance_and_keeps_gray():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1, :] = 200
    gray = to_gray(rgb)
    assert gray.dtype == np.float32 and gray.shape == (2, 3)
    np.testing.assert_allclose(gray[0], [76.245, 149.685, 29.07], rtol=1e-5)
    np.testing.assert_allclose(gray[1], 200.0, rtol=1e-5)
    plain = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(to_gray(plain), plain.astype(np.float32))
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 7, dtype=np.uint8)], axis=2)
    np.testing.assert_array_equal(to_gray(rgba), gray)


def test_to_gray_rejects_other_shapes():
    with pytest.raises(StageError, match="HxW gray or HxWx3"):
        to_gray(np.zeros((4, 4, 2), dtype=np.uint8))


# ---------------------------------------------------------------- brightness and margin
def test_bright_sharp_disc_on_dark_noisy_background():
    mask = _disc(20)
    pixels = _image(np.where(mask, 200.0, 50.0), noise=10, seed=1)
    stats = measure_region(pixels, mask)
    assert stats.pixels_inside == int(mask.sum())
    assert stats.has_surroundings
    assert abs(stats.mean_inside - 200) < 2 and abs(stats.mean_around - 50) < 2
    assert 8 < stats.std_inside < 12 and 8 < stats.std_around < 12
    assert stats.contrast > 10
    assert stats.edge_sharpness > 2 * measure.SHARP_MARGIN_RATIO
    assert brightness_word(stats) == "brighter"
    assert margin_word(stats) == "sharp"
    assert homogeneity_word(stats) == "homogeneous"


def test_blurred_disc_has_an_ill_defined_margin():
    mask = _disc(20)
    blurred = ndimage.gaussian_filter(np.where(mask, 200.0, 50.0), sigma=5)
    stats = measure_region(_image(blurred, noise=10, seed=2), mask)
    assert brightness_word(stats) == "brighter"
    assert stats.edge_sharpness < measure.SHARP_MARGIN_RATIO
    assert margin_word(stats) == "ill-defined"
    # The blur ramp sits on the boundary band, so it is not read as internal texture.
    assert homogeneity_word(stats) == "homogeneous"


def test_sharp_margin_survives_a_contour_drawn_two_pixels_off():
    mask = _disc(20)
    pixels = _image(np.where(mask, 200.0, 50.0), noise=10, seed=3)
    shifted = np.roll(mask, 2, axis=1)
    assert margin_word(measure_region(pixels, shifted)) == "sharp"


def test_dark_region_in_bright_tissue_is_darker_and_homogeneous():
    mask = _disc(12, cx=30, cy=60)
    pixels = _image(np.where(mask, 40.0, 150.0), noise=10, seed=4)
    stats = measure_region(pixels, mask)
    assert stats.contrast < -5
    assert brightness_word(stats) == "darker"
    # std 10 at level 40 would be a CV of 0.25; measured against the brighter tissue it is noise.
    assert homogeneity_word(stats) == "homogeneous"


def test_region_like_its_surroundings_is_similar_with_no_margin():
    mask = _disc(15)
    pixels = _image(np.full((SIZE, SIZE), 120.0), noise=12, seed=5)
    stats = measure_region(pixels, mask)
    assert brightness_word(stats) == "similar"
    assert 0.7 < stats.edge_sharpness < 1.4
    assert margin_word(stats) == "ill-defined"


def test_small_but_significant_difference_below_visibility_is_similar():
    mask = _disc(15)
    pixels = np.where(mask, 103, 100).astype(np.uint8)  # flat: contrast 3 "std" but only 3 gray levels
    stats = measure_region(pixels, mask)
    assert stats.contrast == pytest.approx(3.0)
    assert brightness_word(stats) == "similar"


# ---------------------------------------------------------------- texture
def test_checkerboard_texture_is_heterogeneous_and_flat_noise_is_not():
    mask = _disc(25)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    checker = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 100.0, 220.0)
    textured = _image(np.where(mask, checker, 60.0), noise=3, seed=6)
    flat = _image(np.where(mask, 160.0, 60.0), noise=3, seed=6)
    rough, smooth = measure_region(textured, mask), measure_region(flat, mask)
    assert rough.heterogeneity > 2 * measure.HETEROGENEITY_THRESHOLD
    assert smooth.heterogeneity < measure.HETEROGENEITY_THRESHOLD / 3
    assert homogeneity_word(rough) == "heterogeneous"
    assert homogeneity_word(smooth) == "homogeneous"
    assert rough.std_inside > 50 > smooth.std_inside


# ---------------------------------------------------------------- ring geometry and edge cases
def test_ring_is_euclidean_and_clipped_to_the_image():
    pixels = np.zeros((30, 30), dtype=np.uint8)
    square = np.zeros((30, 30), dtype=bool)
    square[10:20, 10:20] = True
    assert measure_region(pixels, square, ring_width=1).pixels_around == 40  # 4-neighbours only
    assert measure_region(pixels, square, ring_width=2).pixels_around == 84  # + the 4 diagonal corners
    corner = np.zeros((30, 30), dtype=bool)
    corner[:10, :10] = True
    assert measure_region(pixels, corner, ring_width=1).pixels_around == 20


def test_default_ring_width():
    assert default_ring_width(1) == measure.MIN_RING_WIDTH
    assert default_ring_width(10_000) == 25
    square = np.zeros((80, 80), dtype=bool)
    square[30:50, 30:50] = True  # 400 px -> default width 5 -> 4*20*5 + 4 * (corner pixels within 5)
    corners = sum(1 for dx in range(1, 6) for dy in range(1, 6) if dx * dx + dy * dy <= 25)
    stats = measure_region(np.zeros((80, 80), dtype=np.uint8), square)
    assert stats.pixels_around == 4 * 20 * 5 + 4 * corners


def test_roi_covering_the_image_has_no_surroundings():
    pixels = _image(np.full((20, 24), 100.0), noise=5, seed=7)
    stats = measure_region(pixels, np.ones((20, 24), dtype=bool))
    assert not stats.has_surroundings and stats.pixels_around == 0
    assert math.isnan(stats.mean_around) and math.isnan(stats.contrast) and math.isnan(stats.edge_sharpness)
    assert brightness_word(stats) is None and margin_word(stats) is None
    assert homogeneity_word(stats) == "homogeneous"
    assert stats.mean_inside == pytest.approx(float(pixels.mean()))


def test_rgb_pixels_are_measured_as_luminance():
    mask = _disc(10)
    gray = _image(np.where(mask, 180.0, 40.0), noise=5, seed=8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    a, b = measure_region(gray, mask), measure_region(rgb, mask)
    assert a.mean_inside == pytest.approx(b.mean_inside, rel=1e-5)
    assert a.edge_sharpness == pytest.approx(b.edge_sharpness, rel=1e-4)


def test_bad_masks_are_stage_errors():
    pixels = np.zeros((10, 12), dtype=np.uint8)
    with pytest.raises(StageError, match="ROI mask is 10x12 but image is 12x10"):
        measure_region(pixels, np.ones((12, 10), dtype=bool))
    with pytest.raises(StageError, match="empty"):
        measure_region(pixels, np.zeros((10, 12), dtype=bool))
    with pytest.raises(ValueError, match="ring_width"):
        measure_region(pixels, np.ones((10, 12), dtype=bool), ring_width=0)


# ---------------------------------------------------------------- masks of ROIs
def test_mask_for_roi_decodes_rle_or_fills_the_box():
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:9, 10:20] = True
    (from_mask,) = rois_from_region(Region(label="a", mask=mask), 40, 30)
    np.testing.assert_array_equal(mask_for_roi(from_mask, 30, 40), mask)
    (from_box,) = rois_from_region(Region(label="b", bbox=(35.5, 20, 60, 25)), 40, 30)
    filled = mask_for_roi(from_box, 30, 40)
    assert filled.sum() == 5 * 5 and filled[20:25, 35:40].all()
    with pytest.raises(StageError, match="is 40x30 but image is 50x30"):
        mask_for_roi(from_mask, 30, 50)


# ---------------------------------------------------------------- what a description quotes
def _stats(**values) -> measure.RegionStats:
    base = {
        "mean_inside": 100.0,
        "mean_around": 100.0,
        "std_inside": 5.0,
        "std_around": 5.0,
        "contrast": 0.0,
        "heterogeneity": 0.05,
        "edge_sharpness": 1.0,
        "pixels_inside": 400,
        "pixels_around": 400,
        "has_surroundings": True,
        "std_core": 5.0,
        "reference_level": 100.0,
    }
    return measure.RegionStats(**(base | values))


def test_heterogeneity_parts_are_kept_and_divide_to_it():
    mask = _disc(20)
    stats = measure_region(_image(np.where(mask, 200.0, 50.0), noise=10, seed=1), mask)
    assert stats.reference_level == pytest.approx(stats.mean_inside)  # the brighter side
    assert stats.heterogeneity == pytest.approx(stats.std_core / stats.reference_level)
    assert 8 < stats.std_core < 12


def test_reading_rounds_as_printed_and_derives_each_word_from_the_printed_number():
    # 0.1496 prints as 0.15: the word follows the printed number, so a reader can re-derive it.
    reading = read_texture(_stats(heterogeneity=0.1496, std_core=15.2, reference_level=101.6))
    assert (reading.heterogeneity, reading.homogeneity) == (0.15, "heterogeneous")
    assert (reading.std_core, reading.reference_level) == (15, 102)
    assert read_texture(_stats(heterogeneity=0.1449)).homogeneity == "homogeneous"
    # contrast 0.46 prints as 0.5, the medium-effect threshold: brighter, since 110 vs 100 is visible.
    brighter = read_texture(_stats(mean_inside=110.2, mean_around=99.9, contrast=0.46))
    assert (brighter.mean_inside, brighter.mean_around, brighter.contrast, brighter.brightness) == (
        110,
        100,
        0.5,
        "brighter",
    )
    # 104.6 vs 100.4 prints as 105 vs 100: a difference of 5 printed, so not "similar".
    assert read_texture(_stats(mean_inside=104.6, mean_around=100.4, contrast=2.0)).brightness == "brighter"
    assert read_texture(_stats(mean_inside=104.4, mean_around=100.4, contrast=2.0)).brightness == "similar"
    assert read_texture(_stats(edge_sharpness=2.46)).margin == "sharp"  # prints as 2.5
    assert read_texture(_stats(edge_sharpness=2.44)).margin == "ill-defined"


def test_small_regions_are_not_read_and_small_rings_are_not_compared():
    assert read_texture(_stats(pixels_inside=measure.MIN_TEXTURE_PIXELS - 1)) is None
    assert read_texture(_stats(pixels_inside=measure.MIN_TEXTURE_PIXELS)) is not None
    lonely = read_texture(_stats(pixels_around=measure.MIN_RING_PIXELS - 1))
    assert not lonely.compared and lonely.brightness is None and lonely.margin is None
    assert lonely.homogeneity == "homogeneous"
    whole = read_texture(measure_region(np.full((20, 24), 90, dtype=np.uint8), np.ones((20, 24), dtype=bool)))
    assert not whole.compared and whole.reference_level == 90


def test_ring_mask_is_the_ring_measure_region_uses():
    square = np.zeros((40, 40), dtype=bool)
    square[10:20, 10:20] = True
    assert int(ring_mask(square, ring_width=2).sum()) == 84
    assert int(ring_mask(square).sum()) == measure_region(np.zeros((40, 40), dtype=np.uint8), square).pixels_around
    assert not ring_mask(np.ones((5, 5), dtype=bool)).any()


def test_dark_margin_is_dark_and_connected_to_the_border():
    pixels = np.full((30, 30), 120, dtype=np.uint8)
    pixels[:, :5] = 0  # screen margin on the left
    pixels[12:18, 12:18] = 3  # an anechoic cyst inside tissue
    margin = dark_margin(pixels)
    assert margin[:, :5].all() and int(margin.sum()) == 150
    assert not margin[12:18, 12:18].any()


def test_colour_overlay_finds_saturated_pixels_only():
    rgb = np.full((10, 10, 3), 128, dtype=np.uint8)
    rgb[2:4, 2:4] = (200, 40, 40)  # Doppler red
    rgb[6, 6] = (150, 120, 110)  # a warm gray tint is not an overlay
    overlay = colour_overlay(rgb)
    assert int(overlay.sum()) == 4 and overlay[2:4, 2:4].all()
    assert not colour_overlay(np.zeros((4, 4), dtype=np.uint8)).any()
