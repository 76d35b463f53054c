import math

import numpy as np
import pytest

from medtrinity.errors import StageError
from medtrinity.records import HORIZONTAL_WORDS, VERTICAL_WORDS, Origin, Region, Sample, rows_to_table, sample_to_row
from medtrinity.roi.geometry import (
    area_ratio,
    bbox_of_mask,
    describe_position,
    mask_to_rle,
    rle_area,
    rle_to_mask,
    roi_from_mask,
    rois_from_region,
    rois_from_regions,
)

# ---------------------------------------------------------------- position words
BIN_CASES = [
    (0.0, 0),
    (0.1999, 0),
    (0.2, 1),
    (0.3999, 1),
    (0.4, 2),
    (0.5999, 2),
    (0.6, 3),
    (0.7999, 3),
    (0.8, 4),
    (0.9999, 4),
    (1.0, 4),
]


@pytest.mark.parametrize(("value", "index"), BIN_CASES)
def test_position_bins_at_and_around_every_edge(value, index):
    position = describe_position(value, value)
    assert position.horizontal == HORIZONTAL_WORDS[index]
    assert position.vertical == VERTICAL_WORDS[index]


def test_position_axes_are_independent():
    position = describe_position(0.2, 0.95)
    assert (position.horizontal, position.vertical) == ("left-center", "bottom")
    position = describe_position(0.05, 0.5)
    assert (position.horizontal, position.vertical) == ("left", "middle")


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_position_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match="must lie in"):
        describe_position(bad, 0.5)


# ---------------------------------------------------------------- area ratio
@pytest.mark.parametrize(
    ("count", "width", "height", "expected"),
    [
        (100, 100, 100, 1.0),  # 10x10 in 100x100
        (1, 3, 3, 11.1),  # 11.111...
        (2, 3, 3, 22.2),
        (0, 10, 10, 0.0),
        (100, 10, 10, 100.0),
        (1, 2000, 1, 0.1),  # exactly 0.05 %: half away from zero
        (3, 2000, 1, 0.2),  # exactly 0.15 % (float round(0.15, 1) would give 0.1)
        (1, 4000, 1, 0.0),  # 0.025 %
        (3990, 100, 200, 20.0),  # exactly 19.95 %
        (2, 3, 1, 66.7),
    ],
)
def test_area_ratio_exact_values(count, width, height, expected):
    assert area_ratio(count, width, height) == expected


@pytest.mark.parametrize(
    ("count", "width", "height", "message"),
    [
        (-1, 3, 3, r"^pixel count -1 is outside 0..9 for a 3x3 image$"),
        (10, 3, 3, r"^pixel count 10 is outside 0..9 for a 3x3 image$"),
        (1, 0, 3, r"^image size must be positive, got 0x3$"),
    ],
)
def test_area_ratio_rejects_impossible_counts(count, width, height, message):
    with pytest.raises(ValueError, match=message):
        area_ratio(count, width, height)


# ---------------------------------------------------------------- RLE
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (23, 1), (31, 47), (64, 64)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_rle_round_trip_on_random_masks(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    mask = rng.random(shape) < density
    rle = mask_to_rle(mask)
    assert rle["size"] == [shape[0], shape[1]]
    assert isinstance(rle["counts"], str)
    assert all(type(v) is int for v in rle["size"])
    decoded = rle_to_mask(rle)
    assert decoded.dtype == bool
    np.testing.assert_array_equal(decoded, mask)
    assert rle_area(rle) == int(mask.sum())


def test_rle_accepts_uint8_255_masks():
    mask = np.zeros((4, 5), dtype=np.uint8)
    mask[1:3, 2:4] = 255
    np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask)), mask > 0)


def test_rle_is_column_major_coco_and_reads_uncompressed_counts():
    # COCO counts run column by column, starting with background: 1 off, 2 on, 3 off.
    mask = rle_to_mask({"size": [2, 3], "counts": [1, 2, 3]})
    np.testing.assert_array_equal(mask, [[False, True, False], [True, False, False]])
    assert rle_area({"size": [2, 3], "counts": [1, 2, 3]}) == 2
    # The compressed form of the same mask decodes identically.
    np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask)), mask)


def test_mask_to_rle_rejects_non_2d():
    with pytest.raises(ValueError, match="2D"):
        mask_to_rle(np.zeros((2, 2, 2), dtype=bool))


# ---------------------------------------------------------------- bbox and single ROI
def test_bbox_is_exclusive_single_pixel():
    mask = np.zeros((10, 10), dtype=bool)
    mask[5, 3] = True  # x = 3, y = 5
    assert bbox_of_mask(mask) == [3, 5, 4, 6]


def test_bbox_of_rectangle_and_of_empty_mask():
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:7, 10:30] = True
    assert bbox_of_mask(mask) == [10, 2, 30, 7]
    with pytest.raises(ValueError, match="empty"):
        bbox_of_mask(np.zeros((3, 3), dtype=bool))


def test_roi_from_mask_fields():
    mask = np.zeros((100, 100), dtype=bool)
    mask[60:70, 10:30] = True  # centre x = 20/100 = 0.2, y = 65/100
    roi = roi_from_mask(mask, "polyp", source="expert:foo@1", score=0.75)
    assert roi.bbox == [10, 60, 30, 70]
    assert (roi.position.horizontal, roi.position.vertical) == ("left-center", "lower-middle")
    assert roi.area_ratio == 2.0
    assert (roi.label, roi.source, roi.score) == ("polyp", "expert:foo@1", 0.75)
    np.testing.assert_array_equal(rle_to_mask(roi.mask), mask)


def test_roi_from_empty_mask_is_a_stage_error():
    with pytest.raises(StageError, match="'x' is empty"):
        roi_from_mask(np.zeros((4, 4), dtype=bool), "x")


# ---------------------------------------------------------------- regions
def _blank(height=40, width=60):
    return np.zeros((height, width), dtype=bool)


def test_two_blobs_give_two_rois_largest_first():
    mask = _blank()
    mask[2:5, 40:44] = True  # 12 px, top right
    mask[20:30, 5:15] = True  # 100 px, lower left
    rois = rois_from_region(Region(label="lesion", mask=mask, score=0.5), 60, 40)
    assert [roi.bbox for roi in rois] == [[5, 20, 15, 30], [40, 2, 44, 5]]
    assert [rle_area(roi.mask) for roi in rois] == [100, 12]
    assert [roi.area_ratio for roi in rois] == [area_ratio(100, 60, 40), area_ratio(12, 60, 40)]
    assert rois[0].position.horizontal == "left"  # cx = 10/60
    assert rois[1].position.vertical == "top"  # cy = 3.5/40
    assert all((roi.label, roi.source, roi.score) == ("lesion", "annotation", 0.5) for roi in rois)
    # Each ROI's mask holds its own component only.
    first = rle_to_mask(rois[0].mask)
    assert first.sum() == 100 and not first[2:5, 40:44].any()


def test_diagonal_neighbours_are_one_component():
    mask = _blank(10, 10)
    for i in range(5):
        mask[i, i] = True
    mask[5:8, 5:8] = True
    rois = rois_from_region(Region(label="a", mask=mask), 10, 10)
    assert len(rois) == 1 and rois[0].bbox == [0, 0, 8, 8]


def test_equal_areas_are_ordered_top_to_bottom_then_left_to_right():
    mask = _blank()
    mask[30:33, 30:33] = True
    mask[5:8, 50:53] = True
    mask[5:8, 10:13] = True
    rois = rois_from_region(Region(label="a", mask=mask), 60, 40)
    assert [roi.bbox[:2] for roi in rois] == [[10, 5], [50, 5], [30, 30]]


def test_small_components_are_dropped_unless_all_are_small():
    mask = _blank()
    mask[10:20, 10:20] = True
    mask[0, 0] = mask[39, 59] = True  # JPEG speckle
    mask[30:32, 40:44] = True  # 8 px: below the default 9
    rois = rois_from_region(Region(label="a", mask=mask), 60, 40)
    assert [roi.bbox for roi in rois] == [[10, 10, 20, 20]]

    tiny = _blank()
    tiny[0, 0] = True
    tiny[30:32, 40:43] = True  # 6 px: the largest of the small ones survives
    rois = rois_from_region(Region(label="a", mask=tiny), 60, 40)
    assert [roi.bbox for roi in rois] == [[40, 30, 43, 32]]
    assert len(rois_from_region(Region(label="a", mask=tiny), 60, 40, min_component_pixels=1)) == 2


def test_empty_mask_region_gives_no_roi():
    assert rois_from_region(Region(label="a", mask=_blank()), 60, 40) == []


def test_mask_of_the_wrong_size_is_a_stage_error():
    with pytest.raises(StageError, match=r"mask of 'liver' is 50x40 but image is 60x40"):
        rois_from_region(Region(label="liver", mask=np.ones((40, 50), dtype=bool)), 60, 40)
    with pytest.raises(StageError, match="2D"):
        rois_from_region(Region(label="liver", mask=np.ones((40, 60, 3), dtype=bool)), 60, 40)


def test_box_is_rounded_outward_and_clipped():
    region = Region(label="nodule", source="annotation", bbox=(-5.5, 10.2, 20.7, 300.0), score=0.9)
    (roi,) = rois_from_region(region, 100, 200)
    assert roi.bbox == [0, 10, 21, 200]
    assert roi.mask is None
    assert roi.area_ratio == 20.0  # 21 * 190 / 20000 = 19.95 %
    assert (roi.position.horizontal, roi.position.vertical) == ("left", "middle")  # 0.105, 0.525
    assert (roi.label, roi.source, roi.score) == ("nodule", "annotation", 0.9)


def test_box_inside_the_image_keeps_its_integer_coordinates():
    (roi,) = rois_from_region(Region(label="a", bbox=(40, 40, 60, 80)), 100, 100)
    assert roi.bbox == [40, 40, 60, 80]
    assert (roi.position.horizontal, roi.position.vertical) == ("center", "lower-middle")  # 0.5, 0.6
    assert roi.area_ratio == 8.0


@pytest.mark.parametrize(
    "box", [(120, 10, 150, 20), (-30, -30, -1, -1), (10, 10, 10, 50), (30, 10, 20, 50), (10, 200, 20, 250)]
)
def test_box_without_area_in_the_image_is_a_stage_error(box):
    with pytest.raises(StageError, match=r"box \[.*\] of 'a' has no area inside the 100x200 image"):
        rois_from_region(Region(label="a", bbox=box), 100, 200)


def test_non_finite_box_and_empty_region_are_stage_errors():
    with pytest.raises(StageError, match="finite"):
        rois_from_region(Region(label="a", bbox=(0, 0, math.inf, 5)), 10, 10)
    with pytest.raises(StageError, match="neither a mask nor a box"):
        rois_from_region(Region(label="a"), 10, 10)
    with pytest.raises(StageError, match="0x10"):
        rois_from_region(Region(label="a", bbox=(0, 0, 1, 1)), 0, 10)


def test_mask_wins_over_box_when_a_region_has_both():
    mask = _blank(10, 10)
    mask[2:4, 2:4] = True
    (roi,) = rois_from_region(Region(label="a", mask=mask, bbox=(0, 0, 10, 10)), 10, 10, min_component_pixels=1)
    assert roi.bbox == [2, 2, 4, 4] and roi.mask is not None


def test_rois_from_regions_keeps_region_order_and_fits_the_arrow_schema():
    mask = _blank()
    mask[1:4, 1:4] = True
    regions = [Region(label="box", bbox=(10, 10, 20, 20), score=0.25), Region(label="mask", mask=mask)]
    rois = rois_from_regions(regions, 60, 40)
    assert [roi.label for roi in rois] == ["box", "mask"]
    sample = Sample(id="x", source="s", origin=Origin(file="a.png"), modality="CT", width=60, height=40, rois=rois)
    sample.image_bytes = b"\x89PNG"
    table = rows_to_table([sample_to_row(sample)])
    stored = table.column("rois").to_pylist()[0]
    assert stored[0]["bbox"] == [10, 10, 20, 20] and stored[0]["mask"] is None
    np.testing.assert_array_equal(rle_to_mask(stored[1]["mask"]), mask)


# ---------------------------------------------------------------- edges the tests above leave open (mutation testing)
def test_position_errors_name_the_axis_and_the_value():
    with pytest.raises(ValueError, match=r"^normalised horizontal centre must lie in \[0, 1\], got 1.5$"):
        describe_position(1.5, 0.5)
    with pytest.raises(ValueError, match=r"^normalised vertical centre must lie in \[0, 1\], got -0.25$"):
        describe_position(0.5, -0.25)


@pytest.mark.parametrize(("width", "height"), [(0, 3), (3, 0), (-2, 3)])
def test_area_ratio_rejects_an_empty_image_by_its_size(width, height):
    with pytest.raises(ValueError, match=rf"^image size must be positive, got {width}x{height}$"):
        area_ratio(0, width, height)


def test_area_ratio_names_the_impossible_count_and_accepts_a_one_pixel_image():
    with pytest.raises(ValueError, match=r"^pixel count 10 is outside 0..9 for a 3x3 image$"):
        area_ratio(10, 3, 3)
    assert area_ratio(1, 1, 1) == 100.0
    assert area_ratio(0, 1, 1) == 0.0


def test_rle_of_a_wide_integer_mask_treats_every_non_zero_value_as_foreground():
    # 256 in a uint16 mask is foreground; a cast through float to uint8 would wrap it to 0.
    mask = np.zeros((3, 4), dtype=np.uint16)
    mask[1, 1:3] = 256
    np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask)), mask > 0)
    assert rle_area(mask_to_rle(mask)) == 2


def test_rle_decoding_shows_no_numpy_deprecation_warning():
    import warnings

    rle = mask_to_rle(np.eye(5, dtype=bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pycocotools' NumPy 2 notice would be raised here if it escaped
        decoded = rle_to_mask(rle)
    np.testing.assert_array_equal(decoded, np.eye(5, dtype=bool))


def test_empty_mask_message_is_exact():
    with pytest.raises(ValueError, match=r"^an empty mask has no bounding box$"):
        bbox_of_mask(np.zeros((2, 2), dtype=np.uint8))


def test_roi_from_a_255_mask_counts_pixels_not_intensities():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[0:2, 0:5] = 255  # 10 pixels
    roi = roi_from_mask(mask, "lesion")
    assert roi.area_ratio == 10.0
    assert roi.source == "annotation" and roi.score is None
    assert roi.bbox == [0, 0, 5, 2]


def test_roi_from_a_3d_mask_names_the_label_and_the_shape():
    with pytest.raises(StageError, match=r"^mask of 'x' must be 2D, got shape \(2, 2, 2\)$"):
        roi_from_mask(np.ones((2, 2, 2), dtype=bool), "x")


def test_equal_areas_on_one_row_are_ordered_left_to_right_not_by_their_bottom():
    mask = _blank()
    mask[5:11, 10:12] = True  # 12 px, tall: bottom at 11
    mask[5:7, 40:46] = True  # 12 px, flat: bottom at 7
    rois = rois_from_region(Region(label="a", mask=mask), 60, 40)
    assert [roi.bbox for roi in rois] == [[10, 5, 12, 11], [40, 5, 46, 7]]


def test_box_clipped_at_the_top_and_left_edges_keeps_row_and_column_zero():
    (roi,) = rois_from_region(Region(label="a", bbox=(-4.0, -3.0, 10.0, 10.0)), 100, 100)
    assert roi.bbox == [0, 0, 10, 10]
    assert roi.area_ratio == 1.0
    (roi,) = rois_from_region(Region(label="a", bbox=(0, 0, 1, 1)), 1, 1)  # a one-pixel image is an image
    assert roi.bbox == [0, 0, 1, 1] and roi.area_ratio == 100.0


def test_box_messages_show_the_box_as_given():
    with pytest.raises(StageError, match=r"^box \[120, 10, 150, 20\] of 'a' has no area inside the 100x200 image$"):
        rois_from_region(Region(label="a", bbox=(120, 10, 150, 20)), 100, 200)
    with pytest.raises(StageError, match=r"^box \('x', 1, 2, 3\) of 'a' is not four numbers$"):
        rois_from_region(Region(label="a", bbox=("x", 1, 2, 3)), 100, 200)
    with pytest.raises(StageError, match=r"^box \[0, 0, 5\] of 'a' is not four finite numbers$"):
        rois_from_region(Region(label="a", bbox=(0, 0, 5)), 100, 200)


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-1, 10)])
def test_an_image_without_pixels_takes_no_roi(width, height):
    with pytest.raises(StageError, match=rf"^image is {width}x{height}: no ROI can be placed on an empty image$"):
        rois_from_region(Region(label="a", bbox=(0, 0, 1, 1)), width, height)


def test_rois_from_regions_passes_the_minimum_component_size_on():
    mask = _blank()
    mask[0, 0] = True
    mask[30:32, 40:43] = True  # 6 px
    region = Region(label="a", mask=mask)
    assert [roi.bbox for roi in rois_from_regions([region], 60, 40)] == [[40, 30, 43, 32]]
    assert [roi.bbox for roi in rois_from_regions([region], 60, 40, min_component_pixels=1)] == [
        [40, 30, 43, 32],
        [0, 0, 1, 1],
    ]
