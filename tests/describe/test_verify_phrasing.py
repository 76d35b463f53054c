"""verify() on sentences written the way vision-language models write: each kind of statement, both ways.

Every case is one model-style sentence over a small record whose geometry is known exactly; the expected
value is the set of checks that fail (empty: the sentence is true of the record and must pass).
"""

from __future__ import annotations

import numpy as np
import pytest

from medtrinity.describe.verify import verify
from medtrinity.records import Origin, Sample
from medtrinity.roi.geometry import roi_from_mask

SIZE = 200


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def record(
    modality: str,
    organ: str | None,
    regions: list[tuple[tuple[int, int, int, int], str]],
    orientation: str | None = "right",
    kinds: dict[str, str] | None = None,
) -> Sample:
    rois = [roi_from_mask(box(*b), label) for b, label in regions]
    return Sample(
        id="r",
        source="synthetic",
        origin=Origin(file="x"),
        modality=modality,
        organ=organ,
        width=SIZE,
        height=SIZE,
        rois=rois,
        patient_left_on_image=orientation,
        label_kinds=kinds or {},
    )


def kidney_ct() -> Sample:
    # Radiological convention: the patient's left is on the image's right.
    # kidney #1 middle left-center (patient's right), kidney #2 middle right-center (patient's left),
    # tumor upper-middle right-center (patient's left), 900 px = 2.3 % (rounded half up from 2.25).
    return record(
        "CT", "kidney", [((40, 80, 80, 130), "kidney"), ((120, 80, 160, 130), "kidney"), ((130, 40, 160, 70), "tumor")]
    )


def chest_xray() -> Sample:
    # pneumothorax: centre (0.75, 0.25) -> upper-middle right-center, patient's left, 3600 px = 9.0 %
    return record("X-Ray", "chest", [((120, 20, 180, 80), "pneumothorax")])


def colonoscopy(polyps: int = 1) -> Sample:
    # polyp: centre (0.225, 0.275) -> upper-middle left-center, 2500 px = 6.3 %; a second one at bottom right
    boxes = [((20, 30, 70, 80), "polyp"), ((160, 160, 190, 190), "polyp")][:polyps]
    return record("Endoscopy", "colon", boxes, orientation=None)


def dermoscopy() -> Sample:
    # lesion: middle center, 3600 px = 9.0 %
    return record("Dermoscopy", "skin", [((70, 70, 130, 130), "skin lesion")], orientation=None)


def brain_mri() -> Sample:
    # enhancing tumor: centre (0.3, 0.3) -> upper-middle left-center, patient's right;
    # edema: centre (0.35, 0.35) around it, also the patient's right
    return record("MRI", "brain", [((50, 50, 70, 70), "GD-enhancing tumor"), ((30, 30, 110, 110), "peritumoral edema")])


def failing(sample: Sample, text: str) -> set[str]:
    return {check.name for check in verify(sample, text) if check.status == "fail"}


RECORDS = {"kidney": kidney_ct, "chest": chest_xray, "colon": colonoscopy, "skin": dermoscopy, "brain": brain_mri}


def test_the_records_are_where_the_cases_say():
    positions = {
        name: [(r.label, r.position.vertical, r.position.horizontal, r.area_ratio) for r in make().rois]
        for name, make in RECORDS.items()
    }
    assert positions == {
        "kidney": [
            ("kidney", "middle", "left-center", 5.0),
            ("kidney", "middle", "right-center", 5.0),
            ("tumor", "upper-middle", "right-center", 2.3),
        ],
        "chest": [("pneumothorax", "upper-middle", "right-center", 9.0)],
        "colon": [("polyp", "upper-middle", "left-center", 6.3)],
        "skin": [("skin lesion", "middle", "center", 9.0)],
        "brain": [
            ("GD-enhancing tumor", "upper-middle", "left-center", 1.0),
            ("peritumoral edema", "upper-middle", "left-center", 16.0),
        ],
    }


CASES = [
    # ---- statements bound to their own subject
    ("kidney", "A heterogeneous mass arises from the left kidney.", set()),
    ("kidney", "A heterogeneous mass arises from the right kidney.", {"side"}),
    ("kidney", "There is a left renal mass with central necrosis.", set()),
    ("kidney", "There is a right renal mass.", {"side"}),
    ("kidney", "The left kidney harbors a solitary exophytic mass.", set()),
    ("kidney", "In the right kidney, there is an enhancing tumour.", {"side"}),
    ("kidney", "The tumor is seen in the upper right of the image. It occupies about 2% of the image.", set()),
    ("kidney", "The tumor is seen in the upper right of the image. It occupies about 20% of the image.", {"area"}),
    ("kidney", "The tumor is seen in the lower left of the image.", {"position"}),
    ("kidney", "The right kidney lies on the left side of the image and the left kidney on the right.", set()),
    ("kidney", "The right kidney is seen on the right side of the image.", {"side"}),
    ("kidney", "The liver occupies the upper left of the image.", set()),  # no ROI is the liver
    # ---- counts with nouns
    ("kidney", "A solitary renal mass is identified.", set()),
    ("kidney", "Two masses are seen in the left kidney.", {"roi_count"}),
    ("kidney", "Both kidneys are visible; three regions of interest are marked.", set()),
    ("kidney", "Four regions of interest are marked.", {"roi_count"}),
    ("colon", "A single sessile polyp is seen.", set()),
    ("colon", "Three polyps are seen.", {"roi_count"}),
    ("colon", "Multiple polyps are scattered across the mucosa.", {"roi_count"}),
    ("colon", "No polyp is visible in this frame.", {"roi_count"}),
    ("colon", "No other polyps are seen.", set()),
    ("brain", "A single enhancing tumor with surrounding edema.", set()),
    ("brain", "Three enhancing tumors are present.", {"roi_count"}),
    ("skin", "There is a single region of interest.", set()),
    ("skin", "Two regions of interest are annotated.", {"roi_count"}),
    # ---- laterality adjectives and lobes
    ("chest", "Frontal chest radiograph demonstrating a left-sided pneumothorax.", set()),
    ("chest", "Frontal chest radiograph demonstrating a right-sided pneumothorax.", {"side"}),
    ("chest", "A pneumothorax is seen in the left upper lobe region.", set()),
    ("chest", "A pneumothorax occupies the apex of the right hemithorax.", {"side"}),
    ("chest", "Pneumothorax of the left hemithorax.", set()),
    ("brain", "Axial FLAIR image showing a right frontoparietal tumor with surrounding edema.", set()),
    ("brain", "Axial FLAIR image showing a left frontoparietal tumor.", {"side"}),
    # ---- image-frame phrases
    ("chest", "The pneumothorax is on the right of the image.", set()),
    ("chest", "The pneumothorax is on the left of the image.", {"side"}),
    ("chest", "A pneumothorax is seen in the upper right of the image.", set()),
    ("chest", "A pneumothorax is seen in the top-left of the image.", {"position"}),
    ("colon", "A polyp sits in the top-left part of the frame.", set()),
    ("colon", "A polyp sits in the lower left corner.", {"position"}),
    ("colon", "The polyp lies in the left half of the image.", set()),
    ("colon", "The polyp lies in the right half of the image.", {"side"}),
    # ---- natural position words, with neighbouring-bin tolerance for coarse words
    ("chest", "There is a pneumothorax in the left upper zone.", set()),
    ("chest", "There is a pneumothorax in the left lower zone.", {"position"}),
    ("chest", "A pneumothorax is visible at the left lung apex.", set()),
    ("chest", "The pneumothorax is in the top right of the image.", set()),  # top right for upper-middle right-center
    ("chest", "The pneumothorax is in the lower left of the image.", {"position"}),
    ("colon", "The polyp is located near the upper edge.", set()),
    ("colon", "The polyp is located near the bottom of the image.", {"position"}),
    ("skin", "The lesion is centrally located within the image.", set()),
    ("skin", "The lesion lies at the periphery of the image.", {"position"}),
    ("colon", "The polyp lies towards the periphery of the image.", set()),
    # ---- organ claims with a finer anatomy map
    ("kidney", "Axial CT slice through the liver and both kidneys.", set()),
    ("kidney", "Axial CT slice through the brain.", {"organ"}),
    ("kidney", "This abdominal CT at the level of the kidneys shows a mass.", set()),
    ("kidney", "This chest CT shows a mass.", {"organ"}),
    ("colon", "Colonoscopy image of the sigmoid colon showing a polyp.", set()),
    ("colon", "Endoscopic view of the stomach showing a polyp.", {"organ"}),
    ("colon", "A polyp arises from the gastric mucosa.", {"organ"}),
    ("skin", "Dermoscopic image of a pigmented lesion on the forearm.", set()),
    ("skin", "Dermoscopic image of the liver.", {"organ"}),
    # ---- areas in words and bounds; percentages of other things
    ("colon", "The polyp takes up roughly a tenth of the image.", set()),
    ("colon", "The polyp takes up about a quarter of the image.", {"area"}),
    ("colon", "The polyp covers less than 10% of the frame.", set()),
    ("colon", "The polyp covers less than 1% of the frame.", {"area"}),
    ("skin", "The lesion occupies under half of the image.", set()),
    ("skin", "The lesion occupies more than half of the image.", {"area"}),
    ("chest", "The pneumothorax occupies about 10 % of the left hemithorax.", set()),
    ("chest", "The classifier reports pneumothorax with 95 % confidence.", set()),
    ("chest", "Chest radiography has a sensitivity of 90% for large pneumothoraces.", set()),
    ("chest", "The pneumothorax occupies approximately 9% of the image.", set()),
    ("chest", "The pneumothorax occupies approximately 30% of the image.", {"area"}),
    # ---- MRI sequences name MRI
    ("brain", "Axial T2-weighted image of the brain.", set()),
    ("brain", "FLAIR and DWI sequences show the tumor; T1 post-contrast shows enhancement.", set()),
    ("kidney", "Axial T2-weighted image through the kidneys.", {"modality"}),
    ("kidney", "The mass is bright on FLAIR.", {"modality"}),
    ("chest", "This CT image of the chest shows a pneumothorax.", {"modality"}),
    # ---- negated, hypothetical and recommendation clauses are not claims
    ("chest", "The right lung is clear.", set()),
    ("chest", "There is no pneumothorax on the right, and the right costophrenic angle is sharp.", set()),
    ("kidney", "No mass in the right kidney.", set()),
    ("kidney", "The mass could represent a renal cell carcinoma of the right kidney.", set()),
    ("chest", "CT is recommended if clinically indicated.", set()),
    ("chest", "Follow-up MRI to rule out an underlying mass.", set()),
    ("colon", "Biopsy is recommended to rule out malignancy in the stomach.", set()),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[f"{n}: {t[:60]}" for n, t, _ in CASES])
def test_model_sentences(name, text, expected):
    assert failing(RECORDS[name](), text) == expected


def test_a_subject_named_by_number_or_size():
    sample = colonoscopy(polyps=2)  # polyp #1 upper-middle left-center (6.3 %), polyp #2 bottom right (2.3 %)
    assert failing(sample, "The polyp #2 is in the lower right of the image.") == set()
    assert failing(sample, "The polyp #1 is in the lower right of the image.") == {"position"}
    assert failing(sample, "The larger polyp is in the upper left; the smaller one in the lower right.") == set()
    assert failing(sample, "The smaller polyp is in the upper left of the image.") == {"position"}
    assert failing(sample, "Two polyps are seen.") == set()
    assert failing(sample, "A solitary polyp is seen.") == {"roi_count"}


def test_failure_details_name_the_subject():
    checks = {c.name: c for c in verify(kidney_ct(), "A heterogeneous mass arises from the right kidney.")}
    assert checks["side"].detail == "text says the patient's right but tumor is on the patient's left"
    checks = {c.name: c for c in verify(colonoscopy(), "Endoscopic view of the stomach showing a polyp.")}
    assert checks["organ"].detail == "text says the image shows stomach but the record's organ is colon (colon)"
    checks = {c.name: c for c in verify(colonoscopy(), "Three polyps are seen.")}
    assert checks["roi_count"].detail == "text says 3 polyp but the record has 1 (polyp)"


def test_label_kinds_decide_what_a_generic_noun_stands_for():
    # A slice whose only ROIs are anatomy: "a mass" is about no ROI, so neither its side nor its count is checked.
    sample = record(
        "CT", "kidney", [((40, 80, 80, 130), "kidney"), ((120, 80, 160, 130), "kidney")], kinds={"kidney": "anatomy"}
    )
    assert failing(sample, "A mass arises from the right kidney.") == set()
    checks = {c.name: c for c in verify(sample, "Two masses are seen.")}
    assert checks["roi_count"].status == "not-verifiable"
    # Declared a finding, an unusual label is what "the lesion" means.
    sample = record("CT", "kidney", [((130, 40, 160, 70), "Bosniak IV")], kinds={"Bosniak IV": "finding"})
    assert failing(sample, "The lesion lies in the lower left of the image.") == {"position"}
    assert failing(sample, "The lesion lies in the upper right of the image.") == set()
