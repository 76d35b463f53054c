"""The anatomy map behind organ claims: organ within body region, gut segments, skin on body sites, and every
organ a named recipe or the demo emits."""

from __future__ import annotations

import pytest

from medtrinity.describe.anatomy import body_region, canonical_organ, organ_fits
from medtrinity.describe.vocabulary import organ_group
from medtrinity.sources.base import load_recipe, named_recipes
from medtrinity.sources.layouts.demo import DEMO_IMAGES
from medtrinity.sources.layouts.slake import ORGAN_NAMES as SLAKE_ORGANS
from medtrinity.sources.layouts.vqa_rad import ORGAN_NAMES as VQA_RAD_ORGANS


def emitted_organs() -> set[str]:
    organs = {load_recipe(name).organ for name in named_recipes()}
    organs |= {image.organ for image in DEMO_IMAGES}
    organs |= set(SLAKE_ORGANS.values()) | set(VQA_RAD_ORGANS.values())
    return {organ for organ in organs if organ}


def test_every_organ_a_recipe_emits_is_in_the_map():
    missing = sorted(organ for organ in emitted_organs() if canonical_organ(organ) is None)
    assert missing == []
    for organ in ("colorectum", "spine", "shoulder", "skeleton", "lymph node", "tibia", "kidney", "breast"):
        assert organ in emitted_organs()


@pytest.mark.parametrize(
    ("word", "canonical", "region"),
    [
        ("Lungs", "lung", "chest"),
        ("renal", "kidney", "abdomen"),
        ("colorectal", "colorectum", "abdomen"),
        ("gastric", "stomach", "abdomen"),
        ("forearm", "forearm", "upper limb"),
        ("tibia", "tibia", "lower limb"),
        ("optic disc", "optic disc", "head"),
        ("lymph node", "lymph node", None),
        ("whole-body", "body", None),
        ("pelvic cavity", "pelvis", "abdomen"),
        ("mediastinum", "mediastinum", "chest"),
    ],
)
def test_words_map_to_organs_within_regions(word, canonical, region):
    assert canonical_organ(word) == canonical
    assert body_region(canonical) == region


@pytest.mark.parametrize(
    ("claimed", "recorded", "modality", "fits"),
    [
        ("liver", "kidney", "CT", True),  # a slice through the kidneys also cuts the liver
        ("brain", "kidney", "CT", False),
        ("chest", "lung", "X-Ray", True),
        ("stomach", "colon", "Endoscopy", False),  # upper vs lower GI
        ("rectum", "colon", "Endoscopy", True),
        ("gastrointestinal tract", "colon", "Endoscopy", True),
        ("liver", "colorectum", "Histopathology", False),
        ("colon", "colorectum", "Histopathology", True),
        ("forearm", "skin", "Dermoscopy", True),  # a body site of a skin lesion
        ("liver", "skin", "Dermoscopy", False),
        ("macula", "retina", "Fundus", True),
        ("knee", "retina", "Fundus", False),
        ("neck", "lymph node", "Ultrasound", True),
        ("chest", "skeleton", "Nuclear Medicine", True),
        ("knee", "tibia", "X-Ray", True),
        ("abdomen", "shoulder", "MRI", False),
    ],
)
def test_organ_fits(claimed, recorded, modality, fits):
    assert organ_fits(claimed, recorded, modality) is fits


def test_organ_group_keeps_its_meaning_for_the_describers():
    assert organ_group("chest") == "chest" and organ_group("lung") == "chest"
    assert organ_group("unknown thing") is None
