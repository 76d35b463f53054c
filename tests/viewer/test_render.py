"""Overlays are drawn on a copy: inside an ROI's box the pixels change, far outside they do not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from medtrinity.roi.geometry import mask_to_rle
from medtrinity.viewer.record_page import mark_attributes
from medtrinity.viewer.render import OverlayOptions, render_overlay, render_thumbnail


def _gray_png(height=120, width=160) -> bytes:
    pixels = (np.arange(height * width).reshape(height, width) % 200).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _roi(x0, y0, x1, y1, height=120, width=160) -> dict:
    mask = np.zeros((height, width), bool)
    mask[y0 + 5 : y1 - 5, x0 + 5 : x1 - 5] = True
    return {"bbox": [x0, y0, x1, y1], "mask": mask_to_rle(mask), "label": "lesion", "source": "annotation"}


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_overlay_marks_the_box_and_nothing_far_away():
    stored = _gray_png()
    original = bytes(stored)
    rois = [_roi(20, 30, 60, 80), _roi(100, 10, 150, 50)]
    drawn = _decode(render_overlay(stored, rois))
    plain = _decode(stored)
    changed = np.any(drawn != plain, axis=2)
    assert changed[35:75, 25:55].mean() > 0.9  # the mask's translucent fill
    assert changed[30, 20:60].all() and changed[79, 20:60].all()  # the box outline, x1/y1 exclusive
    assert not changed[90:, :].any() and not changed[:, :15].any()  # far from both ROIs
    assert changed[31:45, 62:75].any()  # the label, from the box's top-left corner, may run past its right edge
    unlabelled = np.any(_decode(render_overlay(stored, rois, OverlayOptions(labels=False))) != plain, axis=2)
    assert not unlabelled[:, 60:100].any()  # between the two boxes
    assert stored == original  # the stored bytes are only read


def test_hidden_and_switched_off_layers():
    stored = _gray_png()
    rois = [_roi(20, 30, 60, 80), _roi(100, 10, 150, 50)]
    plain = _decode(stored)
    one_hidden = np.any(_decode(render_overlay(stored, rois, OverlayOptions(hidden=frozenset({0})))) != plain, axis=2)
    assert not one_hidden[:, :95].any() and one_hidden[10:50, 100:150].any()
    boxes_only = _decode(render_overlay(stored, rois, OverlayOptions(masks=False, labels=False)))
    assert (boxes_only[50, 40] == plain[50, 40]).all()  # inside the box, no fill
    assert (boxes_only[30, 40] != plain[30, 40]).any()  # the outline
    nothing = render_overlay(stored, rois, OverlayOptions(masks=False, boxes=False, labels=False))
    assert (_decode(nothing) == plain).all()


def test_thumbnail_is_small_and_outlined():
    thumb = Image.open(io.BytesIO(render_thumbnail(_gray_png(600, 800), [_roi(100, 100, 400, 300, 600, 800)])))
    assert max(thumb.size) == 192
    pixels = np.asarray(thumb.convert("RGB")).astype(int)
    assert (pixels[:, :, 0] - pixels[:, :, 1] > 100).any()  # a red outline on a gray image


def test_attributes_are_marked_where_they_occur():
    description = "This is a CT image. The liver is shown. Background: a passage [kb-1]."
    pieces = mark_attributes(
        description,
        {
            "modality": "This is a CT image.",
            "structures": "The liver is shown.",
            "roi": "worded elsewhere",
            "texture": "",
            "local_global": None,
        },
    )
    assert pieces == [
        ("This is a CT image.", "modality"),
        (" ", None),
        ("The liver is shown.", "structures"),
        (" Background: a passage [kb-1].", None),
    ]
    assert "".join(text for text, _ in pieces) == description
