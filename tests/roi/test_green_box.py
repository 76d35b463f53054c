"""Recovering green box outlines burned into images (MedTrinity-25M's ROIs) and removing them."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.build import box_iou
from fixtures.green_boxes import (
    box_on_green_content,
    boxed_images,
    draw_boxes,
    saved,
    texture,
)
from scipy import ndimage

from medtrinity.roi.experts import get_expert
from medtrinity.roi.experts.green_box import (
    CONFIDENT_SCORE,
    RECOVERED_SOURCE,
    _frame,
    fill_across,
    find_green_boxes,
    outline_green,
    recover_green_boxes,
)


def _match(truth, found, threshold=0.9):
    """Greedy one-to-one matching at IoU >= threshold: (matched pairs, unmatched truth, unmatched found)."""
    pairs, free = [], list(range(len(found)))
    for t in truth:
        best = max(free, key=lambda i: box_iou(t, found[i]), default=None)
        if best is not None and box_iou(t, found[best]) >= threshold:
            pairs.append((t, found[best]))
            free.remove(best)
    missed = [t for t in truth if t not in [p[0] for p in pairs]]
    return pairs, missed, [found[i] for i in free]


@pytest.fixture(scope="module")
def images():
    return boxed_images(240, seed=0)


def test_recall_and_precision_on_240_images(images):
    assert len(images) >= 200
    assert {i.kind for i in images} == {"medical", "texture", "green"}
    assert {len(i.boxes) for i in images} == {0, 1, 2, 3}
    assert {w for i in images for w in i.widths} == {1, 2, 3, 4}
    assert any(i.format == "png" for i in images) and any(i.format.startswith("jpeg") for i in images)
    tp = fn = fp = 0
    for image in images:
        found = [b.bbox for b in find_green_boxes(image.pixels) if b.score >= CONFIDENT_SCORE]
        pairs, missed, extra = _match(image.boxes, found)
        tp, fn, fp = tp + len(pairs), fn + len(missed), fp + len(extra)
        if image.kind == "green":
            assert extra == [], image.name  # green image content is never taken for a box
    assert tp + fn > 250
    assert tp / (tp + fn) >= 0.98, (tp, fn)
    assert tp / (tp + fp) >= 0.98, (tp, fp)


def test_no_green_stays_within_2_px_of_a_removed_outline(images):
    checked = 0
    for image in images:
        recovery = recover_green_boxes(image.pixels)
        removed = [b.bbox for b in recovery.boxes if b.confident]
        # The base's own green (an ultrasound's green calipers) stays, and the fill next to it may take its colour.
        own_green = ndimage.binary_dilation(outline_green(image.original), iterations=3)
        still_green = outline_green(recovery.pixels) & ~own_green
        widths = dict(zip(image.boxes, image.widths))
        for truth, _ in _match(image.boxes, removed)[0]:
            near = _frame(still_green.shape, truth, 2, widths[truth] + 2)  # the outline and 2 px either side
            assert not (still_green & near).any(), image.name
            checked += 1
        if not removed:
            assert recovery.pixels is image.pixels and recovery.removed_pixels == 0
    assert checked > 250


def test_png_outlines_give_their_exact_box_and_width():
    rng = np.random.default_rng(5)
    base = texture(rng, "tissue", (150, 210))
    boxes = [(8, 10, 60, 70), (90, 30, 200, 140)]
    for width in (1, 2, 3, 4):
        drawn = saved(draw_boxes(base, boxes, [width, width]), "png")
        found = sorted(find_green_boxes(drawn), key=lambda b: b.bbox)
        assert [b.bbox for b in found] == boxes
        assert [b.width for b in found] == [width, width]
        assert all(b.score == 1.0 for b in found)
        clean = recover_green_boxes(drawn).pixels
        assert not outline_green(clean).any()


def test_an_image_without_a_box_is_left_as_it_is():
    base = saved(texture(np.random.default_rng(2), "skin", (120, 160)), "jpeg-85")
    recovery = recover_green_boxes(base)
    assert recovery.boxes == [] and recovery.pixels is base
    assert recovery.note() == "no green box outline found"
    gray = base[..., 0]
    assert find_green_boxes(gray) == []


def test_a_box_over_green_stain_is_reported_with_a_low_score_and_not_cleaned():
    image = box_on_green_content()
    found = find_green_boxes(image.pixels)
    assert found, "the outline is found where it crosses the pale tissue"
    assert all(b.score < CONFIDENT_SCORE for b in found)
    assert max(box_iou(image.boxes[0], b.bbox) for b in found) >= 0.9
    recovery = recover_green_boxes(image.pixels)
    assert recovery.pixels is image.pixels  # not separable: nothing is painted over
    assert recovery.note() == "1 low-confidence green outline left in place"


def test_linear_fill_across_a_band_is_exact_on_a_gradient():
    ramp = np.tile(np.arange(0, 200, 2, dtype=np.uint8)[:, None], (1, 50))  # rows 0, 2, 4 …
    mask = np.zeros(ramp.shape, bool)
    mask[40:44, 5:45] = True  # a horizontal band: filled along the columns
    filled = fill_across(ramp, mask)
    assert np.array_equal(filled, ramp)
    rgb = np.repeat(ramp[..., None], 3, axis=2)
    assert np.array_equal(fill_across(rgb, mask), rgb)


def test_the_expert_returns_recovered_regions():
    drawn = saved(draw_boxes(texture(np.random.default_rng(1), "gray", (100, 120)), [(10, 12, 70, 80)], [2]), "png")
    regions = get_expert("green-box").locate(drawn, "X-Ray", "chest", [])
    assert [(r.bbox, r.source, r.label, r.kind, r.score) for r in regions] == [
        ((10.0, 12.0, 70.0, 80.0), RECOVERED_SOURCE, "marked region", "region", 1.0)
    ]
    assert RECOVERED_SOURCE == "recovered:green-box@1"
    assert (
        get_expert("green-box", min_score=0.5).locate(box_on_green_content().pixels, "Histopathology", None, []) == []
    )
