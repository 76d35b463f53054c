"""normalise_terms and build_query: exact strings."""

from __future__ import annotations

import pytest

from medtrinity.knowledge.query import build_query, normalise_terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CXR shows a right PTX", "chest X-ray shows a right pneumothorax"),
        ("US of the liver", "ultrasound of the liver"),
        ("tell us about it", "tell us about it"),  # lower-case "us" is a word
        ("USG and MUS", "ultrasound and smooth muscle"),  # no "US" inside other words
        ("MR brain, MRI spine, MR imaging", "MRI brain, MRI spine, MRI"),
        ("CT scan of the abdomen", "CT of the abdomen"),
        ("Computed Tomography of the chest", "CT of the chest"),
        ("H&E stained slide; H & E section", "hematoxylin and eosin stained slide; hematoxylin and eosin section"),
        ("H&E-stained patch", "hematoxylin and eosin-stained patch"),
        ("xray, x ray and X-rays", "X-ray, X-ray and X-ray"),
        ("T1CE and T1Gd and T1c", "contrast-enhanced T1 and contrast-enhanced T1 and contrast-enhanced T1"),
        ("T1 and T2 FLAIR", "T1 and T2 FLAIR"),
        (
            "NPDR, PDR and DR",
            "non-proliferative diabetic retinopathy, proliferative diabetic retinopathy and diabetic retinopathy",
        ),
        ("Pleural_Thickening|Effusion", "Pleural Thickening Effusion"),
        ("No Finding", "normal"),
        ("BCC vs MEL vs NV", "basal cell carcinoma vs melanoma vs melanocytic nevus"),
        ("NCR, ED and ET", "necrotic tumor core, peritumoral edema and enhancing tumor"),
        ("et al. and ed. by", "et al. and ed. by"),  # lower case: ordinary words
        ("STR and TUM", "cancer-associated stroma and colorectal adenocarcinoma epithelium"),
        ("30 HU", "30 Hounsfield units"),
        ("  spaced \n  out  ", "spaced out"),
        ("", ""),
    ],
)
def test_normalise_terms(text, expected):
    assert normalise_terms(text) == expected
    assert normalise_terms(expected) == expected  # idempotent: the index normalises queries again


def test_build_query_weights_the_finding_and_drops_repeats():
    query = build_query("CT image of the liver showing liver tumor", ["liver", "tumor"], "liver tumor", "liver", "CT")
    assert query == "liver tumor. liver tumor. liver. tumor. CT"  # the disease twice; labels and organ are context


def test_build_query_makes_the_disease_the_topic_and_other_labels_context():
    labels = ["Atelectasis (uncertain)", "Pneumothorax", "Support Devices"]
    assert build_query("", labels, "pneumothorax", "chest", "X-Ray") == (
        "pneumothorax. pneumothorax. Atelectasis. Support Devices. chest. X-ray. thorax lungs"
    )
    # without a disease every label is the topic; "(uncertain)" qualifies a finding and is no search term
    assert build_query("", ["Lung Opacity", "Pneumonia (uncertain)"], None, "chest", "X-Ray") == (
        "Lung Opacity. Pneumonia. Lung Opacity. Pneumonia. chest. X-ray. thorax lungs"
    )


def test_build_query_without_a_finding_is_about_the_organ_not_the_captions_wording():
    caption = "CT image of the head; no finding is given by the source."
    assert build_query(caption, [], None, "head", "CT") == "head. head. CT. brain skull"  # not the pancreas's head
    assert build_query(caption, [], None, None, None) == normalise_terms(caption)  # nothing else to go on


def test_build_query_expands_label_codes():
    assert build_query("", ["BCC"], None, "skin", "Dermoscopy") == (
        "basal cell carcinoma. basal cell carcinoma. skin. Dermoscopy"
    )
    assert build_query("X-Ray image of the chest", ["Pleural_Thickening"], None, "chest", "X-Ray") == (
        "Pleural Thickening. Pleural Thickening. chest. X-ray. thorax lungs"
    )


def test_build_query_skips_uninformative_terms():
    assert build_query("", ["0", "1"], None, None, "Other") == ""
    assert build_query("  ", [], "Cardiomegaly", "chest", "Other") == "Cardiomegaly. Cardiomegaly. chest. thorax lungs"
    # The same term given as disease and label counts once (then doubled as the finding).
    assert build_query("", ["pneumonia", "Pneumonia"], "pneumonia", None, None) == "pneumonia. pneumonia"
