"""How much and how many text says: areas (numbers, words, bounds) and counts of regions and findings.

A percentage is an area only when it is of the image ("4% of the image", "a tenth of the frame") or follows
an area verb in its clause ("covers about 4%") and is of nothing else: "95 % confidence", "sensitivity of
90%", "10 % of the left hemithorax" are not areas. Bounds are kept as bounds ("less than 1 %", "under half of
the image"). A count is a number word or digits before a noun: "two lesions", "a solitary mass", "three
polyps", "multiple nodules", "a single region", "No polyp" (zero, of a kind the record has).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medtrinity.describe.verify_subjects import (
    GENERIC_FINDING_NOUNS,
    SPECIFIC_FINDING_NOUNS,
    plural_forms,
)
from medtrinity.describe.vocabulary import NUMBER_WORDS, SEVERAL_WORDS, alternation

AREA_TOLERANCE_POINTS = 0.5  # percentage points, for a number stated to the tenth
AREA_TOLERANCE_RELATIVE = 0.2  # of the ROI's own area_ratio
HEDGED_TOLERANCE_POINTS = 1.0  # "about 4%", "roughly 10%": a rounded number
HEDGED_TOLERANCE_RELATIVE = 0.25
WORD_TOLERANCE_RELATIVE = 0.4  # "a quarter", "half": coarser still
WORD_TOLERANCE_POINTS = 2.0

_IMG = (
    r"(?:the\s+|this\s+)?(?:whole\s+|entire\s+|total\s+|visible\s+|overall\s+|full\s+)?"
    r"(?:image|frame|picture|photograph|photo|field\s+of\s+view|field|view|scan|slice|section|radiograph|film|slide)"
    r"(?:\s+area)?\b"
)
_OF_IMAGE = re.compile(rf"^\s*\)?\s*(?:of|in)\s+{_IMG}", re.IGNORECASE)
_OF_OTHER = re.compile(r"^\s*\)?\s*of\s+", re.IGNORECASE)
_AREA_CUE = re.compile(
    r"\b(?:occup\w*|cover\w*|takes?\s+up|taking\s+up|account\w*\s+for|spans?|spanning|fills?|filling|comprise\w*|"
    r"makes?\s+up|making\s+up|area|extent|size|footprint|represent\w*|involv\w*|measur\w*)\b",
    re.IGNORECASE,
)
# A percentage right after one of these is of something else, whatever the clause says.
_NOT_AREA = re.compile(
    r"\b(?:confidence|sensitivity|specificity|accuracy|probability|likelihood|chance|risk|survival|prevalence|"
    r"incidence|cases|patients|saturation|stenosis|fraction|reduction|increase|decrease|growth|rate|score|"
    r"certainty|PPV|NPV|AUC|opacity\s+of|transparency|contrast|brightness|intensity|density|level)\b[^%]{0,25}$",
    re.IGNORECASE,
)
_UPPER = r"less\s+than|under|below|smaller\s+than|at\s+most|up\s+to|no\s+more\s+than|not\s+more\s+than|<|≤|<="
_LOWER = r"more\s+than|over|above|greater\s+than|larger\s+than|at\s+least|exceeding|in\s+excess\s+of|>|≥|>="
_HEDGE = r"about|approximately|approx\.?|roughly|around|nearly|almost|some|circa|ca\.|~|≈|an\s+estimated|just\s+(?:over|under)"
_NUMBER = r"\d+(?:\.\d+)?"
_PERCENT = re.compile(
    rf"(?:(?P<bound>{_UPPER}|{_LOWER})\s*|(?P<hedge>{_HEDGE})\s*)?"
    rf"(?:(?P<low>{_NUMBER})\s*%?\s*(?:-|–|to|and)\s*)?(?P<value>{_NUMBER})\s*(?:%|percent\b|per\s+cent\b)",
    re.IGNORECASE,
)
_FRACTIONS = {"tenth": 10.0, "fifth": 20.0, "quarter": 25.0, "third": 100 / 3, "half": 50.0}
_FRACTION = re.compile(
    rf"(?:(?P<bound>{_UPPER}|{_LOWER})\s+|(?P<hedge>{_HEDGE})\s+)?"
    r"(?<![\w-])(?P<n>a|one|two|three|four)?[\s-]*(?P<part>tenths?|fifths?|quarters?|thirds?|half|halves)"
    rf"(?:\s+of)?\s+{_IMG}",
    re.IGNORECASE,
)
_MOST = re.compile(rf"\b(?:most|the\s+(?:vast\s+)?majority)\s+of\s+{_IMG}", re.IGNORECASE)
_SIDE_BEFORE = re.compile(
    r"(?:left|right|upper|lower|top|bottom|middle|central|centre|center|inner|outer|lateral|"
    r"medial|outermost|innermost)[\s-]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Area:
    """A stated area in percent: value, how exact ('exact', 'hedged', 'words') and a bound ('<', '>' or None)."""

    start: int
    end: int
    text: str
    value: float
    low: float | None = None
    precision: str = "exact"
    bound: str | None = None

    def fits(self, area: float) -> bool:
        if self.bound == "<":
            return area <= self.value * 1.1 + 0.05
        if self.bound == ">":
            return area >= self.value * 0.9 - 0.05
        low = self.value if self.low is None else min(self.low, self.value)
        high = max(self.low or 0.0, self.value)
        return low - self.tolerance(area) <= area <= high + self.tolerance(area)

    def tolerance(self, area: float) -> float:
        if self.precision == "words":
            return max(WORD_TOLERANCE_POINTS, WORD_TOLERANCE_RELATIVE * self.value)
        if self.precision == "hedged":
            step = (
                10.0
                if self.value >= 10 and self.value % 10 == 0
                else 5.0
                if self.value >= 5 and self.value % 5 == 0
                else 1.0
            )
            return max(HEDGED_TOLERANCE_POINTS, HEDGED_TOLERANCE_RELATIVE * area, step / 2)
        return max(AREA_TOLERANCE_POINTS, AREA_TOLERANCE_RELATIVE * area)


def _bound(word: str | None) -> str | None:
    if not word:
        return None
    return "<" if re.fullmatch(_UPPER, word.strip(), re.IGNORECASE) else ">"


def areas(text: str) -> list[Area]:
    """Every area stated in one asserted clause."""
    found = []
    for m in _PERCENT.finditer(text):
        after = text[m.end() :]
        before = text[: m.start()]
        if not _OF_IMAGE.match(after) and (
            _OF_OTHER.match(after) or not _AREA_CUE.search(before) or _NOT_AREA.search(before)
        ):
            continue  # a percentage of something else ("95 % confidence", "10 % of the left hemithorax")
        hedge = m.group("hedge") or ""
        found.append(
            Area(
                m.start(),
                m.end(),
                m.group(0),
                float(m.group("value")),
                low=float(m.group("low")) if m.group("low") else None,
                # "about 4%" is a rounded number; "about 4.0%" is still stated to the tenth.
                precision="hedged"
                if hedge and "." not in m.group("value") and not hedge.lower().startswith("just")
                else "exact",
                bound=_bound(m.group("bound"))
                or ({"just over": ">", "just under": "<"}.get(" ".join(hedge.lower().split()))),
            )
        )
    for m in _FRACTION.finditer(text):
        if _SIDE_BEFORE.search(text[: m.start("part")].rstrip(" -")) and not m.group("n"):
            continue  # "the right half of the image" is a place
        count = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4}.get((m.group("n") or "a").lower(), 1)
        part = m.group("part").lower().rstrip("s").replace("halve", "half")
        found.append(
            Area(
                m.start(),
                m.end(),
                m.group(0),
                count * _FRACTIONS[part],
                precision="words",
                bound=_bound(m.group("bound")),
            )
        )
    for m in _MOST.finditer(text):
        found.append(Area(m.start(), m.end(), m.group(0), 50.0, precision="words", bound=">"))
    return found


# ---------------------------------------------------------------- counts
ROI_NOUNS = r"regions?\s+of\s+interest|ROIs?|regions?|areas?\s+of\s+interest"
FINDING_NOUNS = alternation(plural_forms(GENERIC_FINDING_NOUNS + SPECIFIC_FINDING_NOUNS))
_NOT_ADJECTIVE = {
    "of",
    "the",
    "in",
    "on",
    "at",
    "with",
    "and",
    "or",
    "to",
    "is",
    "are",
    "was",
    "were",
    "cm",
    "mm",
    "percent",
    "per",
    "by",
    "from",
    "other",
    "more",
    "times",
    "slices",
    "images",
    "views",
    "frames",
    "a",
    "an",
    "these",
    "those",
    "its",
    "their",
    "which",
    "that",
}
_COUNT_WORD = alternation([w for w in NUMBER_WORDS if w != "no"] + list(SEVERAL_WORDS))
# "no other polyp", "no definite mass": a zero that leaves room for what is marked.
_ZERO_QUALIFIERS = {
    "other",
    "additional",
    "further",
    "new",
    "definite",
    "definitive",
    "obvious",
    "significant",
    "evident",
    "discrete",
    "acute",
    "residual",
    "second",
    "more",
    "larger",
    "suspicious",
    "separate",
    "distinct",
    "clear",
    "focal",
    "gross",
    "frank",
    "visible",
    "large",
    "sizeable",
}


@lru_cache(maxsize=256)
def _count_patterns(nouns: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The count and zero patterns for a record's nouns (finding nouns and its label words), cached."""
    noun = rf"(?P<noun>{ROI_NOUNS}|(?:{nouns}))(?![\w-])"
    count = re.compile(
        rf"(?<![\w.\-/#])(?P<n>\d+|{_COUNT_WORD})\s+(?P<adj>(?:[a-z][\w-]*,?\s+){{0,3}}?){noun}",
        re.IGNORECASE,
    )
    zero = re.compile(rf"\bno\s+(?P<adj>(?:[a-z][\w-]*\s+){{0,2}}?){noun}", re.IGNORECASE)
    return count, zero


@dataclass(frozen=True)
class Count:
    """A stated count of `noun`s: exactly `value`, or at least 2 (`several`)."""

    start: int
    end: int
    text: str
    noun: str
    value: int
    several: bool = False
    adjectives: tuple[str, ...] = ()

    @property
    def roi_noun(self) -> bool:
        return bool(re.fullmatch(ROI_NOUNS, self.noun, re.IGNORECASE))


def _count_value(word: str) -> tuple[int, bool]:
    key = " ".join(word.lower().split())
    if key.isdigit():
        return int(key), False
    if key in SEVERAL_WORDS:
        return 2, True
    return NUMBER_WORDS[key], False


def counts(text: str, nouns: str) -> list[Count]:
    """Counts stated in one asserted clause, of ROI words or of `nouns` (a regex alternation)."""
    found = []
    for m in _count_patterns(nouns)[0].finditer(text):
        adjectives = m.group("adj").lower().replace(",", " ").split()
        if any(a in _NOT_ADJECTIVE for a in adjectives):
            continue
        if m.group("n").isdigit() and re.match(r"\s*(?:cm|mm|%|x\b|×)", text[m.end("n") :]):
            continue
        value, several = _count_value(m.group("n"))
        found.append(Count(m.start(), m.end(), m.group(0), m.group("noun"), value, several, tuple(adjectives)))
    return found


def zero_counts(text: str, nouns: str) -> list[Count]:
    """'No polyp is seen', 'No region of interest was localised': a count of zero (in a negated clause)."""
    found = []
    for m in _count_patterns(nouns)[1].finditer(text):
        if set(m.group("adj").lower().split()) & (_ZERO_QUALIFIERS | _NOT_ADJECTIVE):
            continue
        found.append(Count(m.start(), m.end(), m.group(0), m.group("noun"), 0))
    return found
