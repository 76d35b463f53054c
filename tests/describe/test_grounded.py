"""The grounded describer on synthetic images whose lesions, positions and areas are known exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medtrinity.describe.base import Describer, describer_names, get_describer
from medtrinity.describe.grounded import GroundedDescriber
from medtrinity.describe.verify import verify
from medtrinity.errors import StageError, UserError
from medtrinity.records import MODALITIES, Origin, Passage, Sample
from medtrinity.roi.geometry import roi_from_mask

SIZE = 100


def noisy_image(background: float, seed: int = 0, size: int = SIZE, noise: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(background, noise, (size, size)), 0, 255).astype(np.float64)


def disk(cx: int, cy: int, radius: int, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def box(x0: int, y0: int, x1: int, y1: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def make_sample(
    modality: str,
    image: np.ndarray,
    masks: list[tuple[np.ndarray, str]],
    organ: str | None = "liver",
    disease: str | None = "tumor",
    labels: list[str] | None = None,
    patient_left_on_image: str | None = None,
    knowledge: list[Passage] | None = None,
) -> Sample:
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    return Sample(
        id="s1", source="synthetic", origin=Origin(file="a.png"), modality=modality, organ=organ, disease=disease,
        labels=labels if labels is not None else [label for _, label in masks],
        width=pixels.shape[1], height=pixels.shape[0], pixels=pixels,
        rois=[roi_from_mask(mask, label) for mask, label in masks],
        patient_left_on_image=patient_left_on_image, knowledge=knowledge or [],
    )


def lesion_image(background: float, lesion: float, mask: np.ndarray, seed: int = 0, noise: float = 4.0) -> np.ndarray:
    image = noisy_image(background, seed, noise=noise)
    image[mask] = lesion
    return image


def describe(sample: Sample):
    return GroundedDescriber().describe(sample)


# ---------------------------------------------------------------- registry
def test_registry_gives_the_grounded_describer_by_name():
    describer = get_describer("grounded")
    assert isinstance(describer, GroundedDescriber)
    assert isinstance(describer, Describer)
    assert describer.name == "grounded"
    assert {"grounded", "openai", "transformers"} <= set(describer_names())


def test_unknown_describer_is_a_user_error_listing_the_known_ones():
    with pytest.raises(UserError, match=r"unknown describer 'gpt5'.*grounded"):
        get_describer("gpt5")


def test_bad_options_are_a_user_error():
    with pytest.raises(UserError, match="bad options for describer 'grounded'"):
        get_describer("grounded", temperature=0.2)


# ---------------------------------------------------------------- texture in the modality's vocabulary
@pytest.mark.parametrize(
    ("modality", "background", "lesion", "expected", "absent"),
    [
        ("CT", 150, 60, "is hypodense relative to its surroundings", "hyperdense"),
        ("MRI", 90, 220, "is hyperintense relative to its surroundings", "hypointense"),
        ("Ultrasound", 130, 25, "is hypoechoic relative to its surroundings", "hyperechoic"),
        ("X-Ray", 70, 200, "appears as an opacity relative to its surroundings", "lucency"),
        ("X-Ray", 200, 70, "appears as a lucency relative to its surroundings", "opacity"),
        ("Dermoscopy", 200, 60, "is more pigmented (darker) relative to its surroundings", "paler"),
        ("Histopathology", 220, 90, "is more darkly stained relative to its surroundings", "paler"),
        ("OCT", 40, 200, "is hyperreflective relative to its surroundings", "hyporeflective"),
    ],
)
def test_texture_uses_the_modality_vocabulary(modality, background, lesion, expected, absent):
    mask = disk(50, 50, 12)
    # Noise-free, so the summarised means are exact.
    sample = make_sample(modality, lesion_image(background, lesion, mask, noise=0), [(mask, "lesion")])
    description = describe(sample)
    assert f"The lesion {expected} (mean intensity {lesion} vs {background}" in description.attributes.texture
    assert "is homogeneous inside" in description.attributes.texture
    assert "has a sharp margin" in description.attributes.texture
    assert absent not in description.text


def test_isodense_heterogeneous_and_ill_defined():
    # Same mean as the background, strong speckle inside, no step at the contour.
    rng = np.random.default_rng(3)
    mask = disk(50, 50, 15)
    image = noisy_image(128, seed=1)
    image[mask] = np.clip(rng.normal(128, 40, int(mask.sum())), 0, 255)
    description = describe(make_sample("CT", image, [(mask, "mass")]))
    assert "The mass is isodense to its surroundings" in description.attributes.texture
    assert "is heterogeneous inside" in description.attributes.texture
    assert "has an ill-defined margin" in description.attributes.texture


def test_roi_filling_the_image_says_there_is_nothing_to_compare_with():
    mask = np.ones((SIZE, SIZE), dtype=bool)
    description = describe(make_sample("CT", noisy_image(100), [(mask, "body")], disease=None, labels=[]))
    assert "fills nearly the whole image, so there is no surrounding tissue to compare with" in (
        description.attributes.texture
    )
    assert "reaches the image border at the top, bottom, left and right edges" in description.attributes.local_global
    assert all(check.ok for check in verify(make_sample("CT", noisy_image(100), [(mask, "body")]), description.text))


# ---------------------------------------------------------------- geometry in words
def test_exact_position_and_area_words():
    mask = box(60, 20, 80, 40)  # centre (0.70, 0.30); 400 of 10000 pixels
    description = describe(make_sample("CT", lesion_image(150, 60, mask), [(mask, "nodule")]))
    assert description.attributes.roi.startswith("There is one region of interest. ")
    assert (
        "The nodule is located in the upper-middle right-center region of the image, occupying about 4.0% of the image."
        in description.attributes.roi
    )
    assert "patient's" not in description.text  # orientation unknown: no side is claimed


def test_middle_center_reads_naturally_and_keeps_both_words():
    mask = box(45, 45, 55, 55)
    description = describe(make_sample("MRI", lesion_image(90, 200, mask), [(mask, "lesion")]))
    assert "located centrally, in the middle center region of the image, occupying about 1.0%" in (
        description.attributes.roi
    )
    assert "The lesion lies centrally in the image and does not touch the image border." in (
        description.attributes.local_global
    )


def test_speck_area_is_not_written_as_zero():
    mask = box(10, 10, 12, 12)  # 4 of 10000 pixels -> 0.0 %
    description = describe(make_sample("CT", lesion_image(150, 30, mask), [(mask, "calcification")]))
    assert "occupying less than 0.1% of the image" in description.attributes.roi
    assert all(check.ok for check in verify(make_sample("CT", lesion_image(150, 30, mask), [(mask, "c")]),
                                            description.text))


def test_patient_side_from_the_radiological_convention():
    # patient_left_on_image="right": the image's right half shows the patient's left.
    right_mask, left_mask, centre_mask = box(70, 40, 90, 60), box(5, 40, 25, 60), box(42, 80, 58, 95)
    image = noisy_image(150)
    for mask in (right_mask, left_mask, centre_mask):
        image[mask] = 60
    sample = make_sample(
        "CT", image, [(right_mask, "mass"), (left_mask, "cyst"), (centre_mask, "node")],
        patient_left_on_image="right",
    )
    roi = describe(sample).attributes.roi
    assert ("the mass is located in the middle right region of the image, occupying about 4.0% of the image, "
            "on the patient's left") in roi.lower()
    assert ("the cyst is located in the middle left region of the image, occupying about 4.0% of the image, "
            "on the patient's right") in roi
    # The centre band (0.4-0.6) has no side.
    assert "the node is located in the bottom center region of the image, occupying about 2.4% of the image." in roi
    assert roi.startswith("There are 3 regions of interest. ")

    sample.patient_left_on_image = "left"
    flipped = describe(sample).attributes.roi
    assert "the mass is located in the middle right region of the image, occupying about 4.0% of the image, " \
           "on the patient's right" in flipped.lower()


def test_many_rois_are_capped_and_counted():
    masks = [(box(5 + 13 * i, 5, 5 + 13 * i + 4 + i, 15), f"spot{i}") for i in range(7)]
    image = noisy_image(100)
    for mask, _ in masks:
        image[mask] = 220
    description = describe(make_sample("Microscopy", image, masks, organ=None, disease=None))
    roi = description.attributes.roi
    assert roi.startswith("There are 7 regions of interest; the 5 largest are listed. ")
    assert "the spot6 is located" in roi.lower() and "spot1 is located" not in roi and "spot0" not in roi
    assert description.attributes.texture.count(" is brighter relative to its surroundings") == 3
    assert "is the largest of 7 regions" in description.attributes.local_global
    assert all(check.ok for check in verify(make_sample("Microscopy", image, masks), description.text))


# ---------------------------------------------------------------- metadata, knowledge, paragraph
def test_knowledge_sentence_comes_from_the_top_passage_and_cites_its_id():
    mask = disk(30, 30, 8)
    passages = [
        Passage(id="mt-liver-001", title="Liver", text="The liver is the largest solid organ.", score=1.5),
        Passage(id="mt-lung-003", title="Nodules",
                text="A pulmonary nodule is a round opacity up to 3 cm.  It may be benign.", score=4.2),
    ]
    description = describe(make_sample("CT", lesion_image(150, 60, mask), [(mask, "nodule")], organ="lung",
                                       disease="nodule", knowledge=passages))
    assert description.text.endswith("Background: A pulmonary nodule is a round opacity up to 3 cm [mt-lung-003].")
    assert "mt-liver-001" not in description.text


def test_paragraph_integrates_the_attributes_in_order():
    mask = disk(70, 70, 10)
    sample = make_sample("Ultrasound", lesion_image(130, 25, mask), [(mask, "cyst")], organ="kidney",
                         disease="renal cyst",
                         knowledge=[Passage("mt-kidney-002", "Cysts", "Simple cysts are common.", 2)])
    description = describe(sample)
    attributes = description.attributes
    expected = " ".join([attributes.modality, attributes.structures, attributes.roi, attributes.texture,
                         attributes.local_global, "Background: Simple cysts are common [mt-kidney-002]."])
    assert description.text == expected
    assert attributes.modality == "This is an ultrasound image."
    assert attributes.structures == ("The imaged anatomy is the kidney, as given by the source. "
                                     "The marked structures are: cyst. The source records the finding as renal cyst.")
    assert attributes.local_global.endswith("It marks the recorded finding (renal cyst) within the kidney.")
    assert description.describer == "grounded@1 prompt=none"
    assert describe(sample) == description  # deterministic


def test_unknown_organ_and_normal_sample_wording():
    mask = disk(50, 50, 20)
    sample = make_sample("X-Ray", lesion_image(60, 180, mask), [(mask, "lung field")], organ=None, disease=None,
                         labels=["normal"])
    attributes = describe(sample).attributes
    assert attributes.modality == "This is an X-ray (radiograph)."
    assert attributes.structures.startswith("The imaged anatomy is not specified by the source.")
    assert attributes.structures.endswith("The source records no disease.")
    assert attributes.local_global.endswith(
        "With no disease recorded, the region of interest shows the primary anatomy of the image."
    )
    sample.organ = "chest"
    attributes = describe(sample).attributes
    assert attributes.modality == "This is a chest X-ray (radiograph)."
    assert attributes.local_global.endswith(
        "With no disease recorded, the region of interest shows the primary anatomy of the image, the chest."
    )


def test_volume_slice_is_stated():
    mask = disk(50, 50, 9)
    sample = make_sample("MRI", lesion_image(90, 200, mask), [(mask, "lesion")])
    sample.origin = Origin(file="vol.nii.gz", slice=42, axis="axial")
    assert describe(sample).attributes.modality == (
        "This is an MRI (magnetic resonance) image. It is slice 42 of a volume, cut along the axial axis."
    )


def test_no_roi_is_described_not_raised():
    sample = make_sample("CT", noisy_image(100), [], disease=None, labels=[])
    sample.pixels = None  # nothing needs measuring
    description = describe(sample)
    assert description.attributes.roi == "No region of interest was localised."
    assert all(value for value in vars(description.attributes).values())
    assert all(check.ok for check in verify(sample, description.text))


def test_missing_pixels_is_a_stage_error():
    mask = disk(50, 50, 9)
    sample = make_sample("CT", lesion_image(150, 60, mask), [(mask, "lesion")])
    sample.pixels = None
    with pytest.raises(StageError, match="needs the image pixels"):
        describe(sample)
    sample.pixels = np.zeros((10, 10), dtype=np.uint8)
    with pytest.raises(StageError, match=r"shape \(10, 10\) but the record says 100x100"):
        describe(sample)


def test_rgb_image_and_box_only_roi():
    mask = box(20, 60, 40, 90)
    gray = lesion_image(210, 80, mask)
    rgb = np.stack([gray, gray * 0.8, gray * 0.7], axis=-1)
    sample = make_sample("Dermoscopy", rgb, [(mask, "naevus")], organ="skin", disease="naevus")
    sample.rois[0].mask = None  # a box region: measured on its filled box
    description = describe(sample)
    assert "The naevus is more pigmented (darker) relative to its surroundings" in description.attributes.texture
    assert "in the lower-middle left-center region of the image, occupying about 6.0% of the image" in (
        description.attributes.roi
    )


# ---------------------------------------------------------------- every grounded output verifies
GRID_CENTRES = (8, 30, 50, 70, 92)
GRID_RADII = (3, 14)


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_grounded_description_passes_verification(modality):
    organs = {"CT": "lung", "X-Ray": "chest", "Fundus": "retina", "Dermoscopy": "skin", "Other": None}
    failures = []
    for (cx, cy), radius, orientation in itertools.product(
        itertools.product(GRID_CENTRES, GRID_CENTRES), GRID_RADII, ("right", "left", None)
    ):
        mask = disk(cx, cy, radius)
        second = box(0, 0, 6, 100) if (cx, cy) != (8, 50) else box(94, 0, 100, 100)
        image = lesion_image(120, 40 if cx < 50 else 210, mask)
        image[second & ~mask] = 250
        masks = [(mask, "lesion"), (second & ~mask, "rim")] if radius == 14 else [(mask, "lesion")]
        sample = make_sample(
            modality, image, masks, organ=organs.get(modality, "liver"), patient_left_on_image=orientation,
            knowledge=[Passage("mt-x-001", "X", "In 40% of MRI cases the left lung is affected. More.", 1.0)],
        )
        sample.description = describe(sample).text
        bad = [check for check in verify(sample) if not check.ok]
        if bad:
            failures.append((cx, cy, radius, orientation, bad))
    assert failures == []


def test_one_label_on_several_rois_is_numbered_and_verifies():
    left, right = disk(20, 50, 8), disk(80, 50, 12)
    image = lesion_image(150, 60, left | right)
    sample = make_sample("CT", image, [(left, "metastasis"), (right, "metastasis")], patient_left_on_image="right")
    description = describe(sample)
    assert ("The metastasis #2 is located in the middle right region of the image, occupying about 4.4% of the "
            "image, on the patient's left; the metastasis #1 is located in the middle left-center region of the "
            "image, occupying about 2.0% of the image, on the patient's right.") in description.attributes.roi
    assert description.attributes.structures.startswith(
        "The imaged anatomy is the liver, as given by the source. The marked structures are: metastasis."
    )
    sample.description = description.text
    assert all(check.ok for check in verify(sample))


def test_a_passage_without_a_full_stop_gives_a_bounded_background_sentence():
    from medtrinity.describe.grounded import MAX_BACKGROUND_CHARS, background_sentence
    from medtrinity.records import Passage

    sentence = background_sentence([Passage(id="p1", title="t", text="word " * 100_000, score=1.0)])
    assert sentence.startswith("Background: word word") and sentence.endswith("… [p1].")
    assert len(sentence) < MAX_BACKGROUND_CHARS + 40
