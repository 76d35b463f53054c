"""The background sentence: the first sentence of the best retrieved passage that is on topic for this image.

Retrieval ranks passages by words, not by fit, so a passage is quoted only when it passes every filter:
- modality: a quoted sentence that names imaging modalities names the record's among them, and a passage that
  names modalities names the record's (vocabulary.modalities_named): a CT attenuation passage on an MRI is
  skipped, "… on CT, MRI or ultrasound" is quoted on an MRI, "Normal kidney on CT and ultrasound" on a CT only
  if its first sentence is not about ultrasound alone;
- status: a "normal …" passage is quoted only on an image the source calls normal (a normal-kind label), and
  there only such a passage: an image with a finding, or one the source is silent about, may be abnormal;
- topic: a passage about a dataset or challenge (its title or text names one, or says "dataset") is not
  about the image; an ontology term (an HPO phenotype, an ICD-10-CM diagnosis) names an abnormality, so it is
  quoted only on an image the source records a finding for.
If none passes, there is no background sentence.
"""

from __future__ import annotations

import re

from medtrinity.describe.claims import Fact, say
from medtrinity.describe.disease_status import label_kind, recorded_findings
from medtrinity.describe.vocabulary import COMPATIBLE_MODALITIES, modalities_named
from medtrinity.records import Claim, Passage, Sample

ATTRIBUTE = "knowledge"
# A passage without a full stop (a malformed corpus line) must not pour itself into the description.
MAX_BACKGROUND_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_NORMAL = re.compile(r"\bnormal\b", re.IGNORECASE)
ONTOLOGY_PREFIXES = ("HP:", "ICD10CM:")  # the default knowledge base's phenotype and diagnosis terms
# Datasets and challenges the recipes read, and the words passages about collections use.
DATASET_PATTERN = re.compile(
    r"\b(?:data\s?sets?|challenges?|benchmarks?|BraTS|KiTS\d*|Kvasir(?:-SEG)?|ISIC|HAM10000|BUSI|CheXpert|"
    r"MIMIC(?:-CXR)?|ChestX-?ray\d*|SLAKE|VQA-RAD|RSNA|SIIM|NCT-CRC(?:-HE)?|LiTS|CAMELYON\d*|LIDC(?:-IDRI)?)\b",
    re.IGNORECASE,
)


def first_sentence(text: str) -> str:
    collapsed = " ".join(text[: 20 * MAX_BACKGROUND_CHARS].split())
    sentence = _SENTENCE_END.split(collapsed, maxsplit=1)[0].rstrip(" .!?")
    if len(sentence) > MAX_BACKGROUND_CHARS:
        sentence = sentence[:MAX_BACKGROUND_CHARS].rsplit(" ", 1)[0] + " …"
    return sentence


def quoted_sentence(passage: Passage) -> str:
    """What a background sentence quotes of a passage: its first sentence (its title when it has no text)."""
    return first_sentence(passage.text) or first_sentence(passage.title)


def image_status(sample: Sample) -> str:
    """ "finding" when the source records one (or an ROI is a finding), "normal" when it calls the image normal,
    else "silent"."""
    kinds = {label_kind(sample, label) for label in sample.labels}
    if recorded_findings(sample) or kinds & {"uncertain", "case"} or any(r.kind == "finding" for r in sample.rois):
        return "finding"
    return "normal" if "normal" in kinds else "silent"


def off_topic(passage: Passage, sample: Sample) -> str | None:
    """Why `passage` does not fit the image, or None when it may be quoted."""
    sentence = quoted_sentence(passage)
    allowed = {sample.modality} | COMPATIBLE_MODALITIES.get(sample.modality, frozenset())
    named = set(modalities_named(f"{passage.title}. {passage.text}"))
    in_sentence = set(modalities_named(sentence))
    if (in_sentence and not in_sentence & allowed) or (named and not named & allowed):
        return "another modality"
    if DATASET_PATTERN.search(passage.title) or DATASET_PATTERN.search(passage.text):
        return "a dataset"
    status = image_status(sample)
    if passage.id.startswith(ONTOLOGY_PREFIXES) and status != "finding":
        return "an abnormality term on an image the source records no finding for"
    normal = bool(_NORMAL.search(passage.title) or _NORMAL.search(sentence))
    if status != "normal" and normal:  # silence is not normality either
        return "a normal passage on an image the source does not call normal"
    if status == "normal" and not normal:
        return "not a normal passage on an image the source calls normal"
    return None


def background_passage(sample: Sample) -> int | None:
    """Index in `knowledge` of the highest-scoring on-topic passage (the first one on a tie), or None."""
    fitting = [i for i, p in enumerate(sample.knowledge) if quoted_sentence(p) and off_topic(p, sample) is None]
    return max(fitting, key=lambda i: sample.knowledge[i].score) if fitting else None


def background_claims(sample: Sample) -> list[Claim]:
    """'Background: <first sentence of the passage> [<id>].' — or nothing when no passage fits."""
    index = background_passage(sample)
    if index is None:
        return []
    passage = sample.knowledge[index]
    return say(
        ATTRIBUTE,
        f"Background: {quoted_sentence(passage)} [{passage.id}].",
        [Fact("background", passage.id, f"knowledge[{index}]")],
    )
