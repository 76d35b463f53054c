"""Sentences built from claims: each sentence of a grounded description is the text of the claims it states.

A describer collects `Fact`s (what is claimed and the record field it rests on) for one sentence and
`say`s the sentence; every fact becomes a `records.Claim` carrying the sentence as its text. An attribute
or a whole description is rendered back from its claims (`render`), so no sentence exists without claims
and anyone can check a description claim by claim (docs/TRUTHFULNESS.md lists the kinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from medtrinity.records import Claim


@dataclass(frozen=True)
class Fact:
    """One claim before its sentence is written."""

    kind: str
    value: str
    evidence: str
    subject: int | None = None


def say(attribute: str, text: str, facts: Iterable[Fact]) -> list[Claim]:
    """The claims of one sentence `text` (which must state at least one fact)."""
    claims = [
        Claim(attribute=attribute, kind=f.kind, value=f.value, evidence=f.evidence, text=text, subject=f.subject)
        for f in facts
    ]
    if not claims:
        raise ValueError(f"a sentence without a claim: {text!r}")
    return claims


def sentences(claims: Iterable[Claim]) -> list[str]:
    """The sentences the claims state, in order (consecutive claims of one sentence give it once)."""
    return [text for text, _ in groupby(claims, key=lambda claim: claim.text)]


def render(claims: Iterable[Claim]) -> str:
    return " ".join(sentences(claims))


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def word_list(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
