"""Free text cut into the units a claim lives in: sentences, then clauses, each with what it asserts.

A model writes "The left lung is clear", "No mass in the right kidney", "CT is recommended", "could represent
a cyst", "to rule out metastasis": none of these says where a finding is. A clause keeps the span it
asserts; a negation cuts the clause from its cue on (or the whole clause, for "not" and for predicates of
normality), and a hypothetical, recommendation or general-knowledge cue makes the whole clause no claim.
Quoted background knowledge (a sentence citing a passage id like "[mt-lung-003]") is left out first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CITATION = re.compile(r"\[[A-Za-z0-9][\w.:/-]*\]")
_BACKGROUND = re.compile(r"Background:.*?\[[A-Za-z0-9][\w.:/-]*\]\.?", re.DOTALL)
# A sentence ends at . ! ? before a space (not inside "4.0%" or "e.g."), or at a line break (model lists).
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\bapprox\.)\s+|\s*\n\s*")
# Clause boundaries inside a sentence: the places where a second statement with its own subject may start.
_CLAUSE_END = re.compile(
    r"\s*;\s*|:\s+|,\s+(?:and|but|while|whereas|although|though|however|yet)\s+|\s+(?:but|whereas|while|although)\s+",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"\*\*|__|^#+\s*|^\s*[-*•]\s+|^\s*\d+[.)]\s+", re.MULTILINE)

# Cues after which the rest of the clause is not asserted ("a mass in the left kidney without fat stranding").
_NEGATION_FROM = re.compile(
    r"\b(?:no|without|free\s+of|negative\s+for|absence\s+of|lack\s+of|none\s+of|rather\s+than|instead\s+of)\b",
    re.IGNORECASE,
)
# Cues that make the whole clause not a claim: negated verbs and predicates of normality ("the left lung is clear").
_NEGATED = re.compile(
    r"\b(?:not|cannot|can't|neither|nor|never|absent|unremarkable|"
    r"(?:is|are|remains?|appears?|seems?|looks?)\s+(?:otherwise\s+|entirely\s+|completely\s+)?"
    r"(?:clear|normal|intact|preserved|unremarkable|free)|normal[- ](?:appearing|looking|sized?)|"
    r"within\s+normal\s+limits|normal\s+in\s+(?:size|appearance))\b|n't\b",
    re.IGNORECASE,
)
# Hypotheticals, recommendations and general knowledge: "could represent", "CT is recommended", "if clinically
# indicated", "to rule out", "polyps typically appear …".
_HYPOTHETICAL = re.compile(
    r"\b(?:could|may|might|would|should|must|if|unless|whether|"
    r"recommend\w*|advis\w*|suggested|consider\w*|rul(?:e|es|ed|ing)\s+out|to\s+exclude|exclusion\s+of|"
    r"follow[- ]?up|further\s+(?:evaluation|imaging|assessment|work-?up|characteri[sz]ation|investigation)|"
    r"correlat\w*|differential|versus|"
    r"typically|usually|often|commonly|generally|classically|frequently|tends?\s+to)\b",
    re.IGNORECASE,
)
# Cues that an imaging modality named in the clause is another study, not this image.
_OTHER_STUDY = re.compile(
    r"\b(?:recommend\w*|advis\w*|suggested|consider\w*|further|follow[- ]?up|correlat\w*|prior|previous|"
    r"comparison|compared|than|unlike|instead\s+of|if|would|could|might|should|may|typically|usually|often|"
    r"commonly|generally|classically|modality\s+of\s+choice|gold\s+standard|warranted|needed|required)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    """One clause of the text. `asserted` is the leading part that claims something ('' if nothing does)."""

    text: str
    asserted: str
    sentence: int
    hypothetical: bool  # a hypothetical, recommendation or general-knowledge clause

    @property
    def negated(self) -> str:
        """The part after a negation cue ("no mass in the right kidney"): stated as absent."""
        return self.text[len(self.asserted) :]


def claims_text(text: str) -> str:
    """The text without quoted background knowledge (sentences that cite a passage id); line breaks are kept,
    as a list item ("- Extent: about 4% of the image") is a statement of its own."""
    text = _BACKGROUND.sub(" ", text)
    lines = (" ".join(s for s in _SENTENCE_END.split(line) if not _CITATION.search(s)) for line in text.splitlines())
    return "\n".join(line for line in lines if line.strip())


def sentences(text: str) -> list[str]:
    text = _MARKUP.sub(" ", text)
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _asserted_part(clause: str) -> str:
    if _NEGATED.search(clause) or _HYPOTHETICAL.search(clause):
        return ""
    cue = _NEGATION_FROM.search(clause)
    return clause[: cue.start()] if cue else clause


def split_clauses(text: str) -> list[Clause]:
    """Every clause of `text` (background knowledge already removed), in order."""
    out = []
    for number, sentence in enumerate(sentences(text)):
        for part in _CLAUSE_END.split(sentence):
            part = part.strip(" ,")
            if not part:
                continue
            out.append(
                Clause(
                    text=part,
                    asserted=_asserted_part(part),
                    sentence=number,
                    hypothetical=bool(_HYPOTHETICAL.search(part)),
                )
            )
    return out


def other_study_cues(text: str) -> list[tuple[int, int]]:
    """Spans of words that make a modality named near them another study ("CT is recommended", "prior MRI")."""
    return [m.span() for m in _OTHER_STUDY.finditer(text)]
