"""Where text says a thing is: image-frame positions on the five-bin grid, image sides and patient sides.

The grid words of `records` (top … bottom, left … right, edges 0.2/0.4/0.6/0.8) are exact when a text uses
a compound word ("upper-middle", "right-center"). Plain words are coarse and allow the neighbouring bin:
"upper" is the upper half (top, upper-middle) and may reach the middle bin; "top" is the top bin or the one
below; "left" is the left half, reaching the centre band; "corner", "edge" and "far" keep to the outer bin.
"top right" thus fits an ROI at upper-middle right-center, and "lower left" never fits one at top right.

Lung zones ("upper zone", "apex", "bases") read as vertical positions on a radiograph only: on an axial
slice the top of the image is the front of the body. "left kidney", "right-sided", "left upper lobe", "right
hemithorax", "the patient's left" state the patient's side; "on the right of the image", "right half of the
image" the image's side; a bare "on the left" either one (the image's, on a photograph).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medtrinity.describe.vocabulary import PAIRED_STRUCTURES, alternation
from medtrinity.records import HORIZONTAL_WORDS, VERTICAL_WORDS

PHOTO_MODALITIES = frozenset({"Endoscopy", "Dermoscopy", "Fundus", "Histopathology", "Microscopy", "OCT"})
_IMG = (
    r"(?:whole\s+|entire\s+)?(?:image|frame|picture|photograph|photo|field\s+of\s+view|field|view|scan|slice|"
    r"radiograph|film)"
)
_OF_IMG = rf"\s+of\s+(?:the|this)\s+{_IMG}\b"
_NOT_OF_OTHER = rf"(?!\s+of\s+(?!(?:the|this)\s+{_IMG}\b))"
# A bare place word ends its phrase: "near the top.", "in the center, …" — not "in the middle lobe".
_PHRASE_END = r"(?=\s*(?:[,.;:)]|$|and\b|with\b|where\b|there\b|is\b|are\b))"
_APOS = r"(?:'|’)"
_PAIRED = alternation(PAIRED_STRUCTURES)
# Words after a position pair that make it anatomy ("upper left lobe", "right lower quadrant" of the abdomen).
_ANATOMICAL_NEXT = (
    r"(?!\s+(?:[\w-]+\s+)?(?:lobes?|zones?|poles?|limbs?|extremit\w+|lids?|eyelids?|ventricles?|atri(?:um|a|al)|"
    rf"{_PAIRED}|quadrants?(?!{_OF_IMG})))"
)


def _bins(words: tuple[str, ...], *names: str) -> frozenset[str]:
    return frozenset(w for w in words if w in names)


# word -> allowed bins (core and, for a coarse word, the neighbour)
_V = {
    "top": _bins(VERTICAL_WORDS, "top", "upper-middle"),
    "upper": _bins(VERTICAL_WORDS, "top", "upper-middle", "middle"),
    "upper-middle": _bins(VERTICAL_WORDS, "upper-middle"),
    "middle": _bins(VERTICAL_WORDS, "upper-middle", "middle", "lower-middle"),
    "lower-middle": _bins(VERTICAL_WORDS, "lower-middle"),
    "lower": _bins(VERTICAL_WORDS, "middle", "lower-middle", "bottom"),
    "bottom": _bins(VERTICAL_WORDS, "lower-middle", "bottom"),
}
_H = {
    "left": _bins(HORIZONTAL_WORDS, "left", "left-center", "center"),
    "left-center": _bins(HORIZONTAL_WORDS, "left-center"),
    "center": _bins(HORIZONTAL_WORDS, "left-center", "center", "right-center"),
    "right-center": _bins(HORIZONTAL_WORDS, "right-center"),
    "right": _bins(HORIZONTAL_WORDS, "right-center", "right", "center"),
}
_EDGE_V = {
    "top": _bins(VERTICAL_WORDS, "top", "upper-middle"),
    "bottom": _bins(VERTICAL_WORDS, "lower-middle", "bottom"),
}
_EDGE_H = {
    "left": _bins(HORIZONTAL_WORDS, "left", "left-center"),
    "right": _bins(HORIZONTAL_WORDS, "right-center", "right"),
}
_ZONES = {"upper": _V["upper"], "mid": _V["middle"], "lower": _V["lower"]}


def _vertical_word(word: str) -> str:
    word = re.sub(r"[\s-]+", "-", word.lower())
    return {
        "mid": "middle",
        "central": "middle",
        "centre": "middle",
        "center": "middle",
        "superior": "upper",
        "upper-mid": "upper-middle",
        "lower-mid": "lower-middle",
    }.get(word, word)


def _horizontal_word(word: str) -> str:
    word = re.sub(r"[\s-]+", "-", word.lower()).replace("centre", "center")
    return {"middle": "center", "central": "center"}.get(word, word)


@dataclass(frozen=True)
class Placement:
    """One stated place. kind 'position' (grid bins) or 'side'; frame 'image', 'patient' or 'either'."""

    start: int
    end: int
    text: str
    kind: str
    frame: str = "image"
    vertical: frozenset[str] | None = None
    horizontal: frozenset[str] | None = None
    side: str | None = None  # patient or either frame: "left" / "right"
    periphery: bool = False
    border: frozenset[str] = frozenset()  # image edges the thing is said to reach ("top", "left", …)
    structure: bool = False  # the side qualifies a named structure ("left kidney"), not only a finding


_V_WORD = r"(?:upper|lower)[\s-]mid(?:dle)?|top|upper|bottom|lower|middle|mid"
_H_WORD = r"(?:left|right)-cent(?:er|re)|left|right|cent(?:er|re)|middle"
_PAIR = re.compile(
    rf"(?<![\w-])(?P<v>{_V_WORD})[\s-]+(?P<h>{_H_WORD})(?![\w-])(?P<corner>[\s-]+(?:hand\s+)?corner)?{_ANATOMICAL_NEXT}",
    re.IGNORECASE,
)
_PAIR_REVERSED = re.compile(
    rf"(?<![\w-])(?P<h>left|right)[\s-]+(?P<v>upper|lower|top|bottom)"
    rf"(?:\s+(?:part|portion|region|area|aspect|side|half|quadrant)(?={_OF_IMG})|(?P<corner>\s+corner))",
    re.IGNORECASE,
)
_VERTICAL_ONLY = (
    re.compile(
        rf"(?<![\w-])(?P<v>top|upper|bottom|lower|middle|central|centre|center)\s+(?:half|part|portion|third|"
        rf"aspect|region|area|section|side|zone)(?={_OF_IMG})",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:at|near|along|toward|towards|close\s+to|by)\s+the\s+(?P<edge>top|bottom|upper|lower)"
        rf"(?:\s+(?:edge|border|margin|boundary))?(?:{_OF_IMG}|{_PHRASE_END})",
        re.IGNORECASE,
    ),
)
_MID_HEIGHT = re.compile(
    rf"\b(?:at|near|around)\s+(?:the\s+)?mid-?height(?:\s+(?:of|in)\s+the\s+{_IMG})?", re.IGNORECASE
)
_ZONE = re.compile(
    r"(?<![\w-])(?P<zone>upper|mid|middle|lower)[\s-]?(?:lung\s+)?zones?\b|(?P<apex>(?:lung|pulmonary)\s+ap(?:ex|ices)|"
    r"(?<=left\s)ap(?:ex|ices)|(?<=right\s)ap(?:ex|ices)|\bapical\s+(?:segments?|region|lung))|"
    r"(?P<base>(?:lung|pulmonary)\s+bases?|(?<=left\s)bases?\b|(?<=right\s)bases?\b|\bbibasa(?:l|lar)|\bbibasilar|"
    r"\bbasa(?:l|lar)\s+(?:segments?|region|lung))",
    re.IGNORECASE,
)
_CENTRE = re.compile(
    rf"(?:\b(?:located|situated|positioned|placed|lies|lying|sits|sitting|seen|found)\s+centrally\b|"
    rf"\bcentrally\s+(?:located|situated|positioned|placed|in\s+the\s+{_IMG})|"
    rf"\b(?:in|at|near|toward|towards)\s+the\s+(?:very\s+|approximate\s+)?(?:cent(?:er|re)|middle)"
    rf"(?:{_OF_IMG}|{_PHRASE_END})|\bcentral\s+(?:part|portion|region|area|zone)(?={_OF_IMG}))",
    re.IGNORECASE,
)
_EDGE_WORD = r"top|bottom|left|right|upper|lower"
_BORDER = re.compile(
    rf"\b(?:reach\w*|touch\w*|abut\w*|extend\w*\s+to|contact\w*|meets?|runs?\s+to)\s+the\s+"
    rf"(?:(?:image|frame)(?:{_APOS}s)?\s+)?(?:(?:border|edge|margin|boundary)(?:{_OF_IMG})?\s+(?:at|along|on)\s+the\s+)?"
    rf"(?P<edges>(?:{_EDGE_WORD})(?:\s*(?:,|and|,\s*and)\s*(?:{_EDGE_WORD}))*)"
    rf"(?:\s+(?:edges?|borders?|margins?|sides?|boundar(?:y|ies))(?:{_OF_IMG})?)?",
    re.IGNORECASE,
)
_PERIPHERY = re.compile(
    rf"\b(?:towards?|at|in|near|along)\s+the\s+periphery(?:{_OF_IMG}|{_PHRASE_END})|"
    r"\bperipherally\s+(?:located|situated|placed)|\b(?:located|situated|lies|lying)\s+peripherally",
    re.IGNORECASE,
)
_IMAGE_SIDE = (
    re.compile(
        rf"(?<![\w-])(?P<h>left|right)(?:[\s-]hand)?\s+(?:side|half|part|portion|aspect|third|field|area|"
        rf"region|section)(?={_OF_IMG})",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![\w-])(?P<edge>left|right)(?:[\s-]hand)?\s+(?:edge|border|margin|boundary)(?={_OF_IMG})|"
        rf"\bfar\s+(?P<far>left|right)\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:on|to|at|in|towards?)\s+the\s+(?P<h>left|right)(?={_OF_IMG})", re.IGNORECASE),
    re.compile(rf"\bimage{_APOS}?s?\s+(?P<h>left|right)\b", re.IGNORECASE),
    re.compile(
        rf"(?<![\w-])(?P<h>left|right)\s+of\s+(?:the\s+)?(?:{_IMG}\s+)?(?:cent(?:re|er)|midline)(?:{_OF_IMG})?",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:in|on|within|occupying)\s+the\s+(?P<h>left|right)(?:[\s-]hand)?\s+(?:half|third|portion|part)\b"
        r"(?!\s+of\b)",
        re.IGNORECASE,
    ),
)
_PATIENT_SIDE = (
    re.compile(rf"\bpatient{_APOS}s\s+(?P<s>left|right)\b", re.IGNORECASE),
    re.compile(r"\b(?P<s>left|right)\s+(?:side\s+)?of\s+the\s+patient\b", re.IGNORECASE),
    re.compile(r"(?<![\w-])(?P<s>left|right)[\s-]+sided\b", re.IGNORECASE),
    re.compile(
        rf"(?<![\w-])(?P<s>left|right)\s+(?:(?:upper|middle|lower|mid|posterior|anterior|lateral|medial|"
        rf"inferior|superior)[\s-]+){{0,2}}(?:{_PAIRED})(?![\w-])(?![\s-]+side\b)",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?<![\w-])(?P<s>left|right)\s+(?:side|half|aspect|portion|part)\s+of\s+the\s+(?:patient|body|chest|"
        r"thorax|abdomen|brain|head|neck|pelvis|skull|face)\b",
        re.IGNORECASE,
    ),
)
# "on the left", "on the right side": which frame is meant is not said.
_EITHER_SIDE = re.compile(
    rf"\b(?:on|to|at|towards?)\s+the\s+(?P<s>left|right)(?:[\s-]hand)?(?:\s+side)?{_PHRASE_END}",
    re.IGNORECASE,
)


def placements(text: str, modality: str, skip: list[tuple[int, int]] = ()) -> list[Placement]:
    """Every place stated in `text` (one asserted clause), but those inside a span of `skip` (a label's name,
    as the "image left" of "lung field (image left)")."""
    found: list[Placement] = []
    # Positions and sides are read separately: "left upper zone" states both the patient's side and a zone.
    taken: dict[str, list[tuple[int, int]]] = {"position": [], "side": []}

    def free(m: re.Match[str], kind: str = "position") -> bool:
        return all(m.end() <= a or m.start() >= b for a, b in taken[kind])

    def add(m: re.Match[str], **fields) -> None:
        taken[fields["kind"]].append((m.start(), m.end()))
        found.append(Placement(m.start(), m.end(), m.group(0), **fields))

    for m in _BORDER.finditer(text):
        edges = {
            w.lower().replace("upper", "top").replace("lower", "bottom")
            for w in re.findall(_EDGE_WORD, m.group("edges"), re.IGNORECASE)
        }
        add(m, kind="position", border=frozenset(edges))
    for pattern in (_PAIR_REVERSED, _PAIR):
        for m in pattern.finditer(text):
            if not free(m):
                continue
            v, h = _vertical_word(m.group("v")), _horizontal_word(m.group("h"))
            if m.group("corner") and v in ("top", "upper", "bottom", "lower") and h in _EDGE_H:
                add(
                    m,
                    kind="position",
                    vertical=_EDGE_V["top" if v in ("top", "upper") else "bottom"],
                    horizontal=_EDGE_H[h],
                )
            elif v in _V and h in _H:
                add(m, kind="position", vertical=_V[v], horizontal=_H[h])
    for m in _CENTRE.finditer(text):
        if free(m):
            add(m, kind="position", vertical=_V["middle"], horizontal=_H["center"])
    for m in _PERIPHERY.finditer(text):
        if free(m):
            add(m, kind="position", periphery=True)
    for pattern in _VERTICAL_ONLY:
        for m in pattern.finditer(text):
            if not free(m):
                continue
            if "edge" in m.groupdict() and m.group("edge"):
                word = m.group("edge").lower()
                add(m, kind="position", vertical=_EDGE_V["top" if word in ("top", "upper", "superior") else "bottom"])
            else:
                add(m, kind="position", vertical=_V[_vertical_word(m.group("v"))])
    for m in _MID_HEIGHT.finditer(text):
        if free(m):
            add(m, kind="position", vertical=_V["middle"])
    if modality == "X-Ray":
        for m in _ZONE.finditer(text):
            if free(m):
                zone = (m.group("zone") or "").lower()
                key = (
                    "upper" if m.group("apex") else "lower" if m.group("base") else "mid" if zone == "middle" else zone
                )
                add(m, kind="position", vertical=_ZONES[key])
    # The "left" of "upper left" or of "reaches the border at the left" is no side statement.
    taken["side"] += [(p.start, p.end) for p in found if p.horizontal is not None or p.border]
    for pattern in _IMAGE_SIDE:
        for m in pattern.finditer(text):
            if not free(m, "side"):
                continue
            groups = m.groupdict()
            if groups.get("edge") or groups.get("far"):
                add(m, kind="side", horizontal=_EDGE_H[(groups.get("edge") or groups["far"]).lower()])
            else:
                add(m, kind="side", horizontal=_H[m.group("h").lower()])
    photo = modality in PHOTO_MODALITIES
    for pattern in _PATIENT_SIDE:
        for m in pattern.finditer(text):
            if free(m, "side"):
                add(m, kind="side", frame="patient", side=m.group("s").lower(), structure=pattern is _PATIENT_SIDE[3])
    for m in _EITHER_SIDE.finditer(text):
        if free(m, "side"):
            side = m.group("s").lower()
            if photo:
                add(m, kind="side", horizontal=_H[side])
            else:
                add(m, kind="side", frame="either", side=side, horizontal=_H[side])
    return sorted((p for p in found if not any(a <= p.start and p.end <= b for a, b in skip)), key=lambda p: p.start)
