"""A corpus of (record, text) cases for measuring `verify` on text written the way vision-language models write.

The texts imitate GPT-4V / LLaVA-Med / Qwen-VL / Gemini output (prose, "Findings: … Impression: …" reports,
bullet lists, one-line answers), not the grounded describer's wording, and are built from the fields of real
records (the demo and every named recipe's miniature, read back from Parquet).

Kinds of case (`Case.kind`):
- "correct": every checkable statement is true for the record: modality (MRI sequences, "contrast-enhanced CT",
  "PA chest radiograph" only where the record says so), organ / body region, the subject ROI's position in free
  words derived from its position bins (coarse words such as "upper" span two bins; "top" for an upper-middle
  ROI is the tolerated neighbouring-bin wording), its side of the image, the patient's side (only where
  `patient_left_on_image` is known; radiological convention), its area in numbers, fractions or bounds, and
  counts with nouns ("two polyps", "a solitary renal mass"). They also carry distractors that are not claims
  about the image: negations ("no pneumothorax on the right", "the left lung is clear", true for the record),
  recommendations and hypotheticals naming other modalities and organs, percentages of other things
  ("95% confidence", "a less than 1% risk of cancer"), and quoted background with a citation.
- one kind per contradicted fact, `KINDS`: "modality", "organ" (a different body region), "image_side",
  "patient_side", "position" (the vertical word moved >= 2 bins away), "area" (x3 or /3 and >= 5 points
  away), "count". Each is one of the correct texts with exactly that one fact changed: the text is rendered
  from `Facts` and the contradiction re-renders it from `replace(facts, <field>=<wrong value>)`;
  `Case.changed` says which field changed and how.

Every record gets VARIANTS_PER_RECORD correct texts (variant 0 states every fact that applies to it); each
contradiction re-renders one of them, and `build_corpus` keeps up to MAX_PER_KIND per kind, round-robin over
sources. Everything is seeded by (SEED, record id), so the same records give the same corpus.

Adding a case: a new phrasing goes into the phrase tables below (a true phrase in `_true_modalities` /
`ORGAN_PHRASES` / `NOUNS`, a distractor in `RECOMMENDATIONS` / `PERCENT_FACTS` / `DIFFERENTIALS`, a wrong
value in `WRONG_MODALITIES` / `WRONG_ORGANS`) or into a template (`_TEMPLATES`, `_intro`); a new contradiction
kind needs a `Facts` field, its rendering, a line in `_wrong`, `KIND_FIELD` and `KINDS`. A phrase must stay true
for every record it can be drawn for: each word is derived from the record's fields (`_vertical_word`,
`_horizontal_word`, `_patient_side`, `_area`), never written for one fixed record.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from medtrinity.records import HORIZONTAL_WORDS, ROI, VERTICAL_WORDS, Sample

SEED = 9
KINDS = ("modality", "organ", "image_side", "patient_side", "position", "area", "count")
MAX_PER_KIND = 28  # contradictions per kind, spread over sources round-robin; correct texts stay the majority
VARIANTS_PER_RECORD = 2  # correct texts per record


@dataclass(frozen=True)
class Case:
    record_id: str
    source: str
    kind: str  # "correct", or the one fact of KINDS the text gets wrong
    text: str
    changed: str = ""  # for a contradiction: "vertical: upper -> lower"
    base: str = ""  # for a contradiction: the correct text (also in the corpus) it changes one fact of

    @property
    def contradiction(self) -> bool:
        return self.kind != "correct"


# ---------------------------------------------------------------- the facts a text is rendered from
@dataclass(frozen=True)
class Facts:
    """What a text states. A contradiction is the same text rendered with one field replaced."""

    modality: str  # a records.MODALITIES value
    organ: str | None = None  # an organ phrase ("of the abdomen")
    vertical: str | None = None  # a key of VERTICAL_SPAN: the subject's vertical word
    horizontal: str | None = None  # a key of HORIZONTAL_SPAN: the subject's horizontal word (image frame)
    patient_side: str | None = None  # "left" / "right": the patient's side the subject is on
    area: float | None = None  # percent of the image the subject covers, as stated
    true_area: float | None = None  # the record's area (bounds are worded against it)
    count: int | None = None  # how many of the counted noun there are


# Which Facts field each contradiction kind changes.
KIND_FIELD = {
    "modality": "modality",
    "organ": "organ",
    "image_side": "horizontal",
    "patient_side": "patient_side",
    "position": "vertical",
    "area": "area",
    "count": "count",
}

# Vertical words and the position bins (indices into VERTICAL_WORDS) each one covers.
VERTICAL_SPAN = {"top": {0}, "upper": {0, 1}, "middle": {2}, "lower": {3, 4}, "bottom": {4}}
# Horizontal words (image frame) and the bins each covers; "central" names no side.
HORIZONTAL_SPAN = {
    "far left": {0},
    "left": {0, 1},
    "left of centre": {1},
    "central": {2},
    "right of centre": {3},
    "right": {3, 4},
    "far right": {4},
}
MIRROR = {
    "far left": "far right",
    "left": "right",
    "left of centre": "right of centre",
    "far right": "far left",
    "right": "left",
    "right of centre": "left of centre",
}
SIDE_OF = {
    "far left": "left",
    "left": "left",
    "left of centre": "left",
    "central": None,
    "right of centre": "right",
    "right": "right",
    "far right": "right",
}
OTHER_SIDE = {"left": "right", "right": "left"}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _vertical_word(roi: ROI, rng: random.Random, coarse: bool) -> str:
    """A true vertical word for the ROI's bin; `coarse` allows the tolerated neighbouring-bin word."""
    b = VERTICAL_WORDS.index(roi.position.vertical)
    if b == 0:
        return rng.choice(["top", "upper"])
    if b == 1:
        return "top" if coarse and rng.random() < 0.2 else "upper"
    if b == 2:
        return "middle"
    if b == 3:
        return "bottom" if coarse and rng.random() < 0.2 else "lower"
    return rng.choice(["bottom", "lower"])


def _horizontal_word(roi: ROI, rng: random.Random) -> str:
    b = HORIZONTAL_WORDS.index(roi.position.horizontal)
    return [
        lambda: rng.choice(["left", "far left"]),
        lambda: rng.choice(["left", "left", "left of centre"]),
        lambda: "central",
        lambda: rng.choice(["right", "right", "right of centre"]),
        lambda: rng.choice(["right", "far right"]),
    ][b]()


def _patient_side(roi: ROI, sample: Sample) -> str | None:
    """Radiological convention made explicit: `patient_left_on_image` names the image side showing the patient's
    left; an ROI in the centre band is on neither side."""
    image_side = SIDE_OF[
        {"left": "left", "left-center": "left", "center": "central", "right-center": "right", "right": "right"}[
            roi.position.horizontal
        ]
    ]
    if image_side is None or sample.patient_left_on_image not in ("left", "right"):
        return None
    return "left" if image_side == sample.patient_left_on_image else "right"


def _wrong_vertical(roi: ROI, rng: random.Random) -> str:
    """A vertical word whose bins are all >= 2 bins away from the ROI's (so no neighbour tolerance excuses it)."""
    b = VERTICAL_WORDS.index(roi.position.vertical)
    far = [w for w, span in VERTICAL_SPAN.items() if min(abs(i - b) for i in span) >= 2]
    return rng.choice(far)


def _wrong_area(a: float) -> float:
    """Far outside the ROI's area: three times (or a third of) it, and at least 5 points away."""
    if a <= 28:
        return round(max(3 * a, a + 5), 1)
    return round(a / 3, 1)


def _wrong_count(n: int, rng: random.Random) -> int:
    return rng.choice([2, 2, 3]) if n == 1 else rng.choice([n - 1, n + 1])


# ---------------------------------------------------------------- phrase tables
GENERIC_MODALITIES: dict[str, list[str]] = {
    "CT": ["an axial CT image", "a computed tomography (CT) slice", "a CT scan"],
    "MRI": ["an axial T1-weighted MR image", "an MRI scan", "an axial T2-weighted MRI slice"],
    "X-Ray": ["a plain radiograph", "an X-ray image", "a conventional radiograph"],
    "Ultrasound": ["a B-mode ultrasound image", "a sonographic image", "an ultrasound scan"],
    "Endoscopy": ["an endoscopic image", "a still frame from an endoscopy", "an endoscopic view"],
    "Dermoscopy": ["a dermoscopic image", "a dermatoscopy photograph", "a dermoscopy image"],
    "Fundus": ["a colour fundus photograph", "a color fundus image", "a retinal photograph"],
    "OCT": ["an OCT B-scan", "an optical coherence tomography image", "a macular OCT scan"],
    "Histopathology": ["an H&E-stained histology section", "a histopathology image", "a stained tissue section"],
    "Microscopy": ["a microscopy image", "a micrograph", "a microscopic image"],
    "PET": ["a PET image", "a positron emission tomography scan", "an FDG PET scan"],
    "Nuclear Medicine": ["a nuclear medicine scan", "a scintigraphy image", "a planar scintigram"],
}
# The modality a model might confuse each one with (never a compatible one: histology is seen under a microscope).
WRONG_MODALITIES: dict[str, list[str]] = {
    "CT": ["MRI", "Ultrasound"],
    "MRI": ["CT", "PET"],
    "X-Ray": ["CT", "MRI"],
    "Ultrasound": ["MRI", "CT"],
    "Endoscopy": ["CT", "Dermoscopy"],
    "Dermoscopy": ["Endoscopy", "Fundus"],
    "Fundus": ["OCT", "Dermoscopy"],
    "Histopathology": ["Endoscopy", "Dermoscopy"],
    "Microscopy": ["Dermoscopy", "Fundus"],
    "Nuclear Medicine": ["CT", "PET", "MRI"],
}


def _frontal_chest(sample: Sample) -> bool:
    return any(r.label.startswith("lung field") for r in sample.rois) or sample.source in (
        "siim-acr-pneumothorax",
        "rsna-pneumonia",
        "chestx-ray14",
    )


def _true_modalities(sample: Sample) -> list[str]:
    """Phrases naming the record's modality that are true for this record (view, sequence, contrast, stain)."""
    m, organ, ref = sample.modality, sample.organ, sample.reference_text or ""
    if m == "X-Ray" and organ in ("chest", "lung"):
        # The organ has its own slot ("… of the chest"), so the modality phrase does not name it.
        if "View position: PA" in ref:
            return ["a PA radiograph", "a posteroanterior (PA) X-ray", "a frontal PA film"]
        if "lateral" in sample.origin.file:
            return ["a lateral radiograph", "a lateral X-ray"]
        if _frontal_chest(sample):
            return ["a frontal radiograph", "a frontal X-ray", "a frontal projection radiograph"]
        return ["a radiograph", "an X-ray", "a plain film"]
    axial = sample.origin.axis == "axial"
    if m == "MRI" and sample.source == "brats2021" and axial:  # the recipe's default sequence is FLAIR
        return ["an axial T2-weighted FLAIR MR image", "an axial FLAIR MRI slice", "a FLAIR-sequence MR image"]
    if m == "CT" and (sample.source == "kits23" or "with contrast" in ref):
        if axial:
            return [
                "an axial contrast-enhanced CT slice",
                "a contrast-enhanced computed tomography image",
                "an axial CT image",
            ]
        return ["a contrast-enhanced CT image", "a contrast-enhanced computed tomography scan", "a CT image"]
    if m == "CT":
        return ["a CT image", "a computed tomography (CT) slice", "a CT scan"]
    if m == "MRI":
        return ["an MR image", "an MRI scan", "a magnetic resonance image"]
    if m == "Ultrasound" and organ == "heart":
        return ["an echocardiographic image", "an ultrasound image", "an echocardiography frame"]
    if m == "Ultrasound" and sample.source == "busi":
        return ["a grayscale B-mode ultrasound image", "a sonographic image", "an ultrasound image"]
    if m == "Ultrasound":  # not "B-mode": some carry a colour Doppler overlay
        return ["an ultrasound image", "a sonographic image", "an ultrasound scan"]
    if m == "Endoscopy":
        return ["an endoscopic image", "a still frame from an endoscopy", "an endoscopic view"]
    if m == "Histopathology" and any("IHC" in label for label in sample.labels):
        return ["an immunohistochemically stained section", "an IHC-stained histology image", "a histopathology image"]
    if m == "Histopathology":
        return [
            "an H&E-stained histology tile",
            "a hematoxylin and eosin (H&E) stained section",
            "a histopathology patch",
        ]
    if m == "Nuclear Medicine":
        return [
            "a whole-body bone scintigraphy image",
            "a planar bone scan (scintigraphy)",
            "a nuclear medicine bone scan",
        ]
    if m == "X-Ray":
        return ["a plain radiograph", "an X-ray", "a conventional radiograph"]
    return GENERIC_MODALITIES[m]


ORGAN_PHRASES: dict[str, list[str]] = {
    "kidney": ["of the abdomen at the level of the kidneys", "through the kidneys", "of the abdomen"],
    "brain": ["of the brain", "of the head"],
    "head": ["of the head", "of the brain"],
    "chest": ["of the chest", "of the thorax"],
    "lung": ["of the chest", "of the lungs"],
    "liver": ["of the liver", "of the upper abdomen"],
    "abdomen": ["of the abdomen"],
    "colon": ["of the colon", "of the colonic lumen", "of the large bowel"],
    "colorectum": ["of colorectal tissue", "from a colorectal specimen"],
    "skin": ["of the skin", "of a skin lesion"],
    "breast": ["of the breast"],
    "retina": ["of the retina", "of the ocular fundus"],
    "heart": ["of the heart"],
    "pelvis": ["of the pelvis"],
    "shoulder": ["of the shoulder"],
    "tibia": ["of the tibia", "of the lower leg"],
    "spine": ["of the spine"],
    "skeleton": ["of the whole skeleton"],
    "lymph node": ["of a lymph node"],
}
# Anatomy in a different body region from the record's (organs that span regions or have no natural
# confusion — skin, retina, spine, skeleton, lymph node — get no organ contradiction).
WRONG_ORGANS: dict[str, list[str]] = {
    "kidney": ["of the brain", "of the chest", "of the knee"],
    "liver": ["of the brain", "of the chest"],
    "abdomen": ["of the brain", "of the chest"],
    "brain": ["of the abdomen", "of the chest", "of the pelvis"],
    "head": ["of the abdomen", "of the chest"],
    "chest": ["of the abdomen", "of the pelvis", "of the skull"],
    "lung": ["of the abdomen", "of the pelvis"],
    "colon": ["of the esophagus", "of the bronchial tree"],
    "colorectum": ["of lung tissue", "of breast tissue"],
    "breast": ["of the thyroid", "of the liver"],
    "heart": ["of the liver", "of the kidney"],
    "pelvis": ["of the thyroid", "of the neck"],
    "shoulder": ["of the knee", "of the ankle"],
    "tibia": ["of the forearm", "of the chest"],
}


@dataclass(frozen=True)
class Noun:
    """How a model names an ROI label: singular, plural (None: not counted), whether it is an abnormality, the word
    for "no other …" (None: no such negation), and whether it takes "the" (one of a kind: "the liver")."""

    singular: str
    plural: str | None
    finding: bool
    other: str | None = None
    definite: bool = False


NOUNS: dict[str, Noun] = {
    "tumor": Noun("renal mass", "renal masses", True, "mass"),
    "cyst": Noun("renal cyst", "renal cysts", True, "cyst"),
    "polyp": Noun("polyp", "polyps", True, "polyp"),
    "skin lesion": Noun("pigmented skin lesion", "pigmented skin lesions", True, "lesion"),
    "lesion": Noun("pigmented skin lesion", "pigmented skin lesions", True, "lesion"),
    "benign lesion": Noun("breast lesion", "breast lesions", True, "lesion"),
    "malignant lesion": Noun("suspicious breast mass", "suspicious breast masses", True, "mass"),
    "pneumothorax": Noun("pneumothorax", "pneumothoraces", True, "pneumothorax"),
    "nodule": Noun("pulmonary nodule", "pulmonary nodules", True, "nodule"),
    "lung opacity": Noun("airspace opacity", "airspace opacities", True, "opacity"),
    "liver lesion": Noun("focal liver lesion", "focal liver lesions", True, "lesion"),
    "peritumoral edema": Noun("area of peritumoral edema", None, True, "tumor component"),
    "gd-enhancing tumor": Noun("enhancing tumor component", None, True, "tumor component"),
    "necrotic tumor core": Noun("necrotic tumor core", None, True, "tumor component"),
    "brain edema": Noun("area of edema", None, True, "lesion"),
    "brain enhancing tumor": Noun("enhancing tumor", None, True, "lesion"),
    "cardiomegaly": Noun("enlarged cardiac silhouette", None, True),
    "focal hyperintensity": Noun("hyperintense focus", "hyperintense foci", True),
    "hypoechoic focal region": Noun("hypoechoic focus", "hypoechoic foci", True),
    "liver": Noun("liver", None, False, definite=True),
    "spleen": Noun("spleen", None, False, definite=True),
    "left lung": Noun("left lung", None, False, definite=True),
    "optic disc": Noun("optic disc", None, False, definite=True),
    "cell": Noun("cell", "cells", False),
    "head": Noun("head", None, False, definite=True),
}

# A differential a model adds ("could represent …"): hypothetical, never a claim about the image.
DIFFERENTIALS: dict[str, str] = {
    "tumor": "a renal cell carcinoma, although an oncocytoma cannot be excluded",
    "cyst": "a simple cortical cyst",
    "polyp": "an adenomatous polyp",
    "skin lesion": "a melanocytic naevus, although melanoma cannot be excluded on the image alone",
    "lesion": "a melanocytic naevus, although melanoma cannot be excluded on the image alone",
    "benign lesion": "a fibroadenoma",
    "malignant lesion": "a carcinoma",
    "nodule": "a granuloma or an early neoplasm",
    "lung opacity": "an infectious consolidation such as pneumonia",
    "liver lesion": "a haemangioma or a metastasis",
    "peritumoral edema": "vasogenic edema around a high-grade glioma",
    "gd-enhancing tumor": "a high-grade glioma",
    "necrotic tumor core": "a high-grade glioma with central necrosis",
    "brain edema": "vasogenic edema around a tumor",
    "brain enhancing tumor": "a high-grade glioma or a metastasis",
}

# Recommendations naming another modality (and sometimes other anatomy): not claims about this image.
RECOMMENDATIONS: dict[str, list[str]] = {
    "kidney": [
        "Further characterisation with MRI of the kidneys is recommended.",
        "An ultrasound could be used for follow-up.",
    ],
    "brain": [
        "Staging CT of the chest, abdomen and pelvis could be considered if a metastasis is suspected.",
        "Correlation with a prior CT of the head is recommended.",
    ],
    "head": [
        "MRI of the brain would be more sensitive if symptoms persist.",
        "Correlation with a prior CT of the head is recommended.",
    ],
    "chest": [
        "A follow-up CT of the chest is recommended if clinically indicated.",
        "If symptoms persist, a chest CT should be considered.",
    ],
    "lung": ["A follow-up CT of the chest is recommended if clinically indicated."],
    "liver": ["Correlation with a contrast-enhanced CT or an ultrasound of the liver is suggested."],
    "abdomen": ["Further evaluation with MRI of the abdomen is recommended if clinically indicated."],
    "colon": [
        "Histopathological examination after polypectomy is recommended.",
        "CT colonography could be considered if the colonoscopy is incomplete.",
    ],
    "colorectum": ["Correlation with the endoscopic and CT staging findings is advised."],
    "skin": [
        "Excision with histopathological examination is recommended if the lesion changes.",
        "Follow-up dermoscopy in three months could be considered.",
    ],
    "breast": [
        "Correlation with mammography is recommended.",
        "An MRI of both breasts may be considered for further characterisation.",
    ],
    "heart": ["Cardiac MRI could be considered for further assessment."],
    "pelvis": ["MRI of the pelvis may be helpful for further characterisation."],
    "shoulder": ["Correlation with shoulder radiographs is suggested."],
    "tibia": ["MRI could be considered if symptoms persist."],
    "skeleton": ["Correlation with CT or MRI of any focal uptake is suggested."],
    "retina": ["OCT of the macula may be considered."],
    "lymph node": ["Fine-needle aspiration or a CT of the neck could be considered."],
    "spine": ["MRI of the spine is recommended if neurological symptoms are present."],
}

# General knowledge with a percentage of something other than this image's area.
PERCENT_FACTS: dict[str, str] = {
    "kidney": "Renal cell carcinoma accounts for about 90% of malignant kidney tumours in adults",
    "cyst": "Bosniak I cysts carry a malignancy risk close to 0%",
    "brain": "Gliomas account for roughly 80% of malignant primary brain tumours",
    "pneumothorax": "Primary spontaneous pneumothorax recurs in up to 30% of patients",
    "chest": "On a PA film the heart normally measures less than 50% of the thoracic width",
    "nodule": "Solitary pulmonary nodules under 6 mm carry a malignancy risk below 1%",
    "colon": "Polyps smaller than 10 mm have a less than 1% risk of containing cancer",
    "skin": "Melanoma accounts for only about 1% of skin cancers but causes most skin cancer deaths",
    "bcc": "Basal cell carcinoma accounts for about 80% of non-melanoma skin cancers",
    "breast": "About 80% of breast lumps that are biopsied prove to be benign",
    "liver": "Hepatic haemangiomas are found in up to 20% of the population at autopsy",
    "colorectum": "Adenocarcinomas make up more than 90% of colorectal cancers",
    "heart": "A normal left ventricular ejection fraction is about 55 to 70%",
    "tibia": "Non-ossifying fibromas are found in up to 30% of children",
    "skeleton": "About 50% of the injected tracer dose localises in bone",
    "head": "Non-contrast CT detects acute subarachnoid haemorrhage with close to 100% sensitivity in the first 6 hours",
    "shoulder": "Rotator cuff tears are present in about 20% of the general population",
}
CONFIDENCES = ["Confidence: 95%.", "I am about 90% confident in this interpretation.", "(model confidence ~85%)"]

# Findings named in the source's labels that have no ROI: said as the source says them.
LABEL_FINDINGS: dict[str, str] = {
    "edema": "pulmonary edema",
    "lung opacity": "a lung opacity",
    "atelectasis": "atelectasis",
    "pleural effusion (uncertain)": "a possible pleural effusion",
    "cardiomegaly (uncertain)": "possible cardiomegaly",
    "fracture (uncertain)": "a possible fracture",
    "pneumonia (uncertain)": "possible pneumonia",
    "atelectasis (uncertain)": "possible atelectasis",
    "support devices": "support devices",
    "pneumothorax": "a pneumothorax",
    "effusion": "a pleural effusion",
    "pleural thickening": "pleural thickening",
    "adipose tissue": "adipose tissue",
    "background": "slide background with little tissue",
    "debris": "necrotic debris",
    "lymphocytes": "sheets of lymphocytes",
    "mucus": "mucus",
    "smooth muscle": "smooth muscle",
    "normal colon mucosa": "normal colonic mucosa",
    "cancer-associated stroma": "cancer-associated stroma",
    "colorectal adenocarcinoma epithelium": "colorectal adenocarcinoma epithelium",
    "colonic glands": "colonic glands",
    "whole-body bone scan": "a whole-body bone scan",
}
NORMAL_LABELS = {"normal", "no finding"}


# ---------------------------------------------------------------- location, side, area and count words
def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _a(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


_V_ADJ = {"top": "top", "upper": "upper", "middle": "middle", "lower": "lower", "bottom": "bottom"}
_H_TAIL = {
    "far left": "towards the left edge",
    "far right": "towards the right edge",
    "left of centre": "left of centre",
    "right of centre": "right of centre",
}


def _where_both(v: str, h: str, form: int) -> str:
    """Vertical and horizontal in the image frame ("in the upper right portion of the image")."""
    if h == "central":
        if v == "middle":
            return ["in the centre of the image", "centrally in the image", "in the central part of the image"][
                form % 3
            ]
        return [
            f"in the {v} central part of the image",
            f"at the {v} centre of the image",
            f"in the {v} part of the image, near the horizontal centre",
        ][form % 3]
    if h in _H_TAIL:
        where_v = "at mid-height" if v == "middle" else f"in the {v} part of the image"
        return f"{where_v}, {_H_TAIL[h]}"
    if v == "middle":
        return [
            f"in the middle {h} part of the image",
            f"in the mid-{h} region of the image",
            f"on the {h} side of the image, at mid-height",
        ][form % 3]
    return [
        f"in the {v} {h} portion of the image",
        f"in the {v}-{h} region of the image",
        f"in the {v} {h} of the image",
    ][form % 3]


def _where_vertical(v: str, form: int) -> str:
    if v == "top":
        return ["near the top of the image", "at the top of the image"][form % 2]
    if v == "bottom":
        return ["near the bottom of the image", "at the bottom of the image"][form % 2]
    if v == "middle":
        return ["at mid-height in the image", "in the middle third of the image"][form % 2]
    return [f"in the {v} part of the image", f"in the {v} portion of the image"][form % 2]


def _where_side(h: str, form: int) -> str:
    if h in ("far left", "far right"):
        return f"at the {h} of the image"
    if h in ("left of centre", "right of centre"):
        return f"{h.split()[0]} of the image centre"
    return [
        f"on the {h} side of the image",
        f"in the {h} half of the image",
        f"on the image's {h}",
        f"on the {h} of the image",
    ][form % 4]


_ZONES = {"top": "apex", "upper": "upper zone", "middle": "mid zone", "lower": "lower zone", "bottom": "base"}


def _patient_side_after(context: str, side: str, v: str | None, form: int) -> str:
    """The patient's side after the noun, in the words of the anatomy ("in the left upper zone")."""
    if context == "chest":
        if v is not None and form % 3 == 0:
            return f"at the {side} {_ZONES[v]}" if v in ("top", "bottom") else f"in the {side} {_ZONES[v]}"
        return [f"in the {side} lung", f"in the {side} hemithorax", f"in the {side} lung"][form % 3]
    if context == "kidney":
        return [f"in the {side} kidney", f"arising from the {side} kidney"][form % 2]
    if context == "brain":
        return [f"in the {side} cerebral hemisphere", f"within the {side} hemisphere"][form % 2]
    return [f"on the patient's {side}", f"on the patient's {side} side"][form % 2]


def _patient_side_before(context: str, side: str, noun: str) -> str:
    """The patient's side as an adjective ("left-sided pneumothorax", "left renal mass")."""
    if context == "kidney" and noun.startswith("renal "):
        return f"{side} {noun}"
    return f"{side}-sided {noun}"


_FRACTIONS = {
    10: "a tenth",
    20: "a fifth",
    25: "a quarter",
    100 / 3: "a third",
    50: "half",
    200 / 3: "two thirds",
    75: "three quarters",
}
_AREA_NOUNS = ["of the image", "of the field", "of the image area", "of the frame", "of the total image area"]
_QUALIFIERS = ["about", "roughly", "approximately", "around", "~"]


def _number(a: float) -> str:
    r = math.floor(a + 0.5)  # half up, as people round
    return f"{r}" if a >= 10 or (a >= 1 and abs(r - a) <= 0.3) else f"{a:.1f}"


def _area(a: float, true_area: float, form: str, i: int) -> str:
    """Area words for `a` percent; bounds are worded so they hold for `a` and, when a != true_area, fail for it."""
    noun = _AREA_NOUNS[i % len(_AREA_NOUNS)]
    if form == "fraction":
        for value, word in _FRACTIONS.items():
            if abs(a - value) <= 0.06 * value:
                qualifier = ["roughly", "about", "nearly" if a < value else "just over"][i % 3]
                return f"{qualifier} {word} {noun}"
    if form == "bound":
        if a == true_area:
            if a < 1:
                return f"less than 1% {noun}"
            if a > 50:
                return f"more than half {noun}"
            return f"under {math.floor(a) + 1}% {noun}"
        if a > true_area:
            return f"more than {math.floor(a)}% {noun}"
        return f"less than {math.ceil(a)}% {noun}"
    if form == "decimal":
        return f"approximately {a:.1f}% {noun}"
    return f"{_QUALIFIERS[i % len(_QUALIFIERS)]} {_number(a)}% {noun}".replace("~ ", "~")


def _count_sentence(n: int, noun: Noun, form: int) -> str:
    if n == 1:
        return [
            f"A single {noun.singular} is identified.",
            f"There is a solitary {noun.singular}.",
            f"Only one {noun.singular} is seen.",
            f"One {noun.singular} is visible.",
        ][form % 4]
    return [
        f"{_cap(NUMBERS[n])} {noun.plural} are identified.",
        f"There are {NUMBERS[n]} {noun.plural}.",
        f"{_cap(NUMBERS[n])} separate {noun.plural} are seen.",
        f"{n} {noun.plural} are visible.",
    ][form % 4]


def _region_count_sentence(n: int, form: int) -> str:
    word = NUMBERS[n]
    if n == 1:
        return ["One region of interest is outlined.", "There is a single highlighted region."][form % 2]
    return [f"{_cap(word)} regions of interest are outlined.", f"There are {word} highlighted regions."][form % 2]


# ---------------------------------------------------------------- reading a record
def _context(sample: Sample) -> str:
    organ = (sample.organ or "").lower()
    if organ in ("chest", "lung"):
        return "chest"
    if organ == "kidney":
        return "kidney"
    if organ in ("brain", "head"):
        return "brain"
    return "generic"


def _groups(sample: Sample) -> dict[str, list[ROI]]:
    """ROIs grouped by (lowercased) label, for the labels a model has a noun for."""
    groups: dict[str, list[ROI]] = defaultdict(list)
    for roi in sample.rois:
        if roi.label.lower() in NOUNS:
            groups[roi.label.lower()].append(roi)
    return dict(groups)


def _finding_rois(sample: Sample) -> list[ROI]:
    return [r for r in sample.rois if r.label.lower() in NOUNS and NOUNS[r.label.lower()].finding]


def _is_normal(sample: Sample) -> bool:
    return any(label.lower() in NORMAL_LABELS for label in sample.labels) and sample.disease is None


def _topic(sample: Sample, label: str | None) -> str | None:
    """Which PERCENT_FACTS entry fits the record."""
    if any(label_.lower() == "bcc" for label_ in sample.labels):
        return "bcc"
    if label in ("cyst", "pneumothorax", "nodule"):
        return label
    organ = _topic_organ(sample)
    organ = "chest" if organ == "lung" else organ
    return organ if organ in PERCENT_FACTS else None


# ---------------------------------------------------------------- a text template
Part = Callable[[Facts], str]


@dataclass
class Draft:
    """A text as parts rendered from Facts; `states` lists the contradiction kinds whose fact the text states."""

    parts: list[Part]
    states: frozenset[str]
    separator: str = " "

    def render(self, facts: Facts) -> str:
        return self.separator.join(p for p in (part(facts) for part in self.parts) if p).strip()


def _fill(template: list[tuple[str, str | None]], segments: dict[str, str]) -> str:
    """Join template pieces, leaving out a piece whose segment is empty."""
    out = "".join(piece.format(**segments) for piece, key in template if key is None or segments.get(key))
    return re.sub(r"\s+([,;.)])", r"\1", re.sub(r"[ \t]{2,}", " ", out)).strip()


_TEMPLATES: dict[str, list[list[tuple[str, str | None]]]] = {
    "prose": [
        [("There is {np}", None), (" {post}", "post"), (" {loc}", "loc"), (", occupying {area}", "area"), (".", None)],
        [("{NP} is seen", None), (" {loc}", "loc"), (" {post}", "post"), ("; it covers {area}", "area"), (".", None)],
        [
            ("{NP}", None),
            (" {post}", "post"),
            (" is present", None),
            (" {loc}", "loc"),
            (", accounting for {area}", "area"),
            (".", None),
        ],
        [
            ("{LOC}, there is", "loc"),
            ("There is", "noloc"),
            (" {np}", None),
            (" {post}", "post"),
            (" that takes up {area}", "area"),
            (".", None),
        ],
    ],
    "report": [
        [
            ("Findings: {NP}", None),
            (" {post}", "post"),
            (" is noted", None),
            (" {loc}", "loc"),
            (", extending over {area}", "area"),
            (".", None),
        ],
    ],
    "bullets": [
        [
            ("- {what}: {bare}", None),
            (" {post}", "post"),
            ("\n- Location: {loc}", "loc"),
            ("\n- Extent: {area}", "area"),
        ],
    ],
    "short": [
        [
            ("{NP}", None),
            (" {post}", "post"),
            (" is seen", None),
            (" {loc}", "loc"),
            (" ({area})", "area"),
            (".", None),
        ],
    ],
}


@dataclass(frozen=True)
class Subject:
    label: str
    roi: ROI
    noun: Noun


def _subject_part(
    subject: Subject, style: str, context: str, rng: random.Random, want: set[str], counted: bool
) -> tuple[Part, set[str], bool]:
    """The sentence about the subject ROI; `want` says which facts it may state.

    Returns (part, the kinds it states, whether the vertical word may be a coarse neighbouring-bin one: only in
    the image-frame phrase "in the top right of the image", never in "near the top" or "apex")."""
    definite = counted or subject.noun.definite
    template = rng.choice(
        [t for t in _TEMPLATES[style] if not (definite and "there is" in t[0][0].lower())] or _TEMPLATES[style]
    )
    loc_form = rng.choice(["both", "both", "vertical", "side"])
    form = rng.randrange(12)
    area_form = rng.choice(["approx", "approx", "approx", "decimal", "fraction", "bound"])
    side_before = rng.random() < 0.4
    stated: set[str] = set()
    use_v = "position" in want and loc_form in ("both", "vertical")
    use_h = "image_side" in want and loc_form in ("both", "side")
    use_p = "patient_side" in want
    zone_with_side = use_p and context == "chest" and form % 3 == 0 and not side_before
    if zone_with_side and "position" in want:
        use_v = True  # the zone ("left upper zone") states the vertical position with the side
    if use_v:
        stated.add("position")
    if use_h:
        stated.add("image_side")
    if use_p:
        stated.add("patient_side")
    if "area" in want:
        stated.add("area")

    def render(facts: Facts) -> str:
        noun = subject.noun.singular
        bare = noun
        post = ""
        if use_p and facts.patient_side:
            if side_before and context in ("chest", "kidney"):
                bare = _patient_side_before(context, facts.patient_side, noun)
            else:
                post = _patient_side_after(
                    context, facts.patient_side, facts.vertical if zone_with_side else None, form
                )
        loc = ""
        h = facts.horizontal if use_h else None
        v = facts.vertical if use_v and not zone_with_side else None
        if v and h:
            loc = _where_both(v, h, form)
        elif v:
            loc = _where_vertical(v, form)
        elif h:
            loc = _where_side(h, form)
        area = _area(facts.area, facts.true_area, area_form, form) if "area" in stated else ""
        np = f"the {bare}" if definite else _a(bare)
        segments = {
            "np": np,
            "NP": _cap(np),
            "bare": bare,
            "post": post,
            "loc": loc,
            "LOC": _cap(loc),
            "area": area,
            "noloc": "" if loc else "x",
            "what": "Finding" if subject.noun.finding else "Structure",
        }
        return _fill(template, segments)

    coarse_ok = use_v and use_h and not zone_with_side and loc_form == "both"
    return render, stated, coarse_ok


def _subject_facts(subject: Subject, sample: Sample, rng: random.Random, coarse: bool) -> dict:
    roi = subject.roi
    return {
        "vertical": _vertical_word(roi, rng, coarse),
        "horizontal": _horizontal_word(roi, rng),
        "patient_side": _patient_side(roi, sample),
        "area": roi.area_ratio,
        "true_area": roi.area_ratio,
    }


# ---------------------------------------------------------------- sentences that state nothing checkable wrongly
def _intro(sample: Sample, style: str, rng: random.Random, with_confidence: bool) -> Part:
    true_phrases = _true_modalities(sample)
    i = rng.randrange(6)
    j = rng.randrange(3)

    def render(facts: Facts) -> str:
        if facts.modality == sample.modality:
            mod = true_phrases[i % len(true_phrases)]
        else:
            mod = GENERIC_MODALITIES[facts.modality][i % len(GENERIC_MODALITIES[facts.modality])]
        organ = f" {facts.organ}" if facts.organ else ""
        if style == "bullets":
            return f"- Image type: {mod}{organ}"
        if style == "report":
            return f"Technique: {_cap(mod)}{organ}."
        if with_confidence:
            return f"This is, with 95% confidence, {mod}{organ}."
        return [
            f"The image is {mod}{organ}.",
            f"This is {mod}{organ}.",
            f"The provided image appears to be {mod}{organ}.",
            f"This appears to be {mod}{organ}.",
            f"We are looking at {mod}{organ}.",
            f"{_cap(mod)}{organ} is shown.",
        ][j * 2 % 6 if style == "short" else (i + j) % 6]

    return render


def _label_findings(sample: Sample) -> str:
    """The source's own finding labels without an ROI, said the way a report says them."""
    roi_labels = {r.label.lower() for r in sample.rois}
    said = [
        LABEL_FINDINGS[label.lower()]
        for label in sample.labels
        if label.lower() in LABEL_FINDINGS and label.lower() not in roi_labels
    ]
    if not said:
        return ""
    listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
    if sample.modality == "Histopathology":
        return f"The tissue shows {listed}."
    if sample.modality == "Nuclear Medicine":
        return "The study is a whole-body bone scan."
    return f"Reported findings include {listed}."


def _image_side(roi: ROI) -> str | None:
    return {"left": "left", "left-center": "left", "center": None, "right-center": "right", "right": "right"}[
        roi.position.horizontal
    ]


def _one_side_findings(sample: Sample) -> str | None:
    """The image side all finding ROIs are on, when the source annotates them all (every finding label of the
    record has an annotated ROI, so "no other … on the other side" is what the source says)."""
    findings = _finding_rois(sample)
    roi_labels = {r.label.lower() for r in sample.rois}
    unlocated = [
        label
        for label in sample.labels
        if label.lower() not in roi_labels
        and label.lower() not in NORMAL_LABELS
        and label.lower() not in ("kidney", "support devices")
    ]
    sides = {_image_side(r) for r in findings}
    if not findings or unlocated or len(sides) != 1 or None in sides:
        return None
    if any(r.source != "annotation" for r in findings):
        return None
    return sides.pop()


def _negations(sample: Sample, subject: Subject | None, context: str) -> list[str]:
    """True negative statements with side words: a verifier must not read them as claims of where something is."""
    if _is_normal(sample) and sample.modality in ("X-Ray", "CT", "MRI"):
        if context == "chest":
            return [
                "The left lung is clear.",
                "No pneumothorax is seen on the right.",
                "There is no focal consolidation in the right lung.",
            ]
        if context == "kidney":
            return ["No renal mass is seen in the left kidney.", "The right kidney shows no focal lesion."]
        if context == "brain" and sample.source == "brats2021":
            return ["No abnormal signal is seen in the left hemisphere.", "The right hemisphere is unremarkable."]
        return []
    image_side = _one_side_findings(sample)
    if subject is None or image_side is None or subject.noun.other is None:
        return []
    out = [f"No other {subject.noun.other} is seen on the {OTHER_SIDE[image_side]} side of the image."]
    patient = _patient_side(subject.roi, sample)
    if patient is not None:
        other = OTHER_SIDE[patient]
        if subject.label == "pneumothorax":
            out += [f"No pneumothorax is seen on the {other}.", f"The {other} lung is clear."]
        elif context == "chest":
            out.append(f"The {other} lung is clear.")
        elif context == "kidney":
            out.append(f"No mass is seen in the {other} kidney.")
        elif context == "brain":
            out.append(f"The {other} hemisphere appears unremarkable.")
    return out


def _anatomy_note(sample: Sample, rng: random.Random) -> str:
    """A true sentence about paired anatomy (kidneys, lung fields) in the radiological convention."""
    pl = sample.patient_left_on_image
    kidneys = [r for r in sample.rois if r.label.lower() == "kidney"]
    lungs = [r for r in sample.rois if r.label.startswith("lung field")]
    pair = kidneys if len(kidneys) == 2 else lungs if len(lungs) == 2 else []
    if not pair or pl not in ("left", "right") or {_image_side(r) for r in pair} != {"left", "right"}:
        return ""
    organ = "kidney" if kidneys else "lung"
    on_image_left = next(_patient_side(r, sample) for r in pair if _image_side(r) == "left")
    on_image_right = next(_patient_side(r, sample) for r in pair if _image_side(r) == "right")
    each = ""
    if abs(pair[0].area_ratio - pair[1].area_ratio) <= 0.3:
        area = _area(pair[0].area_ratio, pair[0].area_ratio, rng.choice(["approx", "fraction"]), rng.randrange(5))
        each = f", each occupying {area}"
    return rng.choice(
        [
            (
                f"As per radiological convention, the {on_image_left} {organ} appears on the left side of the image "
                f"and the {on_image_right} {organ} on the right{each}."
            ),
            (
                f"The {on_image_right} {organ} is displayed on the right of the image and the {on_image_left} {organ} "
                f"on the left{each}."
            ),
            (
                f"The {on_image_left} {organ} is seen on the left side of the image; the {on_image_right} {organ} is on "
                f"the right side{each}."
            ),
        ]
    )


def _topic_organ(sample: Sample) -> str:
    """The organ key for recommendations and background facts (a colon slide is colorectal histology)."""
    organ = (sample.organ or "").lower()
    if sample.modality == "Histopathology" and organ in ("colon", "colorectum"):
        return "colorectum"
    if organ == "head" and sample.modality == "MRI":
        return "brain"
    return organ


def _lead_in(fact: str, lead: str) -> str:
    first = fact.split()[0]
    return f"{lead} {fact if first in ('Bosniak', 'PA') else fact[:1].lower() + fact[1:]}"


def _distractors(
    sample: Sample, subject: Subject | None, context: str, rng: random.Random, style: str, confidence_said: bool
) -> list[str]:
    """Sentences that are true but state nothing about where or what this image's regions are."""
    label = subject.label if subject else None
    leading: list[str] = []  # negations and differentials: what an "Impression:" opens with
    other: list[str] = []
    negations = _negations(sample, subject, context)
    if negations:
        leading.append(rng.choice(negations))
    if label in DIFFERENTIALS and rng.random() < 0.6:
        leading.append(
            rng.choice(
                [
                    "This could represent {}.",
                    "Differential considerations include {}.",
                    "The appearance could be consistent with {}.",
                ]
            ).format(DIFFERENTIALS[label])
        )
    organ = _topic_organ(sample)
    if organ in RECOMMENDATIONS and rng.random() < 0.7:
        other.append(rng.choice(RECOMMENDATIONS[organ]))
    topic = _topic(sample, label)
    if topic and rng.random() < 0.7:
        fact = PERCENT_FACTS[topic]
        other.append(
            rng.choice(
                [f"{fact}.", f"Background: {fact} [1].", _lead_in(fact, "According to the literature,") + " [2]."]
            )
        )
    if rng.random() < 0.35 and not confidence_said:
        other.append(rng.choice(CONFIDENCES))
    rng.shuffle(leading)
    rng.shuffle(other)
    if style == "report" and leading:
        leading[0] = "Impression: " + leading[0]
    out = leading + other
    if style == "bullets":
        out = [f"- Note: {s}" for s in out]
    return out


# ---------------------------------------------------------------- drafts for one record
def _choose_subject(sample: Sample, rng: random.Random) -> tuple[Subject | None, tuple[str, list[ROI]] | None]:
    """(the single-ROI subject the text locates, the counted group), either may be None."""
    groups = _groups(sample)
    if not groups:
        return None, None
    singles = sorted(label for label, rois in groups.items() if len(rois) == 1)
    findings = [label for label in singles if NOUNS[label].finding]
    pool = findings or singles
    subject = None
    if pool:
        label = rng.choice(pool)
        subject = Subject(label, groups[label][0], NOUNS[label])
    countable = sorted(label for label in groups if NOUNS[label].plural)
    multi = [label for label in countable if len(groups[label]) > 1]
    counted_label = (multi and rng.choice(multi)) or (subject and subject.noun.plural and subject.label) or None
    counted = (counted_label, groups[counted_label]) if counted_label else None
    return subject, counted


def _secondary(sample: Sample, subject: Subject | None, rng: random.Random) -> str:
    """A true sentence about another single-ROI finding, so statements must be bound to their own subject."""
    groups = _groups(sample)
    others = sorted(
        label
        for label, rois in groups.items()
        if len(rois) == 1 and NOUNS[label].finding and (subject is None or label != subject.label)
    )
    if not others:
        return ""
    label = rng.choice(others)
    roi = groups[label][0]
    v, h = _vertical_word(roi, rng, coarse=False), _horizontal_word(roi, rng)
    where = _where_both(v, h, rng.randrange(3))
    return f"{_cap(_a(NOUNS[label].singular))} is also present {where}."


def drafts_for(sample: Sample, variant: int, seed: int = SEED) -> tuple[Facts, Draft, Subject | None]:
    """The true facts of `sample`, one draft text (variant 0 states every applicable fact; others a subset) and
    the subject ROI the draft locates."""
    rng = random.Random(f"{seed}:{sample.id}:{variant}")
    style = rng.choice(["prose", "prose", "prose", "report", "bullets", "short"])
    context = _context(sample)
    subject, counted = _choose_subject(sample, rng)
    organ_key = (sample.organ or "").lower()
    organ_phrase = rng.choice(ORGAN_PHRASES[organ_key]) if organ_key in ORGAN_PHRASES else None
    facts = {"modality": sample.modality, "organ": organ_phrase}
    states = {"modality"} | ({"organ"} if organ_phrase else set())

    full = variant == 0
    want: set[str] = set()
    if subject is not None:
        want = {"position", "area"}
        if _image_side(subject.roi) is not None:
            want.add("image_side")
        if _patient_side(subject.roi, sample) is not None:
            want.add("patient_side")
        if not full:
            want = {k for k in want if rng.random() < 0.6}
    region_count = (
        counted is None
        and 1 <= len(sample.rois) <= 5
        and all(r.source == "annotation" for r in sample.rois)
        and rng.random() < 0.5
    )
    if counted is not None and (full or rng.random() < 0.6):
        facts["count"] = len(counted[1])
        states.add("count")
    elif region_count:
        facts["count"] = len(sample.rois)
        states.add("count")

    with_confidence = rng.random() < 0.15
    parts: list[Part] = [_intro(sample, style, rng, with_confidence)]
    findings_text = _label_findings(sample)
    if findings_text:
        parts.append(lambda f, t=findings_text: ("- " + t) if style == "bullets" else t)
    if "count" in states:
        form = rng.randrange(4)
        if counted is not None:
            noun = counted[0]

            def count_part(f: Facts, noun=NOUNS[noun], form=form) -> str:
                text = _count_sentence(f.count, noun, form)
                return f"- {text}" if style == "bullets" else text
        else:

            def count_part(f: Facts, form=form) -> str:
                text = _region_count_sentence(f.count, form)
                return f"- {text}" if style == "bullets" else text

        parts.append(count_part)
    if subject is not None:
        counted_same = "count" in states and counted is not None and counted[0] == subject.label
        part, stated, coarse_ok = _subject_part(subject, style, context, rng, want, counted_same)
        facts |= _subject_facts(subject, sample, rng, coarse=coarse_ok and rng.random() < 0.5)
        if stated:
            parts.append(part)
            states |= stated
    note = _anatomy_note(sample, rng) if rng.random() < 0.75 else ""
    if note:
        parts.append(lambda f, t=note: ("- " + t) if style == "bullets" else t)
    secondary = _secondary(sample, subject, rng) if rng.random() < 0.5 else ""
    if secondary:
        parts.append(lambda f, t=secondary: ("- " + t) if style == "bullets" else t)
    for sentence in _distractors(sample, subject, context, rng, style, with_confidence and style in ("prose", "short")):
        parts.append(lambda f, t=sentence: t)
    return Facts(**facts), Draft(parts, frozenset(states), "\n" if style == "bullets" else " "), subject


# ---------------------------------------------------------------- contradictions
def _wrong(kind: str, facts: Facts, sample: Sample, subject_roi: ROI | None, rng: random.Random) -> Facts | None:
    """`facts` with the one field of `kind` replaced by a value the record contradicts, or None if not applicable."""
    if kind == "modality":
        return replace(facts, modality=rng.choice(WRONG_MODALITIES[sample.modality]))
    if kind == "organ":
        choices = WRONG_ORGANS.get((sample.organ or "").lower())
        return replace(facts, organ=rng.choice(choices)) if choices and facts.organ else None
    if kind == "image_side":
        return replace(facts, horizontal=MIRROR[facts.horizontal]) if facts.horizontal in MIRROR else None
    if kind == "patient_side":
        return replace(facts, patient_side=OTHER_SIDE[facts.patient_side]) if facts.patient_side else None
    if kind == "position":
        return replace(facts, vertical=_wrong_vertical(subject_roi, rng)) if subject_roi is not None else None
    if kind == "area":
        return replace(facts, area=_wrong_area(facts.area)) if facts.area is not None else None
    if kind == "count":
        return replace(facts, count=_wrong_count(facts.count, rng)) if facts.count else None
    raise ValueError(kind)


def build_corpus(samples: list[Sample], seed: int = SEED) -> list[Case]:
    """Every record's correct texts, then up to MAX_PER_KIND contradictions per kind, round-robin over sources."""
    cases: list[Case] = []
    candidates: dict[str, dict[str, list[Case]]] = {kind: defaultdict(list) for kind in KINDS}
    for sample in sorted(samples, key=lambda s: (s.source, s.id)):
        drafts = [drafts_for(sample, v, seed) for v in range(VARIANTS_PER_RECORD)]
        for facts, draft, _ in drafts:
            cases.append(Case(sample.id, sample.source, "correct", draft.render(facts)))
        rng = random.Random(f"{seed}:{sample.id}:wrong")
        for kind in KINDS:
            stating = [d for d in drafts if kind in d[1].states]
            if not stating:
                continue
            facts, draft, subject = rng.choice(stating)
            wrong = _wrong(kind, facts, sample, subject.roi if subject else None, rng)
            if wrong is None:
                continue
            field = KIND_FIELD[kind]
            text = draft.render(wrong)
            if text == draft.render(facts):
                raise AssertionError(f"{kind} contradiction of {sample.id} leaves the text unchanged: {text!r}")
            changed = f"{field}: {getattr(facts, field)} -> {getattr(wrong, field)}"
            candidates[kind][sample.source].append(
                Case(sample.id, sample.source, kind, text, changed, base=draft.render(facts))
            )
    for kind in KINDS:
        by_source = candidates[kind]
        order = {
            src: random.Random(f"{seed}:{kind}:{src}").sample(items, len(items)) for src, items in by_source.items()
        }
        picked: list[Case] = []
        while len(picked) < MAX_PER_KIND and any(order.values()):
            for src in sorted(order):
                if order[src] and len(picked) < MAX_PER_KIND:
                    picked.append(order[src].pop(0))
        cases.extend(picked)
    return cases
