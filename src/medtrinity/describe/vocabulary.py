"""Words shared by the describers and the verifier: modality names, organ names, sides.

The `grounded` describer writes with these words and `verify` reads text back with the same ones, so
whatever grounded writes is something verify can check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first, so a phrase wins over a shorter word it starts with."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# ---------------------------------------------------------------- modalities
# How a describer names each modality in text. Each name contains a phrase that MODALITY_PATTERNS reads back.
MODALITY_NAMES: dict[str, str] = {
    "CT": "a CT (computed tomography) image",
    "MRI": "an MRI (magnetic resonance) image",
    "X-Ray": "an X-ray (radiograph)",
    "Ultrasound": "an ultrasound image",
    "Endoscopy": "an endoscopy image",
    "Dermoscopy": "a dermoscopy image",
    "Fundus": "a colour fundus photograph",
    "OCT": "an OCT (optical coherence tomography) image",
    "Histopathology": "a histopathology image",
    "Microscopy": "a microscopy image",
    "PET": "a PET (positron emission tomography) image",
    "Nuclear Medicine": "a nuclear medicine (scintigraphy) image",
    "Other": "a medical image of unspecified modality",
}
CHEST_XRAY_NAME = "a chest X-ray (radiograph)"

# Acronyms are matched case-sensitively (so "Mr" or "pet" never count); phrases case-insensitively.
_ACRONYMS: dict[str, tuple[str, ...]] = {
    "CT": (r"\bCT\b", r"\bCAT scan"),
    "MRI": (r"\bMRI?\b",),
    "X-Ray": (r"\bCXR\b",),
    "OCT": (r"\bOCT\b",),
    "Histopathology": (r"\bH&E\b", r"\bIHC\b"),
    "PET": (r"\bPET\b",),
    "Nuclear Medicine": (r"\bSPECT\b",),
}
_PHRASES: dict[str, tuple[str, ...]] = {
    "CT": (r"computed\s+tomograph",),
    "MRI": (r"magnetic\s+resonance",),
    "X-Ray": (r"\bx-?\s?rays?\b", r"radiograph", r"mammogra", r"roentgen"),
    "Ultrasound": (r"ultrasound", r"ultrasonogra", r"sonogra", r"echogra", r"echocardiogra"),
    "Endoscopy": (r"endoscop", r"colonoscop", r"gastroscop", r"duodenoscop"),
    "Dermoscopy": (r"dermoscop", r"dermatoscop"),
    "Fundus": (r"fundus\s+(?:photo|image|camera)", r"retinal\s+photograph", r"fundoscop", r"funduscop"),
    "OCT": (r"optical\s+coherence\s+tomograph",),
    "Histopathology": (r"histopatholog", r"histolog", r"h(?:a)?ematoxylin", r"immunohistochem", r"whole[- ]slide"),
    "Microscopy": (r"microscop", r"micrograph"),
    "PET": (r"positron\s+emission",),
    "Nuclear Medicine": (r"scintigra", r"nuclear\s+medicine", r"gamma\s+camera"),
}
# Hybrid scans name two modalities in one token; they count as the functional one and are read first.
_HYBRIDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bPET\s*[-/]\s*(?:CT|MRI?)\b"), "PET"),
    (re.compile(r"\bSPECT\s*[-/]\s*CT\b"), "Nuclear Medicine"),
)
MODALITY_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    modality: tuple(re.compile(p) for p in _ACRONYMS.get(modality, ()))
    + tuple(re.compile(p, re.IGNORECASE) for p in _PHRASES.get(modality, ()))
    for modality in MODALITY_NAMES
    if modality != "Other"
}
# Modalities a text may name together without contradicting the record (a stained slide is seen under a microscope).
COMPATIBLE_MODALITIES: dict[str, frozenset[str]] = {
    "Histopathology": frozenset({"Microscopy"}),
    "Microscopy": frozenset({"Histopathology"}),
}


def modality_name(modality: str, organ: str | None = None) -> str:
    """The noun phrase a describer uses for `modality` ("a CT (computed tomography) image")."""
    if modality == "X-Ray" and organ_group(organ) == "thorax":
        return CHEST_XRAY_NAME
    return MODALITY_NAMES.get(modality, MODALITY_NAMES["Other"])


def modalities_named(text: str) -> list[str]:
    """Every modality the text names, in order of first mention, without duplicates."""
    found: dict[str, int] = {}
    rest = text
    for pattern, modality in _HYBRIDS:
        for match in pattern.finditer(rest):
            found.setdefault(modality, match.start())
        rest = pattern.sub(" ", rest)
    for modality, patterns in MODALITY_PATTERNS.items():
        for pattern in patterns:
            match = pattern.search(rest)
            if match:
                found[modality] = min(found.get(modality, match.start()), match.start())
    return sorted(found, key=found.__getitem__)


# ---------------------------------------------------------------- texture words per modality
# (brighter, darker, similar) in each modality's own vocabulary.
BRIGHTNESS_WORDS: dict[str, tuple[str, str, str]] = {
    "CT": ("hyperdense", "hypodense", "isodense"),
    "MRI": ("hyperintense", "hypointense", "isointense"),
    "Ultrasound": ("hyperechoic", "hypoechoic", "isoechoic"),
    "X-Ray": ("an opacity", "a lucency", "of similar density"),
    "OCT": ("hyperreflective", "hyporeflective", "isoreflective"),
    "Dermoscopy": ("paler (less pigmented)", "more pigmented (darker)", "similarly pigmented"),
    "Histopathology": ("paler staining", "more darkly stained", "similarly stained"),
    "Fundus": ("brighter (paler)", "darker", "of similar brightness"),
    "Endoscopy": ("brighter", "darker", "of similar brightness"),
    "Microscopy": ("brighter", "darker", "of similar brightness"),
    "PET": ("brighter (higher displayed uptake)", "darker (lower displayed uptake)", "of similar displayed uptake"),
    "Nuclear Medicine": ("brighter (higher displayed uptake)", "darker (lower displayed uptake)",
                         "of similar displayed uptake"),
    "Other": ("brighter", "darker", "of similar brightness"),
}


def brightness_term(modality: str, word: str) -> str:
    """Map measure.brightness_word ("brighter"|"darker"|"similar") to the modality's term."""
    brighter, darker, similar = BRIGHTNESS_WORDS.get(modality, BRIGHTNESS_WORDS["Other"])
    return {"brighter": brighter, "darker": darker, "similar": similar}[word]


# ---------------------------------------------------------------- organs
# canonical organ -> (body-region group or None when it spans regions, synonyms read in text)
ORGANS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "brain": ("head", ("brain", "cerebral", "cerebrum", "cerebellum", "intracranial")),
    "head": ("head", ("head", "skull", "cranium")),
    "eye": ("eye", ("eye", "ocular", "globe")),
    "retina": ("eye", ("retina", "retinal", "optic disc", "macula")),
    "neck": ("neck", ("neck", "cervical soft tissue")),
    "thyroid": ("neck", ("thyroid",)),
    "chest": ("thorax", ("chest", "thorax", "thoracic")),
    "lung": ("thorax", ("lung", "lungs", "pulmonary")),
    "heart": ("thorax", ("heart", "cardiac")),
    "breast": ("thorax", ("breast", "breasts")),
    "abdomen": ("abdomen", ("abdomen", "abdominal")),
    "liver": ("abdomen", ("liver", "hepatic")),
    "kidney": ("abdomen", ("kidney", "kidneys", "renal")),
    "spleen": ("abdomen", ("spleen", "splenic")),
    "pancreas": ("abdomen", ("pancreas", "pancreatic")),
    "stomach": ("abdomen", ("stomach", "gastric")),
    "colon": ("abdomen", ("colon", "colonic", "colorectal", "large bowel")),
    "pelvis": ("abdomen", ("pelvis", "pelvic")),
    "prostate": ("abdomen", ("prostate",)),
    "bladder": ("abdomen", ("bladder",)),
    "uterus": ("abdomen", ("uterus", "uterine")),
    "skin": ("skin", ("skin", "cutaneous")),
    "hand": ("upper limb", ("hand", "wrist", "finger", "fingers")),
    "elbow": ("upper limb", ("elbow", "forearm", "humerus")),
    "knee": ("lower limb", ("knee", "tibia", "femur")),
    "foot": ("lower limb", ("foot", "ankle", "toe", "toes")),
    "spine": (None, ("spine", "spinal", "vertebra", "vertebrae")),
    "bone": (None, ("bone", "bones", "skeletal")),
    "blood": (None, ("blood", "blood smear")),
}
_ORGAN_BY_WORD: dict[str, str] = {word: organ for organ, (_, words) in ORGANS.items() for word in words}
ORGAN_WORD_PATTERN = alternation(_ORGAN_BY_WORD)


def canonical_organ(word: str | None) -> str | None:
    """The vocabulary's organ for a word or record value ("Lungs" -> "lung"), or None when unknown."""
    if not word:
        return None
    return _ORGAN_BY_WORD.get(word.strip().lower())


def organ_group(organ: str | None) -> str | None:
    canonical = canonical_organ(organ)
    return ORGANS[canonical][0] if canonical else None


# ---------------------------------------------------------------- sides
SIDES = ("left", "right")
# Structures that come in a left and a right one on the same image, so a stated side locates a finding.
PAIRED_STRUCTURES = (
    "lung", "lungs", "kidney", "breast", "adrenal", "adrenal gland", "ovary", "hemithorax", "hemisphere",
    "cerebral hemisphere", "upper lobe", "middle lobe", "lower lobe", "hilum", "pleural effusion",
)
PAIRED_STRUCTURE_PATTERN = alternation(PAIRED_STRUCTURES)
# The centre band of the image (normalised x in [0.4, 0.6)) is the "center" horizontal word: no side.
HORIZONTAL_SIDE: dict[str, str | None] = {
    "left": "left", "left-center": "left", "center": None, "right-center": "right", "right": "right",
}


def patient_side(horizontal: str, patient_left_on_image: str | None) -> str | None:
    """The patient's side shown where an ROI with this horizontal word sits, when the orientation is known."""
    image_side = HORIZONTAL_SIDE.get(horizontal)
    if image_side is None or patient_left_on_image not in SIDES:
        return None
    return "left" if image_side == patient_left_on_image else "right"


# ---------------------------------------------------------------- counts
NUMBER_WORDS: dict[str, int] = {
    "no": 0, "zero": 0, "a single": 1, "single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}


def count_phrase(count: int, singular: str, plural: str) -> str:
    """'One region of interest', '3 regions of interest' — a count verify reads back."""
    if count == 1:
        return f"one {singular}"
    return f"{count} {plural}"
