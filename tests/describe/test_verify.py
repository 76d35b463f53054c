"""verify() on hand-written descriptions: correct text passes, each planted error is flagged by its check, and a
check that cannot be performed says so (status "not-verifiable", distinguishable from a pass)."""

from __future__ import annotations

import numpy as np
import pytest

from medtrinity.describe.verify import claims_text, verify
from medtrinity.describe.vocabulary import modalities_named, patient_side
from medtrinity.records import Origin, Passage, Sample
from medtrinity.roi.geometry import roi_from_mask

SIZE = 200
CHECK_NAMES = ["modality", "position", "area", "roi_count", "side", "organ"]


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def chest_ct(patient_left_on_image: str | None = "right") -> Sample:
    # nodule: centre (0.75, 0.35) -> upper-middle right-center, 1600 px = 4.0 %
    # effusion: centre (0.15, 0.85) -> bottom left, 2400 px = 6.0 %
    rois = [roi_from_mask(box(130, 50, 170, 90), "nodule"), roi_from_mask(box(0, 150, 60, 190), "effusion")]
    return Sample(
        id="v1",
        source="synthetic",
        origin=Origin(file="chest.dcm"),
        modality="CT",
        organ="chest",
        disease="nodule",
        labels=["nodule", "effusion"],
        width=SIZE,
        height=SIZE,
        rois=rois,
        patient_left_on_image=patient_left_on_image,
    )


CORRECT = (
    "This is a CT image of the chest. There are two regions of interest. "
    "A nodule lies in the upper-middle right-center region of the image, occupying about 4.0% of the image, "
    "in the left lung (on the patient's left). "
    "An effusion is seen in the bottom left region, covering 6 percent of the image, on the patient's right. "
    "The nodule is hypodense with a sharp margin."
)


def failing(checks) -> dict[str, str]:
    return {check.name: check.detail for check in checks if not check.ok}


def test_correct_text_is_not_flagged():
    checks = verify(chest_ct(), CORRECT)
    assert [check.name for check in checks] == CHECK_NAMES
    assert failing(checks) == {}
    details = {check.name: check.detail for check in checks}
    assert details["modality"] == "text names CT, as recorded"
    assert details["position"] == "position words agree: upper-middle right-center, bottom left"
    assert details["area"] == "stated areas agree: 4%, 6%"
    assert details["roi_count"] == "stated counts agree: 2 region(s)"
    assert details["side"] == "stated sides agree: left, right"
    assert details["organ"] == "named organs (chest) fit the record's chest"
    assert {check.status for check in checks} == {"pass"}


def test_default_text_is_the_sample_description():
    sample = chest_ct()
    sample.description = CORRECT.replace("two regions", "five regions")
    assert set(failing(verify(sample))) == {"roi_count"}


@pytest.mark.parametrize(
    ("wrong", "right", "check", "detail"),
    [
        (
            "in the left lung (on the patient's left)",
            "in the right lung (on the patient's right)",
            "side",
            "text says the patient's right but nodule is on the patient's left",
        ),
        ("This is a CT image", "This is an MRI image", "modality", "text names MRI but the record is CT"),
        ("This is a CT image", "This is a radiograph", "modality", "text names X-Ray but the record is CT"),
        (
            "about 4.0% of the image",
            "about 12.0% of the image",
            "area",
            "text says 12% but nodule is at upper-middle right-center (4.0%)",
        ),
        ("covering 6 percent", "covering 4 percent", "area", "text says 4% but effusion is at bottom left (6.0%)"),
        (
            "two regions of interest",
            "three regions of interest",
            "roi_count",
            "text says 3 region(s) but the record has 2",
        ),
        ("two regions of interest", "4 ROIs", "roi_count", "text says 4 region(s) but the record has 2"),
        (
            "upper-middle right-center",
            "lower-middle left",
            "position",
            "text says lower-middle left but nodule is at upper-middle right-center (4.0%)",
        ),
        # A position that is some other ROI's is still wrong for the ROI the clause names.
        (
            "upper-middle right-center",
            "bottom left",
            "position",
            "text says bottom left but nodule is at upper-middle right-center (4.0%)",
        ),
        (
            "CT image of the chest",
            "CT image of the brain",
            "organ",
            "text says the image shows brain but the record's organ is chest (chest)",
        ),
    ],
)
def test_each_planted_error_is_flagged_by_its_check_only(wrong, right, check, detail):
    assert wrong in CORRECT
    assert failing(verify(chest_ct(), CORRECT.replace(wrong, right))) == {check: detail}


def test_side_in_the_patient_frame_needs_the_orientation():
    text = CORRECT.replace("(on the patient's left)", "(on the patient's right)")
    assert set(failing(verify(chest_ct("right"), text))) == {"side"}
    # With the opposite convention the nodule is on the patient's right and the effusion on the left.
    assert failing(verify(chest_ct("left"), CORRECT)) == {
        "side": "text says the patient's left but nodule is on the patient's right"
        " | text says the patient's right but effusion is on the patient's left"
    }
    unknown = {c.name: c for c in verify(chest_ct(None), "The nodule is in the right lung.")}
    assert unknown["side"].ok and unknown["side"].status == "not-verifiable"
    assert unknown["side"].detail == "not verifiable: the patient's orientation on the image is unknown"
    # A side that can be checked in the image frame still decides; the patient-frame one is reported as unchecked.
    mixed = {c.name: c for c in verify(chest_ct(None), text + " The nodule is on the right side of the image.")}
    assert mixed["side"].status == "pass"
    assert mixed["side"].detail == (
        "stated sides agree: image right; not verifiable: the patient's orientation on the image is unknown"
    )


def test_side_with_a_single_roi_and_both_conventions():
    sample = chest_ct("right")
    sample.rois = sample.rois[:1]  # the nodule, in the image's right half
    text = "The nodule is in the right lung."
    assert set(failing(verify(sample, text))) == {"side"}
    sample.patient_left_on_image = "left"
    assert failing(verify(sample, text)) == {}


def test_centre_band_roi_fits_either_side():
    sample = chest_ct("right")
    sample.rois = [roi_from_mask(box(85, 80, 115, 120), "mass")]  # centre x 0.5: no side
    assert sample.rois[0].position.horizontal == "center"
    assert patient_side("center", "right") is None
    assert failing(verify(sample, "A mass in the left lung. Another view: the patient's right.")) == {}


def test_image_frame_side_is_checked_without_orientation():
    sample = chest_ct(None)
    sample.rois = sample.rois[:1]  # right-center
    assert failing(verify(sample, "The nodule is on the right side of the image.")) == {}
    flagged = failing(verify(sample, "The nodule is on the left side of the image."))
    assert flagged == {"side": "text puts it on the image's left but nodule is at upper-middle right-center (4.0%)"}


def test_area_tolerance_is_half_a_point_or_twenty_percent():
    sample = chest_ct()
    sample.rois = [roi_from_mask(box(0, 0, 4, 10), "speck")]  # 40 px = 0.1 %
    assert sample.rois[0].area_ratio == 0.1
    assert failing(verify(sample, "It covers 0.6% of the image.")) == {}
    assert set(failing(verify(sample, "It covers 0.7% of the image."))) == {"area"}
    sample.rois = [roi_from_mask(box(0, 0, 100, 80), "half")]  # 8000 px = 20.0 %
    assert failing(verify(sample, "It covers 24% of the image.")) == {}
    assert set(failing(verify(sample, "It covers 24.5% of the image."))) == {"area"}


def test_count_words_and_zero():
    sample = chest_ct()
    assert failing(verify(sample, "Two ROIs are marked; the nodule is the largest of 2 regions.")) == {}
    assert set(failing(verify(sample, "A single region of interest is shown."))) == {"roi_count"}
    sample.rois = []
    assert failing(verify(sample, "No region of interest was localised.")) == {}
    assert set(failing(verify(sample, "One region of interest is shown."))) == {"roi_count"}


def test_position_words_are_not_read_inside_longer_words():
    sample = chest_ct()
    # "lower-middle left-center" must not be read as "middle left" (which would be wrong).
    sample.rois = [roi_from_mask(box(40, 120, 80, 150), "cyst")]  # centre (0.3, 0.675)
    assert (sample.rois[0].position.vertical, sample.rois[0].position.horizontal) == ("lower-middle", "left-center")
    assert failing(verify(sample, "The cyst lies in the lower-middle left-center region.")) == {}
    # Compound grid words are exact; plain words are coarse and allow the neighbouring bin.
    assert set(failing(verify(sample, "The cyst lies in the upper-middle left-center region."))) == {"position"}
    assert failing(verify(sample, "The cyst lies in the middle left region.")) == {}
    assert set(failing(verify(sample, "The cyst lies in the upper right region."))) == {"position"}


def test_modality_synonyms_hybrids_and_compatible_names():
    assert modalities_named("An axial computed tomography slice; MR would help. A CXR.") == ["CT", "MRI", "X-Ray"]
    assert modalities_named("A PET/CT scan of the chest.") == ["PET"]
    assert modalities_named("Mr Smith had a pet scan.") == []  # acronyms are case-sensitive
    assert modalities_named("The gastric fundus seen at gastroscopy.") == ["Endoscopy"]
    sample = chest_ct()
    sample.modality = "MRI"
    assert failing(verify(sample, "A magnetic resonance image; the lesion is hyperintense.")) == {}
    assert failing(verify(sample, "An ultrasound (sonography) image.")) == {
        "modality": "text names Ultrasound but the record is MRI"
    }
    sample.modality = "Histopathology"
    assert failing(verify(sample, "An H&E stained slide viewed under the microscope.")) == {}
    sample.modality = "PET"
    assert failing(verify(sample, "A PET-CT image.")) == {}


def test_organ_check_is_conservative():
    sample = chest_ct()
    assert failing(verify(sample, "A CT image of the lung; the heart and liver dome are visible.")) == {}
    assert failing(verify(sample, "A chest CT.")) == {}
    assert set(failing(verify(sample, "A liver CT."))) == {"organ"}
    sample.organ = "whole body"  # shows every organ
    assert failing(verify(sample, "A CT image of the brain.")) == {}
    sample.organ = "specimen"
    checks = {c.name: c for c in verify(sample, "A CT image of the brain.")}
    assert checks["organ"].ok and checks["organ"].status == "not-verifiable"
    assert checks["organ"].detail == "not verifiable: record organ 'specimen' is not in the anatomy map"


def test_cited_background_knowledge_is_not_a_claim_about_the_image():
    sample = chest_ct()
    sample.knowledge = [Passage("mt-lung-003", "Nodules", "text", 1.0)]
    background = "Background: MRI shows 3 regions in 50% of cases, e.g. in the right lung [mt-lung-003]."
    assert claims_text(CORRECT + " " + background).strip() == CORRECT
    assert failing(verify(sample, CORRECT + " " + background)) == {}
    # The same statements without a citation are claims, and wrong ones; "50% of cases" is no area.
    uncited = "MRI shows 3 regions in 50% of cases. The nodule covers 50% of the image."
    assert set(failing(verify(sample, CORRECT + " " + uncited))) == {"modality", "roi_count", "area"}


def test_checks_that_cannot_be_performed_are_not_passes():
    sample = chest_ct()
    sample.rois = []
    checks = {c.name: c for c in verify(sample, "A nodule in the upper right of the image covers 4% of the image.")}
    assert (checks["position"].status, checks["position"].ok) == ("not-verifiable", True)
    assert checks["position"].detail == "not verifiable: text says upper right but the record has no ROI"
    assert checks["area"].status == "not-verifiable"
    sample = chest_ct()
    sample.modality = "Other"
    checks = {c.name: c for c in verify(sample, "A CT image.")}
    assert checks["modality"].status == "not-verifiable"
    assert checks["modality"].detail == "not verifiable: record modality 'Other' has no vocabulary to check against"


def test_text_stating_nothing_passes_with_readable_details():
    checks = verify(chest_ct(), "An image.")
    assert failing(checks) == {}
    assert [c.detail for c in checks] == [
        "text names no modality",
        "text states no position words",
        "text states no area",
        "text states no count of regions",
        "text states no side",
        "text names no imaged organ",
    ]
    assert {c.status for c in checks} == {"pass"}
