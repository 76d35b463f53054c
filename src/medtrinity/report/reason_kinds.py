"""Quarantine reasons grouped into kinds (paths and varying numbers left out), counted per stage.

The grouping is the build summary's (`report_console.reason_template`): reasons of one kind differ only in
paths and numbers. A kind of one record shows its own reason; a kind of several shows the numbers all of
them share and "#" for the others. Memory grows with the number of kinds, not of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medtrinity.report_console import reason_template

_SLOT = "\x00"  # how reason_template marks a number


@dataclass(frozen=True)
class ReasonKind:
    stage: str
    reason: str
    count: int


class _Kind:
    def __init__(self, reason: str, numbers: tuple[str, ...]) -> None:
        self.example = reason
        self.count = 0
        self.numbers: list[str | None] = list(numbers)  # None: the number varies within the kind

    def add(self, numbers: tuple[str, ...]) -> None:
        self.count += 1
        self.numbers = [mine if mine == theirs else None for mine, theirs in zip(self.numbers, numbers)]

    def text(self, template: str) -> str:
        if self.count == 1:
            return self.example
        parts = template.split(_SLOT)
        return parts[0] + "".join(("#" if n is None else n) + part for n, part in zip(self.numbers, parts[1:]))


def reason_kinds(rows: Iterable[tuple[str, str | None, str]]) -> list[ReasonKind]:
    """Kinds of (stage, file, reason) rows, most frequent first (then by stage and text)."""
    kinds: dict[tuple[str, str], _Kind] = {}
    for stage, file, reason in rows:
        template, numbers = reason_template(reason, file)
        kind = kinds.get((stage, template))
        if kind is None:
            kind = kinds[stage, template] = _Kind(reason, numbers)
        kind.add(numbers)
    found = [ReasonKind(stage, kind.text(template), kind.count) for (stage, template), kind in kinds.items()]
    return sorted(found, key=lambda k: (-k.count, k.stage, k.reason))
