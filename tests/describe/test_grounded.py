"""The grounded describer on synthetic images whose lesions, positions and areas are known exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medtrinity.describe.base import Describer, describer_names, get_describer
from medtrinity.describe.claims import render, sentences
from medtrinity.describe.grounded import GroundedDescriber
from medtrinity.describe.grounded_background import (
    MAX_BACKGROUND_CHARS,
    background_claims,
)
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
    kinds: dict[str, str] | None = None,
) -> Sample:
    """A sample whose ROI labels are findings unless `kinds` says otherwise (label -> LABEL_KINDS)."""
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    labels = labels if labels is not None else [label for _, label in masks]
    label_kinds = {label: "finding" for label in labels} | {label: "finding" for _, label in masks} | (kinds or {})
    rois = [roi_from_mask(mask, label) for mask, label in masks]
    for roi in rois:
        roi.kind = label_kinds[roi.label]
    return Sample(
        id="s1",
        source="synthetic",
        origin=Origin(file="a.png"),
        modality=modality,
        organ=organ,
        disease=disease,
        labels=labels,
        label_kinds=label_kinds,
        width=pixels.shape[1],
        height=pixels.shape[0],
        pixels=pixels,
        rois=rois,
        patient_left_on_image=patient_left_on_image,
        knowledge=knowledge or [],
    )


def lesion_image(background: float, lesion: float, mask: np.ndarray, seed: int = 0, noise: float = 4.0) -> np.ndarray:
    image = noisy_image(background, seed, noise=noise)
    image[mask] = lesion
    return image


def describe(sample: Sample):
    return GroundedDescriber().describe(sample)


def sentence_with(text: str, description) -> str:
    """The one sentence of the description that contains `text`."""
    (found,) = [s for s in sentences(description.claims) if text in s]
    return found


def claims_of(description, kind: str) -> list:
    return [claim for claim in description.claims if claim.kind == kind]


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
def test_texture_uses_the_modality_vocabulary_and_quotes_its_statistics(modality, background, lesion, expected, absent):
    mask = disk(50, 50, 12)
    # Noise-free, so every quoted number is exact: a flat disc has core std 0 and a step edge.
    sample = make_sample(modality, lesion_image(background, lesion, mask, noise=0), [(mask, "lesion")])
    description = describe(sample)
    texture = description.attributes.texture
    level = max(background, lesion)
    assert texture.startswith(f"The lesion {expected} (mean intensity {lesion} vs {background} around it, contrast ")
    assert (
        f"is homogeneous inside (heterogeneity 0.00: core standard deviation 0 over intensity level {level}) "
        "and has a sharp margin (edge gradient "
    ) in texture
    assert absent not in description.text
    said = {c.kind: c.value for c in description.claims if c.attribute == "texture"}
    assert said["mean_inside"] == str(lesion) and said["mean_around"] == str(background)
    assert said["intensity_level"] == str(level) and said["heterogeneity"] == "0.00"
    assert {c.evidence for c in description.claims if c.attribute == "texture"} == {"image,rois[0].mask"}


def test_isodense_heterogeneous_and_ill_defined_with_the_numbers_behind_each_word():
    # Same mean as the background, strong speckle inside, no step at the contour.
    rng = np.random.default_rng(3)
    mask = disk(50, 50, 15)
    image = noisy_image(128, seed=1)
    image[mask] = np.clip(rng.normal(128, 40, int(mask.sum())), 0, 255)
    description = describe(make_sample("CT", image, [(mask, "mass")]))
    texture = description.attributes.texture
    said = {c.kind: c.value for c in description.claims if c.attribute == "texture"}
    assert "The mass is isodense to its surroundings" in texture
    assert f"contrast {said['contrast']} standard deviations" in texture and abs(float(said["contrast"])) < 0.5
    # The word comes from the heterogeneity it prints, not from a std of other pixels.
    assert f"is heterogeneous inside (heterogeneity {said['heterogeneity']}: core standard deviation " in texture
    assert float(said["heterogeneity"]) >= 0.15
    assert float(said["edge_sharpness"]) < 2.5 and "has an ill-defined margin" in texture


def test_roi_filling_the_image_is_described_inside_only():
    mask = np.ones((SIZE, SIZE), dtype=bool)
    sample = make_sample("CT", noisy_image(100), [(mask, "liver")], disease=None, labels=[], kinds={"liver": "anatomy"})
    description = describe(sample)
    assert description.attributes.texture.startswith("The liver is homogeneous inside (heterogeneity 0.04: ")
    assert description.attributes.texture.endswith(
        "; with 0 pixels around it there is too little surrounding image to compare it with."
    )
    assert "hyperdense" not in description.text and "isodense" not in description.text
    assert "reaches the image border at the top, bottom, left and right edges" in description.attributes.local_global
    assert all(check.ok for check in verify(sample, description.text))


def test_a_region_under_64_pixels_gets_no_texture_words():
    speck = box(40, 40, 47, 47)  # 49 pixels
    sample = make_sample("CT", lesion_image(150, 30, speck), [(speck, "calcification")])
    description = describe(sample)
    assert description.attributes.texture == (
        "Texture is not described: none of the finding, tissue or anatomical "
        "regions has the 64 pixels needed to measure it."
    )
    assert claims_of(description, "no_texture")[0].value == "size"


@pytest.mark.parametrize("kind", ["region", "device"])
def test_regions_that_are_not_tissue_get_no_intensity_words(kind):
    body = box(20, 10, 80, 90)  # the whole body against air on an X-ray
    sample = make_sample(
        "X-Ray",
        lesion_image(10, 180, body),
        [(body, "foreground")],
        organ="knee",
        disease=None,
        labels=[],
        kinds={"foreground": kind},
    )
    description = describe(sample)
    assert description.attributes.texture == (
        "Texture is not described: it is given for findings, anatomical structures, tissue classes and regions "
        "the source drew, and these regions are none of those."
    )
    assert "opacity" not in description.text and "lucency" not in description.text


def test_a_region_the_source_drew_under_an_undeclared_label_is_measured_but_not_called_a_finding():
    lesion = box(30, 30, 60, 60)
    sample = make_sample(
        "Ultrasound",
        lesion_image(150, 60, lesion),
        [(lesion, "mass")],
        organ="breast",
        disease=None,
        labels=[],
        kinds={"mass": "label"},
    )
    description = describe(sample)
    assert description.attributes.texture.startswith("The mass is hypoechoic relative to its surroundings")
    assert "finding" not in description.attributes.local_global


def test_ultrasound_screen_margin_and_doppler_colour_are_not_read_as_echogenicity():
    sector = np.zeros((SIZE, SIZE), dtype=bool)
    sector[:, 30:] = True  # the scan sector; columns 0-29 are the black screen margin
    image = np.where(sector, noisy_image(120, seed=5), 0.0)
    on_margin = box(5, 40, 45, 70)  # half of it on the black screen
    sample = make_sample(
        "Ultrasound",
        image,
        [(on_margin, "pelvis")],
        organ="pelvis",
        disease=None,
        labels=[],
        kinds={"pelvis": "anatomy"},
    )
    description = describe(sample)
    assert "hypoechoic" not in description.text and "isoechoic" not in description.text
    assert claims_of(description, "no_texture")[0].value == "overlay"

    cyst = disk(65, 50, 10)  # an anechoic cyst inside tissue is dark too, but not margin: it is described
    image[cyst] = 2
    sample = make_sample("Ultrasound", image, [(cyst, "cyst")], organ="kidney", disease="renal cyst")
    assert "The cyst is hypoechoic relative to its surroundings" in describe(sample).attributes.texture

    rgb = np.repeat(image[:, :, None], 3, axis=2)
    rgb[45:55, 70:80] = (200, 30, 30)  # a colour Doppler patch beside the cyst, in its ring
    sample = make_sample("Ultrasound", rgb, [(cyst, "cyst")], organ="kidney", disease="renal cyst")
    description = describe(sample)
    assert "echoic" not in description.text
    assert claims_of(description, "no_texture")[0].value == "overlay"


def test_a_head_against_air_is_not_called_hyperintense():
    head = disk(50, 50, 30)
    image = np.where(head, noisy_image(90, seed=2), 0.0)
    sample = make_sample(
        "MRI", image, [(head, "head")], organ="brain", disease=None, labels=[], kinds={"head": "anatomy"}
    )
    texture = describe(sample).attributes.texture
    assert texture.startswith("The head is homogeneous inside (heterogeneity ")
    assert texture.endswith("; it is not compared with its surroundings, which lie mostly outside the imaged field.")
    assert "hyperintense" not in texture


def test_findings_are_textured_first():
    masks = [
        (box(5, 5, 45, 45), "liver"),
        (box(60, 60, 70, 70), "metastasis"),
        (box(50, 5, 95, 40), "spleen"),
        (box(5, 60, 40, 95), "kidney"),
    ]
    image = noisy_image(100)
    for mask, _ in masks:
        image[mask] = 180
    sample = make_sample(
        "CT", image, masks, disease="metastasis", kinds={"liver": "anatomy", "spleen": "anatomy", "kidney": "anatomy"}
    )
    subjects = [c.subject for c in claims_of(describe(sample), "brightness")]
    assert subjects == [1, 0, 2]  # the finding, then the two largest anatomy ROIs


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
    assert sentence_with("lies", description) == (
        "The nodule lies off-centre, in the upper-middle right-center region of the image, and does not touch the "
        "image border."
    )
    (placement,) = claims_of(description, "placement")
    assert (placement.value, placement.evidence, placement.subject) == (
        "upper-middle right-center",
        "rois[0].position",
        0,
    )


def test_only_the_centre_bin_is_central():
    mask = box(45, 45, 55, 55)
    description = describe(make_sample("MRI", lesion_image(90, 200, mask), [(mask, "lesion")]))
    assert "located centrally, in the middle center region of the image, occupying about 1.0%" in (
        description.attributes.roi
    )
    assert "The lesion lies centrally in the image and does not touch the image border." in (
        description.attributes.local_global
    )
    inner = box(25, 45, 35, 55)  # middle left-center: inside the old "inner" bins, but not the centre one
    description = describe(make_sample("MRI", lesion_image(90, 200, inner), [(inner, "lesion")]))
    assert "centrally" not in description.text
    assert "The lesion lies off-centre, in the middle left-center region of the image" in description.text


def test_border_words_come_from_the_box():
    mask = box(0, 30, 20, 100)  # touches the left and bottom edges
    description = describe(make_sample("CT", lesion_image(150, 60, mask), [(mask, "mass")]))
    assert sentence_with("lies", description).endswith("reaches the image border at the bottom and left edges.")
    assert claims_of(description, "border")[0].value == "bottom,left"


def test_speck_area_is_not_written_as_zero():
    mask = box(10, 10, 12, 12)  # 4 of 10000 pixels -> 0.0 %
    description = describe(make_sample("CT", lesion_image(150, 30, mask), [(mask, "calcification")]))
    assert "occupying less than 0.1% of the image" in description.attributes.roi
    assert all(
        check.ok for check in verify(make_sample("CT", lesion_image(150, 30, mask), [(mask, "c")]), description.text)
    )


def test_patient_side_from_the_radiological_convention():
    # patient_left_on_image="right": the image's right half shows the patient's left.
    right_mask, left_mask, centre_mask = box(70, 40, 90, 60), box(5, 40, 25, 60), box(42, 80, 58, 95)
    image = noisy_image(150)
    for mask in (right_mask, left_mask, centre_mask):
        image[mask] = 60
    sample = make_sample(
        "CT",
        image,
        [(right_mask, "mass"), (left_mask, "cyst"), (centre_mask, "node")],
        patient_left_on_image="right",
    )
    roi = describe(sample).attributes.roi
    assert (
        "The mass is located in the middle right region of the image, occupying about 4.0% of the image, "
        "on the patient's left."
    ) in roi
    assert (
        "The cyst is located in the middle left region of the image, occupying about 4.0% of the image, "
        "on the patient's right."
    ) in roi
    # The centre band (0.4-0.6) has no side.
    assert "The node is located in the bottom center region of the image, occupying about 2.4% of the image." in roi
    assert roi.startswith("There are 3 regions of interest. ")
    sides = [(c.value, c.subject, c.evidence) for c in claims_of(describe(sample), "side")]
    assert sides == [
        ("left", 0, "rois[0].position,origin.patient_left_on_image"),
        ("right", 1, "rois[1].position,origin.patient_left_on_image"),
    ]

    sample.patient_left_on_image = "left"
    flipped = describe(sample).attributes.roi
    assert (
        "The mass is located in the middle right region of the image, occupying about 4.0% of the image, "
        "on the patient's right." in flipped
    )


def test_many_rois_are_capped_and_counted():
    masks = [(box(5 + 13 * i, 5, 5 + 13 * i + 4 + i, 15), f"spot{i}") for i in range(7)]
    image = noisy_image(100)
    for mask, _ in masks:
        image[mask] = 220
    description = describe(make_sample("Microscopy", image, masks, organ=None, disease=None))
    roi = description.attributes.roi
    assert roi.startswith("There are 7 regions of interest; the 5 largest are listed. ")
    assert "The spot6 is located" in roi and "spot1 is located" not in roi and "spot0" not in roi
    # spot4..spot6 have 80, 90 and 100 pixels: the three measurable ones
    assert description.attributes.texture.count(" is brighter relative to its surroundings") == 3
    assert "is the largest of 7 regions" in description.attributes.local_global
    assert all(check.ok for check in verify(make_sample("Microscopy", image, masks), description.text))


# ---------------------------------------------------------------- disease status from the label kinds
def _status(labels: list[str], kinds: dict[str, str], disease: str | None = None, **origin) -> str:
    mask = disk(50, 50, 10)
    sample = make_sample(
        "CT",
        lesion_image(150, 60, mask),
        [(mask, "kidney")],
        organ="kidney",
        disease=disease,
        labels=labels,
        kinds={"kidney": "anatomy"} | kinds,
    )
    if origin:
        sample.origin = Origin(file="vol.nii.gz", **origin)
    structures = describe(sample).attributes.structures
    head = "The imaged anatomy is the kidney, as given by the source. The regions are labelled: kidney. "
    assert structures.startswith(head)
    return structures[len(head) :]


@pytest.mark.parametrize(
    ("labels", "kinds", "disease", "expected"),
    [
        ([], {}, None, "The source gives no diagnosis for this image."),
        ([], {}, "renal cyst", "The source records the finding as renal cyst."),
        (
            ["Cyst", "Stone"],
            {"Cyst": "finding", "Stone": "finding"},
            None,
            "The source records the findings as Cyst and Stone.",
        ),
        (
            ["cyst"],
            {"cyst": "finding"},
            "Renal cyst",
            "The source records the finding as Renal cyst. The source's labels also record the finding cyst.",
        ),
        (
            ["Edema", "Effusion"],
            {"Edema": "finding", "Effusion": "finding"},
            "edema, effusion",
            "The source records the finding as edema, effusion.",
        ),
        (
            ["Pneumonia (uncertain)"],
            {"Pneumonia (uncertain)": "uncertain"},
            None,
            "The source marks Pneumonia as uncertain.",
        ),
        (["no pneumothorax"], {"no pneumothorax": "negative"}, None, "The source records no pneumothorax."),
        (["Pneumothorax"], {"Pneumothorax": "negative"}, None, "The source records no Pneumothorax."),
        (["No Finding"], {"No Finding": "normal"}, None, "The source labels the image as normal."),
        (
            ["No Finding", "Support Devices"],
            {"No Finding": "normal", "Support Devices": "device"},
            None,
            "The source labels the image as normal. The source notes Support Devices.",
        ),
        (
            ["Support Devices"],
            {"Support Devices": "device"},
            None,
            "The source gives no diagnosis for this image. The source notes Support Devices.",
        ),
        (
            ["IHC (DAB) stain"],
            {"IHC (DAB) stain": "stain"},
            None,
            "The source gives no diagnosis for this image. The source gives the stain as IHC (DAB) stain.",
        ),
        (
            ["whole-body bone scan"],
            {"whole-body bone scan": "study"},
            None,
            "The source gives no diagnosis for this image. The source gives the study as whole-body bone scan.",
        ),
        (
            ["adipose tissue"],
            {"adipose tissue": "tissue"},
            None,
            "The source gives no diagnosis for this image. The source classes this image as adipose tissue.",
        ),
        (
            ["grade 2"],
            {"grade 2": "label"},
            None,
            "The source gives the label grade 2, whose meaning the recipe does not declare, and no diagnosis.",
        ),
        (
            ["grade 2"],
            {"grade 2": "label"},
            "renal cyst",
            (
                "The source records the finding as renal cyst. "
                "The source also gives the label grade 2, whose meaning the recipe does not declare."
            ),
        ),
        (
            ["renal tumor"],
            {"renal tumor": "case"},
            None,
            "No lesion is annotated on this image of a case recorded with renal tumor.",
        ),
    ],
)
def test_disease_status_follows_the_label_kinds(labels, kinds, disease, expected):
    assert _status(labels, kinds, disease) == expected


def test_a_case_label_on_a_slice_and_silence_is_never_no_disease():
    assert _status(["renal tumor"], {"renal tumor": "case"}, slice=12, axis="axial") == (
        "No lesion is annotated on this slice of a case recorded with renal tumor."
    )
    for labels, kinds in [([], {}), (["background"], {"background": "tissue"}), (["x"], {})]:
        assert "no disease" not in _status(labels, kinds).lower()


def test_an_annotated_finding_roi_is_a_recorded_finding_even_without_labels():
    # SLAKE: no disease field, no labels, but the source's mask is a tumour.
    tumour, liver = disk(30, 30, 8), box(50, 20, 90, 80)
    image = noisy_image(150)
    image[tumour], image[liver] = 60, 200
    sample = make_sample(
        "CT",
        image,
        [(liver, "liver"), (tumour, "tumor")],
        organ="abdomen",
        disease=None,
        labels=[],
        kinds={"liver": "anatomy"},
    )
    description = describe(sample)
    assert "The source's annotation marks the finding tumor." in description.attributes.structures
    assert "diagnosis" not in description.text


# ---------------------------------------------------------------- findings tied to the right region
def test_the_finding_is_tied_to_its_own_roi_not_the_largest():
    left_kidney, right_kidney, tumour = box(10, 30, 40, 70), box(60, 30, 90, 70), disk(75, 50, 6)
    image = noisy_image(100)
    image[left_kidney | right_kidney] = 170
    image[tumour] = 90
    masks = [(left_kidney, "kidney"), (right_kidney & ~tumour, "kidney"), (tumour, "tumor")]
    sample = make_sample(
        "CT",
        image,
        masks,
        organ="kidney",
        disease="renal tumor",
        labels=["tumor"],
        kinds={"kidney": "anatomy"},
        patient_left_on_image="right",
    )
    description = describe(sample)
    local = description.attributes.local_global
    assert local.startswith("The tumor lies off-centre, in the middle right-center region of the image")
    assert "It covers a small part of the image (about 1.1%) and is one of 3 regions." in local
    assert local.endswith("It marks the recorded finding tumor, as annotated by the source.")
    (tie,) = claims_of(description, "finding_region")
    assert (tie.subject, tie.value, tie.evidence) == (2, "tumor", "rois[2].label,rois[2].kind")


def test_anatomy_is_described_as_anatomy_and_an_unlocated_finding_is_said_so():
    lung = box(10, 10, 45, 90)
    sample = make_sample(
        "X-Ray",
        lesion_image(180, 60, lung),
        [(lung, "lung field")],
        organ="chest",
        disease="edema",
        labels=["Edema"],
        kinds={"lung field": "anatomy", "Edema": "finding"},
    )
    sample.rois[0].source = "expert:chest-xray-lungs@1.1"
    local = describe(sample).attributes.local_global
    assert "It is the lung field, an anatomical structure outlined by the expert chest-xray-lungs@1.1." in local
    assert local.endswith("The recorded finding edema is not outlined by any region.")
    assert "marks the recorded finding" not in local


def test_an_expert_finding_region_is_tied_only_to_a_single_recorded_finding():
    lesion = disk(50, 50, 15)
    sample = make_sample(
        "Dermoscopy",
        lesion_image(200, 70, lesion),
        [(lesion, "skin lesion")],
        organ="skin",
        disease="melanoma",
        labels=["MEL"],
        kinds={"MEL": "label"},
    )
    sample.rois[0].source = "expert:skin-lesion@1.0"
    assert sentence_with("It marks", describe(sample)) == (
        "It marks the recorded finding melanoma, as located by the expert skin-lesion@1.0."
    )
    sample.labels, sample.label_kinds["MEL"] = ["naevus"], "finding"
    sample.label_kinds["naevus"] = "finding"
    description = describe(sample)
    assert "It is the region the expert skin-lesion@1.0 outlines as skin lesion." in description.text
    assert not claims_of(description, "finding_region")


def test_an_appearance_region_is_not_a_finding():
    body = box(20, 10, 80, 90)
    sample = make_sample(
        "X-Ray",
        lesion_image(10, 180, body),
        [(body, "foreground")],
        organ="knee",
        disease="fracture",
        labels=[],
        kinds={"foreground": "region"},
    )
    sample.rois[0].source = "expert:foreground@2.0"
    local = describe(sample).attributes.local_global
    assert "It is a region outlined by the expert foreground@2.0 from the image's appearance, not a finding." in local
    assert local.endswith("The recorded finding fracture is not outlined by any region.")


# ---------------------------------------------------------------- knowledge, claims and the paragraph
def _with_passages(passages: list[Passage], modality: str = "CT", labels=None, kinds=None, disease="nodule"):
    mask = disk(30, 30, 8)
    return make_sample(
        modality,
        lesion_image(150, 60, mask),
        [(mask, "nodule")],
        organ="lung",
        disease=disease,
        knowledge=passages,
        labels=labels,
        kinds=kinds,
    )


def test_knowledge_sentence_comes_from_the_top_fitting_passage_and_cites_its_id():
    passages = [
        Passage(id="mt-liver-001", title="Liver", text="The liver is the largest solid organ.", score=1.5),
        Passage(
            id="mt-lung-003",
            title="Nodules",
            text="A pulmonary nodule is a round opacity up to 3 cm.  It may be benign.",
            score=4.2,
        ),
    ]
    description = describe(_with_passages(passages))
    assert description.text.endswith("Background: A pulmonary nodule is a round opacity up to 3 cm [mt-lung-003].")
    assert "mt-liver-001" not in description.text
    (claim,) = claims_of(description, "background")
    assert (claim.attribute, claim.value, claim.evidence) == ("knowledge", "mt-lung-003", "knowledge[1]")


@pytest.mark.parametrize(
    ("passage", "why"),
    [
        (Passage("p-mri", "Liver on MRI", "On T2-weighted MRI a cyst is bright.", 9), "another modality"),
        (Passage("p-us", "Nodule", "On ultrasound a nodule is hypoechoic.", 9), "another modality"),
        (Passage("p-normal", "Normal chest CT", "A normal chest CT shows clear lungs.", 9), "normal"),
        (Passage("p-data", "LIDC nodules", "The LIDC-IDRI dataset holds 1018 chest CT scans.", 9), "dataset"),
        (Passage("p-brats", "BraTS", "BraTS provides multiparametric scans of gliomas.", 9), "dataset"),
    ],
)
def test_off_topic_passages_are_skipped(passage, why):
    fitting = Passage("p-ok", "Nodule", "A nodule is a small round opacity.", 1)
    description = describe(_with_passages([passage, fitting]))
    assert description.text.endswith("Background: A nodule is a small round opacity [p-ok].")
    assert not background_claims(_with_passages([passage]))


def test_a_sentence_naming_the_record_modality_among_others_is_quoted():
    # The sample is a CT: "on CT, MRI or ultrasound" is general knowledge that includes CT.
    general = Passage("p-general", "Nodule", "A nodule is a small round focus on CT, MRI or ultrasound.", 9)
    assert describe(_with_passages([general])).text.endswith(
        "Background: A nodule is a small round focus on CT, MRI or ultrasound [p-general]."
    )


def test_ontology_terms_name_abnormalities_so_only_images_with_a_finding_quote_them():
    term = Passage("HP:0002732", "Lymph node hypoplasia", "Underdevelopment of the lymph nodes.", 9)
    silent = _with_passages([term], labels=[], kinds={"nodule": "anatomy"}, disease=None)
    assert not background_claims(silent)
    with_finding = _with_passages([term])
    assert background_claims(with_finding)[0].value == "HP:0002732"


def test_normal_passages_only_on_images_the_source_calls_normal():
    normal = Passage("p-normal", "Normal chest CT", "A normal chest CT shows clear lungs.", 3)
    finding = Passage("p-nodule", "Nodule", "A nodule is a small round opacity.", 9)
    sample = _with_passages(
        [finding, normal], labels=["normal"], kinds={"normal": "normal", "nodule": "anatomy"}, disease=None
    )
    assert describe(sample).text.endswith("Background: A normal chest CT shows clear lungs [p-normal].")
    sample.labels, sample.label_kinds = [], {"nodule": "anatomy"}  # silent: "normal" would be a guess
    assert describe(sample).text.endswith("Background: A nodule is a small round opacity [p-nodule].")


def test_claims_cover_the_description_sentence_by_sentence():
    mask = disk(70, 70, 10)
    sample = make_sample(
        "Ultrasound",
        lesion_image(130, 25, mask),
        [(mask, "cyst")],
        organ="kidney",
        disease="renal cyst",
        patient_left_on_image="right",
        knowledge=[Passage("mt-kidney-002", "Cysts", "Simple cysts are common.", 2)],
    )
    description = describe(sample)
    assert render(description.claims) == description.text
    for name, text in vars(description.attributes).items():
        assert render([c for c in description.claims if c.attribute == name]) == text
    assert all(c.evidence and c.kind for c in description.claims)
    assert [(c.kind, c.value, c.evidence) for c in description.claims if c.attribute == "roi"][:4] == [
        ("count", "1", "rois"),
        ("position", "lower-middle right-center", "rois[0].position"),
        ("area", "3.2", "rois[0].area_ratio"),
        ("side", "left", "rois[0].position,origin.patient_left_on_image"),
    ]


def test_paragraph_integrates_the_attributes_in_order():
    mask = disk(70, 70, 10)
    sample = make_sample(
        "Ultrasound",
        lesion_image(130, 25, mask),
        [(mask, "cyst")],
        organ="kidney",
        disease="renal cyst",
        knowledge=[Passage("mt-kidney-002", "Cysts", "Simple cysts are common.", 2)],
    )
    description = describe(sample)
    attributes = description.attributes
    parts = [
        attributes.modality,
        attributes.structures,
        attributes.roi,
        attributes.texture,
        attributes.local_global,
        "Background: Simple cysts are common [mt-kidney-002].",
    ]
    expected = " ".join(parts)
    assert description.text == expected
    assert attributes.modality == "This is an ultrasound image."
    assert attributes.structures == (
        "The imaged anatomy is the kidney, as given by the source. "
        "The regions are labelled: cyst. The source records the finding as renal cyst. "
        "The source's labels also record the finding cyst."
    )
    assert attributes.local_global.endswith("It marks the recorded finding cyst, as annotated by the source.")
    assert description.describer == "grounded@2 prompt=none"
    assert describe(sample) == description  # deterministic


def test_unknown_organ_and_normal_sample_wording():
    mask = disk(50, 50, 20)
    sample = make_sample(
        "X-Ray",
        lesion_image(60, 180, mask),
        [(mask, "lung field")],
        organ=None,
        disease=None,
        labels=["normal"],
        kinds={"normal": "normal", "lung field": "anatomy"},
    )
    attributes = describe(sample).attributes
    assert attributes.modality == "This is an X-ray (radiograph)."
    assert attributes.structures == (
        "The imaged anatomy is not specified by the source. "
        "The regions are labelled: lung field. The source labels the image as normal."
    )
    assert attributes.local_global.endswith(
        "It is the lung field, an anatomical structure outlined by the source's annotation."
    )
    sample.organ = "chest"
    assert describe(sample).attributes.modality == "This is a chest X-ray (radiograph)."


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
            modality,
            image,
            masks,
            organ=organs.get(modality, "liver"),
            patient_left_on_image=orientation,
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
    assert (
        "The metastasis #2 is located in the middle right region of the image, occupying about 4.4% of the "
        "image, on the patient's left. The metastasis #1 is located in the middle left-center region of the "
        "image, occupying about 2.0% of the image, on the patient's right."
    ) in description.attributes.roi
    assert description.attributes.structures.startswith(
        "The imaged anatomy is the liver, as given by the source. The regions are labelled: metastasis."
    )
    sample.description = description.text
    assert all(check.ok for check in verify(sample))


def test_a_passage_without_a_full_stop_gives_a_bounded_background_sentence():
    sample = _with_passages([Passage(id="p1", title="t", text="word " * 100_000, score=1.0)])
    (claim,) = background_claims(sample)
    sentence = claim.text
    assert sentence.startswith("Background: word word") and sentence.endswith("… [p1].")
    assert len(sentence) < MAX_BACKGROUND_CHARS + 40
