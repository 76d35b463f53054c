"""Words shared by the describers and the verifier: modality names, organ names, sides.

The `grounded` describer writes with these words and `verify` reads text back with the same ones, so
whatever grounded writes is something verify can check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from medtrinity.describe.anatomy import (
    ANATOMY,
    ORGAN_WORD_PATTERN,
    body_region,
    canonical_organ,
)

__all__ = ["ORGAN_WORD_PATTERN", "canonical_organ"]  # re-exported for the describers


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
    "CT": (r"\bCT\b", r"\bCAT scan", r"\bHU\b"),
    # MR sequences name MRI: "T2-weighted", "FLAIR", "DWI", "T1 post-contrast", "STIR".
    "MRI": (
        r"\bMRI?\b",
        (
            r"\bT[12]\s?-?\s?(?:weighted|W|WI|FLAIR|c|ce|Gd|C\+|\+C|post[- ]?(?:contrast|gad\w*)|"
            r"(?:sequence|image|imaging|signal|hyper\w*|hypo\w*)s?)\b"
        ),
        r"\bT2\*",
        r"\b(?:on|and|or)\s+T[12]\b",
        r"\bT1/T2\b",
        r"\bFLAIR\b",
        r"\bDWI\b",
        r"\bADC\s+map",
        r"\bSTIR\b",
        r"\bSWI\b",
    ),
    "X-Ray": (r"\bCXR\b",),
    "OCT": (r"\bOCT\b",),
    "Histopathology": (r"\bH&E\b", r"\bIHC\b"),
    "PET": (r"\bPET\b",),
    "Nuclear Medicine": (r"\bSPECT\b",),
    "Ultrasound": (r"\bUS\b",),
}
_PHRASES: dict[str, tuple[str, ...]] = {
    "CT": (r"computed\s+tomograph",),
    "MRI": (
        r"magnetic\s+resonance",
        r"(?<!\w)(?:T[12]|diffusion|proton[- ]density|susceptibility)[- ]weighted",
        r"fluid[- ]attenuated\s+inversion",
        r"gadolinium",
    ),
    # "radiograph", never "radiographic": a CT is often said to have radiographic features.
    "X-Ray": (
        r"\bx-?\s?rays?\b",
        r"\bradiograph(?:s|y)?\b",
        r"mammogra",
        r"roentgen",
        r"\bplain\s+films?\b",
        r"\bchest\s+films?\b",
        r"fluoroscop",
    ),
    "Ultrasound": (
        r"ultrasound",
        r"ultrasonogra",
        r"sonogra",
        r"echogra",
        r"echocardiogra",
        r"\bdoppler\b",
        r"\b(?:hyper|hypo|an|iso)?echoic\b",
        r"\bechogenic",
        r"\bB-mode\b",
    ),
    "Endoscopy": (r"endoscop", r"colonoscop", r"gastroscop", r"duodenoscop"),
    "Dermoscopy": (r"dermoscop", r"dermatoscop"),
    "Fundus": (r"fundus\s+(?:photo|image|camera)", r"retinal\s+photograph", r"fundoscop", r"funduscop"),
    "OCT": (r"optical\s+coherence\s+tomograph",),
    "Histopathology": (r"histopatholog", r"histolog", r"h(?:a)?ematoxylin", r"immunohistochem", r"whole[- ]slide"),
    "Microscopy": (r"microscop", r"micrograph"),
    "PET": (r"positron\s+emission",),
    "Nuclear Medicine": (r"scintigra", r"nuclear\s+medicine", r"gamma\s+camera", r"\bbone\s+scan"),
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
    if modality == "X-Ray" and organ_group(organ) == "chest":
        return CHEST_XRAY_NAME
    return MODALITY_NAMES.get(modality, MODALITY_NAMES["Other"])


def modality_mentions(text: str) -> list[tuple[str, int, int]]:
    """Every place the text names a modality: (modality, start, end), in order; a hybrid counts once."""
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []
    for pattern, modality in _HYBRIDS:
        for match in pattern.finditer(text):
            found.append((modality, match.start(), match.end()))
            taken.append(match.span())
    for modality, patterns in MODALITY_PATTERNS.items():
        for pattern in patterns:
            for match in pattern.finditer(text):
                if all(match.end() <= a or match.start() >= b for a, b in taken):
                    found.append((modality, match.start(), match.end()))
    return sorted(found, key=lambda f: f[1])


def modalities_named(text: str) -> list[str]:
    """Every modality the text names, in order of first mention, without duplicates."""
    return list(dict.fromkeys(modality for modality, _, _ in modality_mentions(text)))


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
    "Nuclear Medicine": (
        "brighter (higher displayed uptake)",
        "darker (lower displayed uptake)",
        "of similar displayed uptake",
    ),
    "Other": ("brighter", "darker", "of similar brightness"),
}


def brightness_term(modality: str, word: str) -> str:
    """Map measure.brightness_word ("brighter"|"darker"|"similar") to the modality's term."""
    brighter, darker, similar = BRIGHTNESS_WORDS.get(modality, BRIGHTNESS_WORDS["Other"])
    return {"brighter": brighter, "darker": darker, "similar": similar}[word]


# ---------------------------------------------------------------- organs
# The anatomy map lives in `anatomy`; these names stay for the describers that import them.
# canonical organ -> (body region or None when it spans regions, words read in text)
ORGANS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    organ: (body_region(organ), words) for organ, (_, words) in ANATOMY.items()
}


def organ_group(organ: str | None) -> str | None:
    """The body region of an organ word or record value ("lung" -> "chest"), or None."""
    return body_region(canonical_organ(organ))


# ---------------------------------------------------------------- sides
SIDES = ("left", "right")
# Structures that come in a left and a right one (or lie on one side of the body), so "left kidney",
# "right upper lobe", "left frontoparietal" state the patient's side. Heart chambers are not among them: the
# left ventricle is named for its circulation, and says nothing about where on the image a finding is.
PAIRED_STRUCTURES = (
    "lung",
    "lungs",
    "lung field",
    "lung base",
    "lung apex",
    "kidney",
    "renal",
    "breast",
    "adrenal",
    "adrenal gland",
    "ovary",
    "ovarian",
    "adnexa",
    "adnexal",
    "hemithorax",
    "hemisphere",
    "cerebral hemisphere",
    "cerebral",
    "cerebellar",
    "cerebellum",
    "frontal",
    "parietal",
    "temporal",
    "occipital",
    "frontoparietal",
    "temporoparietal",
    "parieto-occipital",
    "parietooccipital",
    "frontotemporal",
    "fronto-parietal",
    "thalamus",
    "thalamic",
    "basal ganglia",
    "caudate",
    "putamen",
    "insula",
    "lateral ventricle",
    "orbit",
    "eye",
    "maxillary sinus",
    "mastoid",
    "parotid",
    "lobe",
    "upper lobe",
    "middle lobe",
    "lower lobe",
    "upper zone",
    "mid zone",
    "lower zone",
    "mid-zone",
    "midzone",
    "apex",
    "apical",
    "base",
    "basal",
    "basilar",
    "hilum",
    "hilar",
    "perihilar",
    "pleural",
    "pleura",
    "pleural effusion",
    "effusion",
    "pneumothorax",
    "costophrenic angle",
    "costophrenic",
    "hemidiaphragm",
    "diaphragm",
    "axilla",
    "axillary",
    "clavicle",
    "clavicular",
    "shoulder",
    "arm",
    "hip",
    "femur",
    "femoral",
    "knee",
    "tibia",
    "leg",
    "foot",
    "hand",
    "ureter",
    "iliac",
    "psoas",
    "testis",
    "testicle",
    "thyroid lobe",
    "chest",
    "chest wall",
    "flank",
)
PAIRED_STRUCTURE_PATTERN = alternation(PAIRED_STRUCTURES)
# The centre band of the image (normalised x in [0.4, 0.6)) is the "center" horizontal word: no side.
HORIZONTAL_SIDE: dict[str, str | None] = {
    "left": "left",
    "left-center": "left",
    "center": None,
    "right-center": "right",
    "right": "right",
}


def patient_side(horizontal: str, patient_left_on_image: str | None) -> str | None:
    """The patient's side shown where an ROI with this horizontal word sits, when the orientation is known."""
    image_side = HORIZONTAL_SIDE.get(horizontal)
    if image_side is None or patient_left_on_image not in SIDES:
        return None
    return "left" if image_side == patient_left_on_image else "right"


# ---------------------------------------------------------------- counts
NUMBER_WORDS: dict[str, int] = {
    "no": 0,
    "zero": 0,
    "a single": 1,
    "single": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a solitary": 1,
    "solitary": 1,
    "an isolated": 1,
    "isolated": 1,
    "a lone": 1,
    "lone": 1,
    "both": 2,
    "a pair of": 2,
    "a couple of": 2,
}
# Words that state "more than one" without a number.
SEVERAL_WORDS = ("multiple", "several", "numerous", "a few", "many", "various", "a number of")


def count_phrase(count: int, singular: str, plural: str) -> str:
    """'One region of interest', '3 regions of interest' — a count verify reads back."""
    if count == 1:
        return f"one {singular}"
    return f"{count} {plural}"
