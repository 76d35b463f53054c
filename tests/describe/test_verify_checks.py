"""Each check of verify() at its edges, with the exact Check it returns: the statuses and details a reader sees,
border tolerances on a non-square image, "another study" cues at their reach, counts of touching parts, areas
summed over ROIs, and statements that must not stop the checking of later ones."""

from __future__ import annotations

import numpy as np
import pytest

from medtrinity.describe.verify import verify
from medtrinity.records import Check, Origin, Sample
from medtrinity.roi.geometry import roi_from_mask

WIDTH, HEIGHT = 200, 100  # not square: 2 % of the width (4 px) is not 2 % of the height (2 px)


def record(
    *rois: tuple[str, tuple[int, int, int, int]],
    modality: str = "CT",
    organ: str | None = "chest",
    patient_left_on_image: str | None = "right",
    kind: str | None = None,
) -> Sample:
    made = []
    for label, (x0, y0, x1, y1) in rois:
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        mask[y0:y1, x0:x1] = True
        roi = roi_from_mask(mask, label)
        roi.kind = kind
        made.append(roi)
    return Sample(
        id="r1",
        source="synthetic",
        origin=Origin(file="a.png"),
        modality=modality,
        organ=organ,
        labels=[label for label, _ in rois],
        width=WIDTH,
        height=HEIGHT,
        rois=made,
        patient_left_on_image=patient_left_on_image,
    )


def check(sample: Sample, text: str, name: str) -> Check:
    (found,) = [c for c in verify(sample, text) if c.name == name]
    return found


NODULE = ("nodule", (130, 30, 170, 70))  # centre (0.75, 0.5): middle right-center, 1600 px = 8.0 %
LEFT_NODULE = ("nodule", (10, 10, 30, 30))  # centre (0.1, 0.2): upper-middle left, 400 px = 2.0 %


# ---------------------------------------------------------------- modality
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A rounded nodule is seen.", Check("modality", True, "text names no modality", "pass")),
        (
            "This MRI and ultrasound image shows a nodule.",
            Check("modality", False, "text names MRI, Ultrasound but the record is CT", "fail"),
        ),
        ("Axial CT image showing a nodule.", Check("modality", True, "text names CT, as recorded", "pass")),
    ],
)
def test_modality_check_results(text, expected):
    assert check(record(NODULE), text, "modality") == expected


def test_a_compatible_modality_and_one_without_vocabulary():
    tissue = record(("tissue", (10, 10, 30, 30)), modality="Histopathology", organ="colon")
    assert check(tissue, "This microscopy image shows tissue.", "modality") == Check(
        "modality", True, "text names Microscopy, compatible with Histopathology", "pass"
    )
    thermal = record(NODULE, modality="Thermography")
    assert check(thermal, "This CT image shows a nodule.", "modality") == Check(
        "modality",
        True,
        "not verifiable: record modality 'Thermography' has no vocabulary to check against",
        "not-verifiable",
    )


@pytest.mark.parametrize(
    ("text", "other_study"),
    [
        ("Axial CT image. An MRI one two three four five six recommended.", True),  # 6 words to the cue: near
        ("Axial CT image. An MRI one two three four five six seven recommended.", False),  # 7: too far
        ("Axial CT image. Recommended one two three four five six MRI.", True),
        ("Axial CT image. Recommended one two three four five six seven MRI.", False),
        ("Axial CT image. MRI is recommended for further characterisation.", True),
    ],
)
def test_a_cue_makes_a_modality_another_study_up_to_six_words_away(text, other_study):
    result = check(record(NODULE), text, "modality")
    assert result.ok is other_study
    assert result.detail == ("text names CT, as recorded" if other_study else "text names MRI but the record is CT")


# ---------------------------------------------------------------- position at the image border
@pytest.mark.parametrize(
    ("box", "text", "ok"),
    [
        ((4, 2, 20, 20), "The nodule touches the top and left edges of the image.", True),  # 2 % of 100 and of 200
        ((180, 80, 196, 98), "The nodule touches the bottom and right edges of the image.", True),  # 196 = 200 - 4
        ((5, 3, 20, 20), "The nodule touches the top edge of the image.", False),
        ((5, 3, 20, 20), "The nodule reaches the left border.", False),
        ((180, 80, 195, 97), "The nodule touches the bottom edge of the image.", False),
        ((180, 80, 195, 97), "The nodule touches the right edge of the image.", False),
    ],
)
def test_border_words_allow_two_percent_of_each_side(box, text, ok):
    result = check(record(("nodule", box)), text, "position")
    assert result.ok is ok
    assert result.status == ("pass" if ok else "fail")


def test_position_statements_on_a_record_without_roi_are_each_not_verifiable():
    text = "A nodule is in the upper left. Another is in the lower right."
    assert check(record(), text, "position") == Check(
        "position",
        True,
        "not verifiable: text says upper left but the record has no ROI | text says lower right "
        "but the record has no ROI",
        "not-verifiable",
    )


def test_a_position_failure_shows_every_candidate_roi():
    parts = record(LEFT_NODULE, ("nodule", (30, 10, 50, 30)))
    assert check(parts, "A nodule lies in the lower right.", "position") == Check(
        "position",
        False,
        "text says lower right but nodule is at upper-middle left (2.0%); nodule is at upper-middle left-center (2.0%)",
        "fail",
    )


# ---------------------------------------------------------------- area
@pytest.mark.parametrize(
    ("text", "detail", "ok"),
    [
        ("The nodule covers less than 10% of the image.", "stated areas agree: under 10%", True),
        ("The nodule covers more than 5% of the image.", "stated areas agree: over 5%", True),
        (
            "The nodule covers about a tenth of the image.",
            "stated areas agree: about a tenth of the image (~10%)",
            True,
        ),
        (
            "The nodule covers more than 20% of the image.",
            "text says over 20% but nodule is at middle right-center (8.0%)",
            False,
        ),
        (
            "The nodule covers less than a quarter of the image.",
            "stated areas agree: less than a quarter of the image (~25%)",
            True,
        ),
        (
            "The nodule covers roughly a quarter of the image.",
            "text says roughly a quarter of the image (~25%) but nodule is at middle right-center (8.0%)",
            False,
        ),
    ],
)
def test_area_details_say_the_bound_and_the_words(text, detail, ok):
    result = check(record(NODULE), text, "area")
    assert (result.detail, result.ok) == (detail, ok)


def test_areas_of_several_rois_may_be_stated_together_but_not_each_at_random():
    two = record(("nodule", (10, 10, 34, 30)), NODULE)  # 2.4 % and 8.0 %
    assert check(two, "The nodules together cover about 10.4% of the image.", "area") == Check(
        "area", True, "stated areas agree: 10.4%", "pass"
    )
    assert check(two, "The nodules cover about 5% of the image.", "area") == Check(
        "area",
        False,
        "text says 5% but nodule is at upper-middle left (2.4%); nodule is at middle right-center (8.0%)",
        "fail",
    )


def test_area_statements_on_a_record_without_roi_are_each_not_verifiable():
    text = "A nodule covers about 8% of the image. Another covers 3% of the image."
    assert check(record(), text, "area") == Check(
        "area",
        True,
        "not verifiable: text says about 8% but the record has no ROI | text says 3% but the record has no ROI",
        "not-verifiable",
    )


# ---------------------------------------------------------------- counts
@pytest.mark.parametrize(
    ("rois", "text", "expected"),
    [
        (
            (NODULE,),
            "There are several regions of interest.",
            Check("roi_count", False, "text says several region(s) but the record has 1", "fail"),
        ),
        (
            (LEFT_NODULE, NODULE),
            "There are several regions of interest.",
            Check("roi_count", True, "stated counts agree: several region(s)", "pass"),
        ),
        (
            (LEFT_NODULE, NODULE),
            "Several nodules are seen.",
            Check("roi_count", True, "stated counts agree: several nodule", "pass"),
        ),
        (
            (NODULE,),
            "Several nodules are seen.",
            Check("roi_count", False, "text says several nodule but the record has 1 (nodule)", "fail"),
        ),
        # "no mass" says nothing about nodules; the later "no nodule" is still checked
        (
            (LEFT_NODULE, NODULE),
            "No mass is seen. No nodule is seen.",
            Check("roi_count", False, "text says 0 nodule but the record has 2 (nodule)", "fail"),
        ),
        # a count of cysts cannot be checked here; the count of nodules after it still is
        (
            (LEFT_NODULE, NODULE),
            "Two cysts are seen. There are three nodules.",
            Check("roi_count", False, "text says 3 nodule but the record has 2 (nodule)", "fail"),
        ),
        (
            (LEFT_NODULE, NODULE),
            "There are two regions of interest. Two cysts and three polyps are described.",
            Check(
                "roi_count",
                True,
                "stated counts agree: 2 region(s); not verifiable: text counts 2 cyst but no ROI is of "
                "that kind | text counts 3 polyp but no ROI is of that kind",
                "pass",
            ),
        ),
    ],
)
def test_count_check_results(rois, text, expected):
    assert check(record(*rois), text, "roi_count") == expected


GLIOMA = (("necrotic tumor core", (10, 10, 30, 30)), ("GD-enhancing tumor", (130, 30, 170, 70)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "There is one tumor.",
            Check("roi_count", True, "stated counts agree: 1 tumor", "pass"),
        ),  # parts of one lesion
        (
            "There are three tumors.",
            Check(
                "roi_count",
                False,
                "text says 3 tumor but the record has 2 (necrotic tumor core, GD-enhancing tumor)",
                "fail",
            ),
        ),
        ("There is one enhancing tumor.", Check("roi_count", True, "stated counts agree: 1 tumor", "pass")),
        (
            "There are two enhancing tumors.",
            Check("roi_count", False, "text says 2 tumor but the record has 1 (GD-enhancing tumor)", "fail"),
        ),
        (
            "There are two large enhancing tumors.",  # "large" is in no label: it narrows nothing, "enhancing" still does
            Check("roi_count", False, "text says 2 tumor but the record has 1 (GD-enhancing tumor)", "fail"),
        ),
    ],
)
def test_counts_of_a_lesion_in_parts_and_of_the_parts_an_adjective_names(text, expected):
    assert check(record(*GLIOMA, modality="MRI", organ="brain"), text, "roi_count") == expected


@pytest.mark.parametrize(
    ("second", "one_tumour"),
    [
        ((30, 10, 50, 30), True),  # touching on the right edge of the first
        ((10, 30, 30, 50), True),  # touching below the first
        ((40, 5, 60, 20), False),  # apart to the right, higher up
        ((5, 40, 15, 60), False),  # apart below, overlapping columns
    ],
)
@pytest.mark.parametrize("order", ["first", "second"])
def test_pieces_of_one_label_count_as_one_only_where_their_boxes_touch(second, one_tumour, order):
    first = ("tumor", (10, 10, 30, 30))
    rois = (first, ("tumor", second)) if order == "first" else (("tumor", second), first)
    result = check(record(*rois), "There is one tumor.", "roi_count")
    assert result.ok is one_tumour


def test_apart_to_the_right_of_a_tall_piece_is_two():
    result = check(record(("tumor", (10, 10, 20, 50)), ("tumor", (40, 10, 60, 20))), "There is one tumor.", "roi_count")
    assert result == Check("roi_count", False, "text says 1 tumor but the record has 2 (tumor)", "fail")


@pytest.mark.parametrize(
    ("label", "detail"),
    [
        ("hamartoma", "stated counts agree: 1 hamartoma"),
        ("Hamartoma", "stated counts agree: 1 hamartoma"),  # a label's word counts whatever its case
        ("mole", "stated counts agree: 1 mole"),  # four letters are a word
        ("ggo", "text states no count of regions"),  # three are not (abbreviations)
    ],
)
def test_the_words_of_finding_labels_are_count_nouns(label, detail):
    found = record((label, (10, 10, 30, 30)), kind="finding")
    assert check(found, f"There is one {label.lower()} in the image.", "roi_count").detail == detail


# ---------------------------------------------------------------- sides
def test_side_checks_on_a_record_without_roi_and_without_orientation():
    assert check(record(), "The nodule is on the patient's left.", "side") == Check(
        "side", True, "not verifiable: the record has no ROI", "not-verifiable"
    )
    unknown = record(LEFT_NODULE, patient_left_on_image="unknown")
    assert check(unknown, "The nodule is on the patient's left.", "side") == Check(
        "side", True, "not verifiable: the patient's orientation on the image is unknown", "not-verifiable"
    )


def test_an_unknown_orientation_does_not_stop_the_check_of_an_image_side():
    text = "The nodule is on the patient's left. It lies on the right side of the image."
    assert check(record(LEFT_NODULE, patient_left_on_image=None), text, "side") == Check(
        "side", False, "text puts it on the image's right but nodule is at upper-middle left (2.0%)", "fail"
    )


def test_a_side_said_of_another_structure_does_not_stop_the_check():
    text = "The liver is on the patient's right. The nodule is on the patient's left."
    assert check(record(LEFT_NODULE), text, "side") == Check(
        "side", False, "text says the patient's left but nodule is on the patient's right", "fail"
    )


def test_a_statement_about_another_structure_or_the_image_side_does_not_stop_the_checks_after_it():
    nodule = record(LEFT_NODULE)
    assert check(nodule, "The liver lies in the upper right. The nodule is in the bottom right.", "position") == Check(
        "position", False, "text says bottom right but nodule is at upper-middle left (2.0%)", "fail"
    )
    assert check(nodule, "The liver occupies 30% of the image. The nodule covers 40% of the image.", "area") == Check(
        "area", False, "text says 40% but nodule is at upper-middle left (2.0%)", "fail"
    )
    assert check(
        nodule, "The nodule lies on the left side of the image. It is on the patient's left.", "side"
    ) == Check("side", False, "text says the patient's left but nodule is on the patient's right", "fail")


def test_a_bare_side_fits_the_image_or_the_patient_but_not_neither():
    # The patient's left shown on the image's left: an ROI on the image's left is on the patient's left.
    same_way = record(LEFT_NODULE, patient_left_on_image="left")
    assert check(same_way, "The nodule is on the left.", "side").ok is True
    assert check(same_way, "The nodule is on the right.", "side") == Check(
        "side", False, "text says the patient's right but nodule is on the patient's left", "fail"
    )


def test_a_side_failure_names_each_candidate_roi():
    pair = record(LEFT_NODULE, ("nodule", (30, 10, 50, 30)))
    assert check(pair, "A nodule is on the patient's left.", "side") == Check(
        "side",
        False,
        "text says the patient's left but nodule is on the patient's right; nodule is on the patient's right",
        "fail",
    )


def test_the_typographic_apostrophe_reads_as_the_plain_one():
    assert check(record(LEFT_NODULE), "The nodule is on the patient’s left.", "side") == Check(
        "side", False, "text says the patient's left but nodule is on the patient's right", "fail"
    )
    assert check(record(LEFT_NODULE), "CT image of the patient’s left kidney.", "organ") == Check(
        "organ", False, "text says the image shows kidney but the record's organ is chest (chest)", "fail"
    )


# ---------------------------------------------------------------- organ
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A nodule is seen.", Check("organ", True, "text names no imaged organ", "pass")),
        (
            "CT image of the liver and an image of the kidney.",
            Check(
                "organ",
                False,
                "text says the image shows liver, kidney but the record's organ is chest (chest)",
                "fail",
            ),
        ),
        (
            "CT image of the chest and an image of the lungs.",
            Check("organ", True, "named organs (chest, lungs) fit the record's chest", "pass"),
        ),
        # a hypothetical sentence is skipped, and the claim after it still read
        (
            "If this were an image of the liver, it would look different. CT image of the kidney.",
            Check("organ", False, "text says the image shows kidney but the record's organ is chest (chest)", "fail"),
        ),
    ],
)
def test_organ_check_results(text, expected):
    assert check(record(NODULE), text, "organ") == expected


def test_in_a_field_of_view_image_the_naked_eye_is_no_organ():
    polyp = record(("polyp", (10, 10, 30, 30)), modality="Endoscopy", organ="colon", patient_left_on_image=None)
    assert check(polyp, "The polyp is visible to the naked eye in the colon.", "organ") == Check(
        "organ", True, "named organs (colon) fit the record's colon", "pass"
    )
    assert check(polyp, "The polyp is visible to the naked eye, next to the stomach.", "organ") == Check(
        "organ", False, "text says the image shows stomach but the record's organ is colon (colon)", "fail"
    )


def test_a_label_is_recognised_in_the_text_whatever_its_case():
    # Sources write labels capitalised ("Granuloma"), models write them in lower case, or shout them.
    for labels, text in (
        (("Hamartoma", "Granuloma"), "The granuloma lies in the upper-middle left."),
        (("hamartoma", "granuloma"), "The GRANULOMA lies in the upper-middle left."),
    ):
        pair = record((labels[0], (10, 10, 30, 30)), (labels[1], (150, 70, 190, 95)))
        # Said of the granuloma (bottom right), not of the hamartoma that is where the text says.
        assert check(pair, text, "position") == Check(
            "position", False, f"text says upper-middle left but {labels[1]} is at bottom right (5.0%)", "fail"
        )
