from medtrinity.caption import coarse_caption


def test_caption_shows_the_disease_and_labels_of_kind_finding():
    assert (
        coarse_caption("CT", "liver", "tumor", ["tumor"], {"tumor": "finding"})
        == "CT image of the liver showing a tumor."
    )
    assert coarse_caption("MRI", "brain", "glioma", []) == "MRI image of the brain showing a glioma."
    kinds = {"effusion": "finding", "mass": "finding"}
    assert (
        coarse_caption("X-Ray", "chest", None, ["effusion", "mass"], kinds)
        == "X-ray image of the chest showing effusion, mass."
    )
    assert coarse_caption(
        "X-Ray", "chest", "atelectasis, pleural thickening", ["Atelectasis", "Pleural Thickening"]
    ) == ("X-ray image of the chest showing atelectasis, pleural thickening.")


def test_labels_that_are_not_findings_are_never_shown_as_findings():
    kinds = {"Support Devices": "device"}
    assert coarse_caption("X-Ray", "chest", None, ["Support Devices"], kinds) == (
        "X-ray image of the chest with support devices present; no diagnosis is given by the source."
    )
    assert coarse_caption("Histopathology", "colorectum", None, ["adipose tissue"], {"adipose tissue": "tissue"}) == (
        "Histopathology image of the colorectum (tissue class: adipose tissue); no diagnosis is given by the source."
    )
    assert coarse_caption("CT", "kidney", None, ["kidney"], {"kidney": "anatomy"}) == (
        "CT image of the kidney; no diagnosis is given by the source."
    )
    # A label whose meaning nobody declared is not a finding either.
    assert (
        coarse_caption("CT", "kidney", None, ["lesion-ish"])
        == "CT image of the kidney; no diagnosis is given by the source."
    )


def test_negatives_normal_case_and_uncertain_are_said_as_what_they_are():
    assert coarse_caption("X-Ray", "chest", None, ["no pneumothorax"], {"no pneumothorax": "negative"}) == (
        "X-ray image of the chest with no pneumothorax reported."
    )
    assert coarse_caption("Fundus", "retina", None, ["normal"], {"normal": "normal"}) == (
        "Fundus photograph of the retina with no abnormality reported by the source."
    )
    assert coarse_caption(
        "CT", "kidney", None, ["kidney", "renal tumor"], {"kidney": "anatomy", "renal tumor": "case"}
    ) == ("CT image of the kidney from a case recorded with renal tumor (not annotated on this slice).")
    kinds = {"Pneumonia (uncertain)": "uncertain", "Edema": "finding"}
    assert coarse_caption("X-Ray", "chest", "edema", ["Pneumonia (uncertain)", "Edema"], kinds) == (
        "X-ray image of the chest showing an edema, with pneumonia marked uncertain by the source."
    )
    kinds = {"no lung opacity": "negative", "abnormality other than lung opacity": "finding"}
    assert coarse_caption("X-Ray", "lung", None, list(kinds), kinds) == (
        "X-ray image of the lung showing an abnormality other than lung opacity, with no lung opacity reported."
    )


def test_caption_says_what_is_unknown():
    assert coarse_caption("Ultrasound", None, None, []) == (
        "Ultrasound image (organ not specified by the source); no diagnosis is given by the source."
    )
    assert coarse_caption(None, "colon", None, []).startswith("Medical image of unknown modality of the colon")
