"""Turning a record's metadata into a retrieval query, in the words the medical corpora use.

`normalise_terms` expands abbreviations and the label codes datasets use ("CXR", "US", "BCC", BraTS "ET",
NCT-CRC-HE "STR") into the words medical text uses. It is applied to queries only: codes such as "ET" or
"WT" mean other things in free text (endothelin, wild-type), so passages are indexed as written. Spelling
variants (tumour/tumor, x ray/X-ray) are unified by the index's analyser, on both sides.
"""

from __future__ import annotations

import re

from medtrinity.sources.label_kinds import UNCERTAIN_SUFFIX

# (pattern, replacement, case_sensitive). Short all-capital forms that are also English words or common
# initials ("US", "MR", "ET", "DR") only match in capitals, so "us" and "Mr" stay as they are.
# Rules run in order: a phrase containing a shorter rule's pattern comes first ("MR imaging" before "MR").
_RULES: tuple[tuple[str, str, bool], ...] = (
    # imaging modalities
    (r"CXRs?", "chest X-ray", False),
    (r"x[\s-]?rays?|XR", "X-ray", False),
    (r"(?:CT|CAT) scans?", "CT", False),
    (r"computed tomography|computerised tomography|computerized tomography", "CT", False),
    (r"magnetic resonance imaging|magnetic resonance|MR imaging", "MRI", False),
    (r"MR", "MRI", True),
    (r"ultrasonography|ultrasonographic|USG", "ultrasound", False),
    (r"US", "ultrasound", True),
    (r"optical coherence tomography", "OCT", False),
    (r"positron emission tomography", "PET", False),
    (r"H\s*&\s*E|H and E", "hematoxylin and eosin", False),
    (r"IHC", "immunohistochemistry", True),
    (r"WSIs?", "whole-slide image", True),
    (r"T1[\s-]?(?:CE|Gd|c)|T1[\s-]?post", "contrast-enhanced T1", False),
    (r"T1w", "T1-weighted", False),
    (r"T2w", "T2-weighted", False),
    (r"DWI", "diffusion-weighted imaging", True),
    (r"ADC", "apparent diffusion coefficient", True),
    (r"HU", "Hounsfield units", True),
    (r"SUV", "standardised uptake value", True),
    (r"PA", "posteroanterior", True),
    (r"AP", "anteroposterior", True),
    # chest
    (r"PTX", "pneumothorax", True),
    (r"GGOs?", "ground-glass opacity", True),
    (r"COPD", "chronic obstructive pulmonary disease emphysema", True),
    (r"ILD", "interstitial lung disease", True),
    (r"CHF", "congestive heart failure", True),
    (r"RUL", "right upper lobe", True),
    (r"RML", "right middle lobe", True),
    (r"RLL", "right lower lobe", True),
    (r"LUL", "left upper lobe", True),
    (r"LLL", "left lower lobe", True),
    (r"no findings?", "normal", False),
    # skin (ISIC / HAM10000 diagnosis codes)
    (r"BCC", "basal cell carcinoma", True),
    (r"SCC", "squamous cell carcinoma", True),
    (r"AKIEC|AK", "actinic keratosis", True),
    (r"BKL", "benign keratosis", True),
    (r"DF", "dermatofibroma", True),
    (r"NV", "melanocytic nevus", True),
    (r"MEL", "melanoma", True),
    (r"VASC", "vascular lesion", True),
    # brain (BraTS sub-region codes)
    (r"GBM", "glioblastoma", True),
    (r"LGG", "low-grade glioma", True),
    (r"HGG", "high-grade glioma", True),
    (r"NCR", "necrotic tumor core", True),
    (r"ET", "enhancing tumor", True),
    (r"ED", "peritumoral edema", True),
    (r"WT", "whole tumor", True),
    (r"TC", "tumor core", True),
    # abdomen
    (r"HCC", "hepatocellular carcinoma", True),
    (r"RCC", "renal cell carcinoma", True),
    (r"CRC", "colorectal cancer", True),
    (r"GI", "gastrointestinal", True),
    # colorectal histology tissue classes (NCT-CRC-HE codes)
    (r"ADI", "adipose tissue", True),
    (r"BACK", "background", True),
    (r"DEB", "debris", True),
    (r"LYM", "lymphocytes", True),
    (r"MUC", "mucus", True),
    (r"MUS", "smooth muscle", True),
    (r"NORM", "normal colon mucosa", True),
    (r"STR", "cancer-associated stroma", True),
    (r"TUM", "colorectal adenocarcinoma epithelium", True),
    # eye
    (r"NPDR", "non-proliferative diabetic retinopathy", True),
    (r"PDR", "proliferative diabetic retinopathy", True),
    (r"DR", "diabetic retinopathy", True),
    (r"DME", "diabetic macular edema", True),
    (r"AMD", "age-related macular degeneration", True),
    (r"CNV", "choroidal neovascularization", True),
    (r"MAs?", "microaneurysm", True),
    (r"EX", "hard exudates", True),  # IDRiD lesion code; its "HE" and "SE" are left alone (H&E, spin echo)
    (r"CDR", "cup-to-disc ratio", True),
    (r"RNFL", "retinal nerve fiber layer", True),
)


def _compile(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # Whole words only: "US" must not match inside "USG" or "MUS", nor "DR" inside "NPDR".
    return re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", 0 if case_sensitive else re.IGNORECASE)


_COMPILED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (_compile(pattern, case_sensitive), replacement) for pattern, replacement, case_sensitive in _RULES
)
_SPACES = re.compile(r"\s+")


def normalise_terms(text: str) -> str:
    """Expand abbreviations and label codes into words; underscores and bars become spaces, runs of spaces one."""
    # Source labels come as "Pleural_Thickening" or "Effusion|Mass": make them words first.
    text = re.sub(r"[_|]", " ", text)
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()


def _is_informative(term: str | None) -> bool:
    # Numeric class ids ("0", "3") and the catch-all modality "Other" say nothing a passage could match.
    return bool(term) and term.strip().lower() not in {"other", "unknown", "none"} and not term.strip().isdigit()


def _distinct(terms: list[str | None], seen: set[str]) -> list[str]:
    kept = []
    for term in terms:
        if _is_informative(term) and term.strip().lower() not in seen:
            seen.add(term.strip().lower())
            kept.append(term.strip())
    return kept


ORGAN_CONTEXT = {
    "head": "brain skull",
    "chest": "thorax lungs",
    "abdomen": "abdominal organs",
    "spine": "vertebrae",
    "pelvis": "pelvic organs",
}


def _without_qualifier(term: str | None) -> str | None:
    # "Pneumonia (uncertain)": the finding is a hint worth retrieving for; the qualifier is no medical term.
    return term.removesuffix(UNCERTAIN_SUFFIX) if term else term


def build_query(
    coarse_caption: str,
    labels: list[str],
    disease: str | None,
    organ: str | None,
    modality: str | None,
) -> str:
    """The retrieval query for one record: its finding (disease, else labels), other labels, organ and modality.

    The finding is written twice: organ and modality words ("chest", "X-ray", "colon") recur across many
    passages, and without the extra weight a passage that merely mentions "chest X-ray" often outranks the
    passage about the finding itself. Where the source names a disease, that is the finding and the other
    labels are context, written once: a chest film's "Support Devices" label must not outrank its pneumothorax.
    """
    seen: set[str] = set()
    topic = _distinct([_without_qualifier(disease)], seen)
    others = _distinct([_without_qualifier(label) for label in labels], seen)
    if not topic:
        topic, others = others, []
    organ_words = _distinct([organ], seen)
    # Organ names that are also common words elsewhere ("head" of the pancreas or femur) get their anatomy.
    context = [ORGAN_CONTEXT[organ.lower()]] if organ and organ.lower() in ORGAN_CONTEXT else []
    modality_words = _distinct([modality], seen) + context
    # Without a finding the organ is the topic, so it gets the weight. The caption only repeats these
    # fields, with wording ("not specified by the source") that would match passages about nothing here.
    parts = topic + topic + others + organ_words + (organ_words if not topic else []) + modality_words
    if not parts and coarse_caption.strip():
        parts = [coarse_caption.strip()]
    return normalise_terms(". ".join(parts))
