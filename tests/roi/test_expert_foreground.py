"""foreground: the imaged body or object, not air, collimator or screen margins, burned-in text or graphics.

Two kinds of case: the demo's real images the expert is used on (what the mask must and must not cover,
measured on the image by eye and stated here), and drawn images whose object is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from medtrinity.roi.experts import get_expert
from medtrinity.sources.imaging import read_image
from medtrinity.sources.layouts.demo import DEMO_IMAGES, package_dir


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def only_region(pixels: np.ndarray, modality: str, organ: str | None = None):
    regions = get_expert("foreground").locate(pixels, modality, organ, [])
    assert len(regions) == 1
    return regions[0]


def demo_image(file: str, frame: int | None = None) -> tuple[np.ndarray, str, str | None]:
    """The pixels, modality and organ of a demo image, read exactly as the demo reads it."""
    (item,) = [d for d in DEMO_IMAGES if d.file.endswith("/" + file) and d.frame == frame]
    data = read_image(package_dir(item.package) / item.file, frame=item.frame, window=item.window)
    return data.pixels, item.modality or data.modality_hint, item.organ


def demo_mask(file: str, frame: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    pixels, modality, organ = demo_image(file, frame)
    region = only_region(pixels, modality, organ)
    assert region.mask.shape == pixels.shape[:2] and region.mask.any()
    return pixels, region.mask


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def assert_box_near(mask: np.ndarray, expected: tuple[int, int, int, int], tolerance: int) -> None:
    box = box_of(mask)
    assert all(abs(got - want) <= tolerance for got, want in zip(box, expected)), (box, expected)


# ---------------------------------------------------------------- the demo's images
# Demo images the expert is used on (their own expert finds nothing, or there is none for the modality);
# test_every_demo_image_the_expert_outlines_is_checked_here keeps this list honest.
CHECKED_DEMO_FILES = {
    "RG3_UNCI.dcm",
    "gdcm-US-ALOKA-16.dcm",
    "MR2_UNCI.dcm",
    "MR_small.dcm",
    "color-pl.dcm",
    "examples_ybr_color.dcm",
    "JPEG2000_UNC.dcm",
}


def test_tibia_film_outlines_the_leg_not_the_air_beside_it():
    # RG3_UNCI, after the MONOCHROME1 inversion: white collimator left of x 440 and right of x 1250; inside the
    # field black air strips, the left one at every height between x 440 and the skin; the leg, brighter,
    # runs from top to bottom between x ~540 (skin at the ankle) and ~1210 (skin at the top); a burned-in
    # "R" on a dark plate sits in the right air strip at x 1145-1220, rows 1390-1465 (all measured by eye).
    pixels, mask = demo_mask("RG3_UNCI.dcm")
    air = pixels[:, 460:520]
    assert air.mean() < 40  # what the left strip is: air, black on this display
    assert pixels[mask].mean() > air.mean() + 100  # the outline holds the leg, far brighter than the air
    assert not mask[:, :530].any()  # never reaches the air-side strip or the collimator beyond it
    assert not mask[:, 1240:].any()  # nor the right collimator
    assert not mask[1390:1465, 1145:1220].any()  # nor the side marker
    assert_box_near(mask, (540, 0, 1210, 1760), tolerance=25)


def test_pelvis_ultrasound_outlines_the_scan_not_the_screen():
    # gdcm-US-ALOKA-16: two scan views side by side fill x 32-640, rows 24-416, each with a curved top edge
    # (a convex probe: the top corners are margin with text, "127/128 20Hz"); above row 24 a slate panel
    # with text and grey bars, below row 422 a text row and a slate panel; left of x 32 the black margin with
    # green depth ticks. The bladder (x 80-220, rows 100-180) is anechoic: as black as the margin.
    pixels, mask = demo_mask("gdcm-US-ALOKA-16.dcm")
    assert not mask[:20].any()  # the top text band and its bars
    assert not mask[422:].any()  # the bottom text row and panel
    assert not mask[:, :26].any()  # the black margin and its ticks
    assert mask[200:400, 40:630].all()  # the scan views: their deep part across both, ...
    assert mask[120:200, 60:620].all()  # ... and higher up, inside the curved top edges (convex probe)
    assert pixels[100:180, 80:220].mean() < 8  # the bladder is black like the margin ...
    assert mask[100:180, 80:220].all()  # ... and is inside the scan all the same


def test_shoulder_mri_outlines_the_shoulder_with_its_dim_muscle():
    # MR2_UNCI: black air above and left of the skin (e.g. x 20-200, rows 100-300), a black band below row
    # ~925; the shoulder, its skin line from (120, 920) up to (1018, 150), holds bright fat and marrow and dim
    # muscle (e.g. x 700-900, rows 600-800). Measured by eye.
    pixels, mask = demo_mask("MR2_UNCI.dcm")
    assert pixels[100:300, 20:200].mean() < 10  # air
    assert not mask[100:300, 20:200].any()
    assert not mask[935:].any()  # the black band at the bottom
    assert pixels[600:800, 700:900].mean() < 60  # muscle: dim, far below Otsu's threshold ...
    assert mask[600:800, 700:900].mean() > 0.98  # ... but body all the same
    assert_box_near(mask, (120, 150, 1018, 920), tolerance=25)


def test_mr_small_is_tissue_to_every_edge_so_nothing_is_outlined():
    # MR_small is a crop inside the body: no pixel is air (the darkest is grey 52 of 255), so there is no
    # body outline to give, and a bright patch is not "the foreground".
    pixels, modality, organ = demo_image("MR_small.dcm")
    assert pixels.min() >= 50
    assert get_expert("foreground").locate(pixels, modality, organ, []) == []


def test_colour_doppler_sector_excludes_the_grey_screen_margin():
    # color-pl: the screen margin is a flat grey 40 (not black) in the two upper corners beside the sector;
    # the sector's own dark areas are darker still (grey 16-24); colour Doppler fills parts of the sector.
    pixels, mask = demo_mask("color-pl.dcm")
    for corner in (np.s_[0:30, 0:40], np.s_[0:15, 215:256]):  # margin corners, by eye
        assert (np.abs(pixels[corner].astype(int) - 40) <= 8).all()  # what the corner is: the margin's grey
        assert not mask[corner].any()
    colour = (pixels.max(axis=2).astype(int) - pixels.min(axis=2)) > 80
    assert colour[mask].sum() > 500  # there is Doppler inside the sector ...
    assert mask[colour].mean() > 0.97  # ... and it stays in the outline
    assert mask[10:110, 100:200].all()  # the middle of the sector


@pytest.mark.parametrize("frame", [0, 15, 29])
def test_echocardiogram_fan_excludes_text_and_console(frame):
    # examples_ybr_color: a fan with its apex near (170, 20) opening downward to row ~205; text on black at
    # the top left (x < 40, rows < 30) and down the right side (x >= 280); a console bar below row 215.
    _, mask = demo_mask("examples_ybr_color.dcm", frame)
    assert not mask[:30, :40].any()
    assert not mask[:, 280:].any()
    assert not mask[215:].any()
    assert mask[30:190, 165].all()  # down the fan's axis, the dark chambers included
    assert box_of(mask)[1] <= 25  # up to the apex


def test_bone_scan_outlines_the_body_not_the_background():
    # JPEG2000_UNC: a whole-body scan, grey ~19 flat background; head top at row ~90, feet at ~850, body
    # between x ~20 and the right edge (an arm); nothing above row 60 or below row 900 (by eye).
    pixels, mask = demo_mask("JPEG2000_UNC.dcm")
    background = pixels[:60]
    assert background.std() < 3  # flat background
    assert pixels[mask].mean() > background.mean() + 25
    assert not mask[:60].any() and not mask[900:].any()
    assert_box_near(mask, (20, 90, 250, 850), tolerance=30)


def test_every_demo_image_the_expert_outlines_is_checked_here(tmp_path):
    from fixtures.build import read_rows

    from medtrinity.pipeline.config import BuildConfig
    from medtrinity.pipeline.runner import run_build

    run_build(BuildConfig(sources=["demo:."], out=str(tmp_path / "demo")), show_progress=False)
    rows = read_rows(tmp_path / "demo")
    used = {
        row["origin"]["file"].rsplit("/", 1)[-1]
        for row in rows
        if any(roi["source"].startswith("expert:foreground@") for roi in row["rois"])
    }
    assert used  # the demo does use the fallback
    assert used <= CHECKED_DEMO_FILES


# ---------------------------------------------------------------- drawn images with a known region
def radiograph(inverted: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A limb film: collimator bands on three sides, air strips, a limb crossing the field from top to bottom
    (soft tissue, a bone shaft, a wider ankle), a heel-effect gradient in the air and a burned-in "R"."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:400, :320]
    field = (rows >= 24) & (cols >= 48) & (cols < 272)
    centre = 150 + 0.08 * (rows - 200)
    half = 55 + 20 * np.exp(-(((rows - 330) / 50.0) ** 2))
    limb = field & (np.abs(cols - centre) <= half)
    image = 0.08 + 0.03 * (cols - 48) / 224
    image = np.where(limb, 0.45 + 0.15 * (1 - np.abs(cols - centre) / half), image)
    image[limb & (np.abs(cols - centre + 8) <= 18)] = 0.85
    image = image + rng.normal(0, 0.02, image.shape)
    image[~field] = 1.0  # unexposed under the collimator
    marker = Image.new("L", (20, 20), 38)
    ImageDraw.Draw(marker).text((6, 4), "R", fill=255)
    image[60:80, 240:260] = np.asarray(marker) / 255.0
    image = np.clip(image, 0, 1)
    return ((1.0 - image if inverted else image) * 255).astype(np.uint8), limb


@pytest.mark.parametrize("inverted", [False, True])
def test_radiograph_in_either_polarity_outlines_the_limb(inverted):
    image, limb = radiograph(inverted)
    region = only_region(image, "X-Ray", "tibia")
    assert iou(region.mask, limb) >= 0.9
    assert not region.mask[:24].any() and not region.mask[:, :48].any() and not region.mask[:, 272:].any()
    assert not region.mask[60:80, 240:260].any()  # the marker


def ultrasound_fan(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A curved-probe fan on a black screen: speckle, an anechoic cyst on the fan's edge, a Doppler patch;
    text in the margins, depth ticks beside the fan, a slate console panel with text at the bottom."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:300, :400]
    radius, angle = np.hypot(rows + 40, cols - 200), np.degrees(np.arctan2(cols - 200, rows + 40))
    fan = (radius >= 70) & (radius <= 300) & (np.abs(angle) <= 38)
    echo = np.where(fan, 0.35 * rng.rayleigh(1.0, fan.shape) / 1.25, 0.0)
    echo[fan & (np.hypot(rows - 170, cols - 90) <= 38)] = 0.01  # the cyst reaches the fan's left edge
    rgb = np.repeat(np.clip(echo, 0, 1)[..., None], 3, axis=2)
    rgb[fan & (np.hypot(rows - 140, cols - 230) <= 18)] = (0.8, 0.1, 0.1)
    picture = Image.fromarray((rgb * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.text((4, 2), "GE LOGIQ  ABD  C1-5", fill=(230, 230, 230))
    for y, line in ((40, "MI 1.1"), (56, "TIS 0.4"), (72, "FR 24")):
        draw.text((330, y), line, fill=(200, 200, 200))
    for y in range(40, 260, 20):
        draw.line([(48, y), (54, y)], fill=(0, 220, 0))
    draw.rectangle([0, 276, 399, 299], fill=(40, 45, 65))
    draw.text((8, 282), "3:ABDOMEN   DR 66   G 54", fill=(220, 220, 220))
    return np.asarray(picture), fan


def test_ultrasound_outlines_the_fan_without_margin_text_or_console():
    image, fan = ultrasound_fan()
    region = only_region(image, "Ultrasound")
    assert iou(region.mask, fan) >= 0.9
    assert not region.mask[:12].any()  # the header text
    assert not region.mask[30:90, 320:].any()  # the text on the right
    assert not region.mask[270:].any()  # the console panel


def test_ultrasound_saved_without_its_screen_gives_the_lesion_that_stands_out():
    # A scan cropped to its image (as BUSI's): speckle to every edge, so the object is the dark lesion.
    rng = np.random.default_rng(3)
    image = rng.normal(150, 12, (96, 96))
    lesion = np.zeros((96, 96), bool)
    lesion[30:52, 40:66] = True
    image[lesion] = rng.normal(60, 5, int(lesion.sum()))
    region = only_region(np.clip(image, 0, 255).astype(np.uint8), "Ultrasound")
    assert iou(region.mask, lesion) >= 0.9


def vignetted_photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A round field of view in a black vignette: mucosa-like folds, a dark lumen at the field's edge, white
    text in the vignette's corners."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:240, :320]
    field = np.hypot(rows - 120, cols - 165) <= 112
    shade = 0.55 + 0.25 * np.cos(cols / 9.0) * np.sin(rows / 13.0)
    rgb = np.stack([0.9 * shade, 0.45 * shade, 0.4 * shade], axis=2) + rng.normal(0, 0.02, (240, 320, 3))
    rgb[field & (np.hypot(rows - 120, cols - 250) <= 30)] *= 0.08  # the lumen, reaching the field's edge
    rgb[~field] = np.abs(rng.normal(0, 0.006, (int((~field).sum()), 3)))
    picture = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    draw.text((4, 4), "OLYMPUS CV-190", fill=(255, 255, 255))
    draw.text((4, 220), "12/03/2021 10:42", fill=(255, 255, 255))
    return np.asarray(picture), field


@pytest.mark.parametrize("modality", ["Endoscopy", "Dermoscopy", "Fundus", "Microscopy"])
def test_photograph_outlines_the_field_of_view_not_the_vignette(modality):
    image, field = vignetted_photo()
    region = only_region(image, modality)
    assert iou(region.mask, field) >= 0.9
    assert not region.mask[:16, :100].any() and not region.mask[216:, :100].any()  # the corner text


def scene(object_level: float, background_level: float, seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:200, :240]
    obj = (rows - 90) ** 2 / 60**2 + (cols - 130) ** 2 / 80**2 <= 1
    image = np.where(obj, object_level, background_level) + rng.normal(0, 0.05, obj.shape)
    image[obj & (np.hypot(rows - 90, cols - 130) < 12)] = background_level  # a hole: still the object
    image[185:189, 10:60] = object_level  # a small text-like mark apart from the object
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), obj


def test_bright_object_on_dark_background():
    image, obj = scene(0.7, 0.1)
    region = only_region(image, "PET")
    assert region.label == "foreground"
    assert iou(region.mask, obj) >= 0.9
    assert region.score > 0.8
    assert region.source == "expert:foreground@2.0"


def test_dark_object_on_bright_background():
    image, obj = scene(0.3, 0.9, seed=1)
    assert iou(only_region(image, "Other").mask, obj) >= 0.9


def test_pure_noise_has_no_foreground():
    noise = np.random.default_rng(0).integers(100, 140, (128, 128)).astype(np.uint8)
    for modality in ("Other", "CT", "X-Ray", "Ultrasound", "Endoscopy"):
        assert get_expert("foreground").locate(noise, modality, None, []) == []
