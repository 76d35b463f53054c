"""The coarse caption: one sentence from metadata alone ("CT image of the liver showing a tumor")."""

from __future__ import annotations

# Words sources use for "normal"; the caption itself goes by the record's label kinds, never by these words.
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


def _negated(label: str) -> str:
    """A negative label as a phrase: "no pneumothorax" stays, "pneumothorax" becomes "no pneumothorax"."""
    return label if label.lower().startswith(("no ", "not ", "without ")) else f"no {label}"


def _with_article(names: list[str]) -> str:
    """One name takes an article ("a renal tumor"); a list, or a name that is itself a list, does not."""
    if len(names) == 1 and "," not in names[0]:
        return f"{_article(names[0])} {names[0]}"
    return ", ".join(names)


def coarse_caption(
    modality: str | None,
    organ: str | None,
    disease: str | None,
    labels: list[str],
    label_kinds: dict[str, str] | None = None,
) -> str:
    """One sentence from metadata alone. Only the disease and labels of kind "finding" are said to be shown;
    negatives, "normal", a case-level diagnosis and the source's silence are each said as what they are.
    `label_kinds` is the record's {label: kind} (sources/label_kinds.py); a label without one is not a finding."""
    kinds = label_kinds or {}

    def of(kind: str) -> list[str]:
        return list(dict.fromkeys(label.lower() for label in labels if kinds.get(label) == kind))

    phrase = modality_phrase(modality)
    text = phrase[0].upper() + phrase[1:]
    text += f" of the {organ}" if organ else " (organ not specified by the source)"
    if tissue := of("tissue"):
        text += f" (tissue class: {', '.join(tissue)})"
    findings = [disease] if disease else of("finding")
    clauses = []
    if findings:
        clauses.append(f"showing {_with_article(findings)}")
    if uncertain := [label.removesuffix(" (uncertain)") for label in of("uncertain")]:
        clauses.append(f"with {', '.join(uncertain)} marked uncertain by the source")
    if case := of("case"):
        clauses.append(f"from a case recorded with {', '.join(case)} (not annotated on this slice)")
    if negatives := of("negative"):
        clauses.append(f"with {', '.join(_negated(n) for n in negatives)} reported")
    normal = bool(of("normal"))
    if normal and not findings and not case:
        clauses.append("with no abnormality reported by the source")
    if devices := of("device"):
        clauses.append(f"with {', '.join(devices)} present")
    if clauses:
        text += " " + ", ".join(clauses)
    if not (findings or uncertain or case or negatives or normal):
        text += "; no diagnosis is given by the source"
    return text + "."
