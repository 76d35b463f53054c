from medtrinity.caption import coarse_caption


def test_caption_from_full_metadata():
    assert coarse_caption("CT", "liver", "tumor", ["tumor"]) == "CT image of the liver showing a tumor."
    assert coarse_caption("MRI", "brain", "glioma", []) == "MRI image of the brain showing a glioma."
    assert coarse_caption("X-Ray", "chest", None, ["effusion", "mass"]) == "X-ray image of the chest showing effusion, mass."


def test_caption_says_what_is_unknown():
    assert coarse_caption("Ultrasound", None, None, []) == (
        "Ultrasound image (organ not specified by the source); no finding is given by the source."
    )
    assert coarse_caption("Fundus", "retina", None, ["normal"]) == (
        "Fundus photograph of the retina with no abnormality reported by the source."
    )
    assert coarse_caption(None, "colon", None, []).startswith("Medical image of unknown modality of the colon")


def test_caption_lists_and_organ_labels_read_naturally():
    assert coarse_caption("X-Ray", "chest", "atelectasis, pleural thickening", ["Atelectasis", "Pleural Thickening"]) == (
        "X-ray image of the chest showing atelectasis, pleural thickening."
    )
    assert coarse_caption("CT", "kidney", None, ["kidney"]) == "CT image of the kidney; no finding is given by the source."
