"""An anatomy map fine enough to judge organ claims: each organ sits within a body region, and the words text uses.

A claim that an image shows an organ is judged by how much of the body the modality shows. A section or
projection (CT, MRI, X-ray, ultrasound, PET, scintigraphy) shows a body region, so any organ of the same
region fits ("a slice through the liver" on a kidney CT). A field of view that is one surface or one
tissue (endoscopy, histopathology, fundus, dermoscopy) shows one organ, so the organ must be the record's
one, part of it or what contains it — with the gut cut into its segments: the stomach is upper GI, the
colon lower GI. Skin is seen on every body site, so "forearm" fits a dermoscopy record of skin.
"""

from __future__ import annotations

import re
from functools import cache

BODY = "body"
# Organs found in every region: a claim of one of them never contradicts a region.
SPANNING = frozenset({BODY, "skeleton", "bone", "spine", "lymph node", "skin", "blood", "vessel", "muscle"})
# Organs that show the whole body: any organ claim fits them.
WHOLE_BODY = frozenset({BODY, "skeleton"})
# Modalities whose image is one surface or one tissue rather than a section of a body region.
FIELD_MODALITIES = frozenset({"Endoscopy", "Histopathology", "Fundus", "Dermoscopy", "OCT", "Microscopy"})
# Segments of the gut: a field-of-view image is inside one of them.
GUT_SEGMENTS = ("upper gastrointestinal tract", "small bowel", "colorectum")

# canonical organ -> (the organ or region it lies within, the words text names it by)
ANATOMY: dict[str, tuple[str | None, tuple[str, ...]]] = {
    BODY: (None, ("body", "whole body", "whole-body", "entire body")),
    # head and neck
    "head": (BODY, ("head", "skull", "cranium", "cranial", "scalp")),
    "face": ("head", ("face", "facial", "nose", "cheek", "forehead")),
    "brain": (
        "head",
        (
            "brain",
            "cerebral",
            "cerebrum",
            "cerebellum",
            "cerebellar",
            "intracranial",
            "brainstem",
            "brain stem",
            "cerebral hemisphere",
            "hemisphere",
        ),
    ),
    "sinus": ("head", ("sinus", "sinuses", "paranasal sinus", "paranasal sinuses", "maxillary sinus")),
    "eye": ("head", ("eye", "eyes", "ocular", "orbit", "orbital", "globe")),
    "retina": ("eye", ("retina", "retinal")),
    "optic disc": ("retina", ("optic disc", "optic disk", "optic nerve head")),
    "macula": ("retina", ("macula", "macular", "fovea", "foveal")),
    "neck": (BODY, ("neck", "cervical soft tissue", "cervical soft tissues")),
    "thyroid": ("neck", ("thyroid", "thyroid gland")),
    # thorax
    "chest": (BODY, ("chest", "thorax", "thoracic", "hemithorax", "chest wall")),
    "lung": ("chest", ("lung", "lungs", "pulmonary", "lung field", "lung fields")),
    "pleura": ("chest", ("pleura", "pleural")),
    "airway": (
        "chest",
        (
            "bronchus",
            "bronchi",
            "bronchial",
            "bronchial tree",
            "trachea",
            "tracheal",
            "airway",
            "airways",
            "tracheobronchial tree",
        ),
    ),
    "heart": ("chest", ("heart", "cardiac", "myocardium", "myocardial", "pericardium", "pericardial")),
    "mediastinum": ("chest", ("mediastinum", "mediastinal")),
    "breast": ("chest", ("breast", "breasts", "mammary")),
    # abdomen and pelvis
    "abdomen": (BODY, ("abdomen", "abdominal", "trunk", "torso")),
    "liver": ("abdomen", ("liver", "hepatic")),
    "gallbladder": ("abdomen", ("gallbladder", "biliary")),
    "kidney": ("abdomen", ("kidney", "kidneys", "renal")),
    "adrenal": ("abdomen", ("adrenal", "adrenal gland", "adrenals")),
    "spleen": ("abdomen", ("spleen", "splenic")),
    "pancreas": ("abdomen", ("pancreas", "pancreatic")),
    "gastrointestinal tract": (
        "abdomen",
        (
            "gastrointestinal tract",
            "gastrointestinal",
            "GI tract",
            "bowel",
            "intestine",
            "intestines",
            "intestinal",
            "gut",
        ),
    ),
    "upper gastrointestinal tract": (
        "gastrointestinal tract",
        ("upper gastrointestinal tract", "upper GI tract", "upper GI"),
    ),
    "esophagus": ("upper gastrointestinal tract", ("esophagus", "oesophagus", "esophageal", "oesophageal")),
    "stomach": ("upper gastrointestinal tract", ("stomach", "gastric", "antrum", "antral", "pylorus", "pyloric")),
    "duodenum": ("upper gastrointestinal tract", ("duodenum", "duodenal")),
    "small bowel": (
        "gastrointestinal tract",
        ("small bowel", "small intestine", "jejunum", "jejunal", "ileum", "ileal", "terminal ileum"),
    ),
    "colorectum": (
        "gastrointestinal tract",
        (
            "colorectum",
            "colorectal",
            "large bowel",
            "large intestine",
            "lower gastrointestinal tract",
            "lower GI tract",
            "lower GI",
        ),
    ),
    "colon": (
        "colorectum",
        (
            "colon",
            "colonic",
            "cecum",
            "caecum",
            "cecal",
            "caecal",
            "sigmoid",
            "sigmoid colon",
            "ascending colon",
            "transverse colon",
            "descending colon",
        ),
    ),
    "rectum": ("colorectum", ("rectum", "rectal", "anorectal")),
    "pelvis": ("abdomen", ("pelvis", "pelvic", "pelvic cavity")),
    "bladder": ("pelvis", ("bladder", "urinary bladder")),
    "prostate": ("pelvis", ("prostate", "prostatic")),
    "uterus": ("pelvis", ("uterus", "uterine", "endometrium", "endometrial")),
    "ovary": ("pelvis", ("ovary", "ovaries", "ovarian", "adnexa", "adnexal")),
    # limbs
    "upper limb": (BODY, ("upper limb", "upper extremity", "arm", "arms")),
    "shoulder": ("upper limb", ("shoulder", "shoulders", "scapula", "glenohumeral", "rotator cuff", "humeral head")),
    "humerus": ("upper limb", ("humerus", "upper arm")),
    "elbow": ("upper limb", ("elbow",)),
    "forearm": ("upper limb", ("forearm", "ulna")),
    "hand": ("upper limb", ("hand", "hands", "wrist", "finger", "fingers", "thumb")),
    "lower limb": (BODY, ("lower limb", "lower extremity", "leg", "legs")),
    "hip": ("lower limb", ("hip", "hips")),
    "thigh": ("lower limb", ("thigh", "femur", "femoral")),
    "knee": ("lower limb", ("knee", "knees", "patella")),
    "tibia": ("lower limb", ("tibia", "tibial", "fibula", "fibular", "shin", "lower leg")),
    "foot": ("lower limb", ("foot", "feet", "ankle", "toe", "toes", "heel")),
    # found everywhere
    "skeleton": (BODY, ("skeleton", "skeletal", "whole skeleton")),
    "bone": (BODY, ("bone", "bones", "osseous")),
    "spine": (
        BODY,
        ("spine", "spinal", "vertebra", "vertebrae", "vertebral", "lumbar spine", "cervical spine", "thoracic spine"),
    ),
    "lymph node": (BODY, ("lymph node", "lymph nodes", "nodal", "lymphatic")),
    "skin": (BODY, ("skin", "cutaneous", "dermal", "epidermis", "dermis")),
    "blood": (BODY, ("blood", "blood smear")),
    "vessel": (BODY, ("vessel", "vessels", "vascular", "artery", "vein")),
    "muscle": (BODY, ("muscle", "muscles", "muscular")),
}
# Body sites a skin lesion can sit on: the surface of these regions.
SURFACE = frozenset(
    {
        "head",
        "face",
        "neck",
        "chest",
        "breast",
        "abdomen",
        "pelvis",
        "upper limb",
        "shoulder",
        "humerus",
        "elbow",
        "forearm",
        "hand",
        "lower limb",
        "hip",
        "thigh",
        "knee",
        "tibia",
        "foot",
        "skin",
        BODY,
    }
)

_ORGAN_BY_WORD: dict[str, str] = {w.lower(): organ for organ, (_, words) in ANATOMY.items() for w in words}
# Record values that name an organ in other words ("colorectal tissue", "whole body").
_RECORD_SYNONYMS = {"cxr": "chest", "abd": "abdomen", "chest_lung": "lung", "wrist": "hand"}


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


ORGAN_WORD_PATTERN = _alternation(_ORGAN_BY_WORD)
ORGAN_WORDS = re.compile(rf"(?<![\w-])(?:{ORGAN_WORD_PATTERN})(?![\w-])", re.IGNORECASE)


def canonical_organ(word: str | None) -> str | None:
    """The map's organ for a word or record value ("Lungs" -> "lung", "colorectal" -> "colorectum"), else None."""
    if not word:
        return None
    key = " ".join(word.strip().lower().replace("_", " ").split())
    return _ORGAN_BY_WORD.get(key) or _ORGAN_BY_WORD.get(_RECORD_SYNONYMS.get(key, ""))


@cache
def ancestors(organ: str) -> tuple[str, ...]:
    """The organ itself and everything it lies within, innermost first."""
    chain = [organ]
    while (parent := ANATOMY[chain[-1]][0]) is not None:
        chain.append(parent)
    return tuple(chain)


def body_region(organ: str | None) -> str | None:
    """The body region (head, neck, chest, abdomen, upper limb, lower limb) an organ lies in; None if it spans."""
    canonical = canonical_organ(organ) if organ and organ not in ANATOMY else organ
    if canonical is None or canonical in SPANNING:
        return None
    chain = ancestors(canonical)
    return chain[-2] if len(chain) >= 2 else None


def _segment(organ: str) -> str:
    """The gut segment an organ lies in, or the organ itself when it is not part of the gut."""
    return next((a for a in ancestors(organ) if a in GUT_SEGMENTS), organ)


def _related(a: str, b: str) -> bool:
    return a in ancestors(b) or b in ancestors(a)


def organ_fits(claimed: str, recorded: str, modality: str | None) -> bool:
    """Whether a text may say an image of `recorded` (canonical organs both) shows `claimed`."""
    if _related(claimed, recorded) or recorded in WHOLE_BODY:
        return True
    if modality == "Dermoscopy" or recorded == "skin":
        return claimed in SURFACE  # a skin lesion sits on a body site
    if modality in FIELD_MODALITIES:
        return claimed != "skin" and (_segment(claimed) == _segment(recorded) or claimed in SPANNING)
    if claimed in SPANNING or recorded in SPANNING:
        return True
    return body_region(claimed) == body_region(recorded)
