"""The coarse caption: one sentence from metadata alone ("CT image of the liver showing a tumor")."""

from __future__ import annotations

NORMAL_LABELS = {"normal", "no finding", "no findings", "healthy", "no disease"}

_MODALITY_PHRASE = {
    "X-Ray": "X-ray image",
    "Fundus": "fundus photograph",
    "Dermoscopy": "dermoscopy image",
    "Endoscopy": "endoscopy image",
    "Histopathology": "histopathology image",
    "Microscopy": "microscopy image",
    "Ultrasound": "ultrasound image",
    "Nuclear Medicine": "nuclear medicine image",
    "Other": "medical image",
}


def modality_phrase(modality: str | None) -> str:
    if not modality:
        return "medical image of unknown modality"
    return _MODALITY_PHRASE.get(modality, f"{modality} image")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def is_normal(disease: str | None, labels: list[str]) -> bool:
    return disease is None and bool(labels) and all(label.lower() in NORMAL_LABELS for label in labels)


def coarse_caption(modality: str | None, organ: str | None, disease: str | None, labels: list[str]) -> str:
    phrase = modality_phrase(modality)
    text = phrase[0].upper() + phrase[1:]
    text += f" of the {organ}" if organ else " (organ not specified by the source)"
    # A label that only names the organ ("kidney" on a kidney CT) is anatomy, not a finding.
    not_findings = NORMAL_LABELS | {(organ or "").lower()}
    findings = [label for label in labels if label.lower() not in not_findings]
    if disease and "," in disease:  # a list of findings takes no article
        text += f" showing {disease}"
    elif disease:
        text += f" showing {_article(disease)} {disease}"
    elif findings:
        text += " showing " + ", ".join(dict.fromkeys(findings))
    elif is_normal(disease, labels):
        text += " with no abnormality reported by the source"
    else:
        text += "; no finding is given by the source"
    return text + "."
