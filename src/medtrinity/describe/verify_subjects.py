"""Which ROI a statement is about: mentions of ROIs in text, and the subject of each statement.

"The mass arises from the left kidney" states the mass's side, so it is checked against the tumour ROI, not
the kidney ROI the clause also names. A mention is an ROI's label ("peritumoral edema", "metastasis #2",
"lung field (image left)"), a word of it ("edema", "tumour"), a generic finding noun that stands for the
finding ROIs ("mass", "lesion", "abnormality"), a word for the marked regions ("the region of interest"), a
pronoun ("it", "this lesion") that continues the last subject, or the name of something that is no ROI
("the liver" when no ROI is the liver), which makes the statement not checkable against the ROIs.

The subject of a statement at a span of its clause is, in order: a mention just after it ("left renal
*mass*"); an ROI the statement names, unless as a place ("the *right lung field* occupies …"); the nearest
mention before it that is not a place ("the *mass* arises from the left kidney" — "in
the kidney" is a place); the first mention after it ("in the upper right there is a *polyp*"); a mention the
statement itself makes ("the *right kidney* is enlarged"); the subject carried from earlier clauses; the
one ROI of a record with one ROI. None of these: every ROI may be meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medtrinity.describe.anatomy import ORGAN_WORDS, canonical_organ
from medtrinity.describe.vocabulary import patient_side
from medtrinity.records import ROI, Sample

# Nouns a model uses for "the thing marked", whatever its label: they stand for the finding ROIs.
GENERIC_FINDING_NOUNS = (
    "lesion",
    "mass",
    "tumor",
    "tumour",
    "neoplasm",
    "growth",
    "abnormality",
    "finding",
    "focus",
    "foci",
    "nodule",
    "opacity",
    "lump",
    "spot",
    "density",
    "shadow",
    "anomaly",
    "pathology",
)
# Nouns of particular findings: they mean an ROI whose label says so, and nothing else.
SPECIFIC_FINDING_NOUNS = (
    "polyp",
    "cyst",
    "effusion",
    "pneumothorax",
    "edema",
    "oedema",
    "necrosis",
    "core",
    "enhancement",
    "hemorrhage",
    "haemorrhage",
    "fracture",
    "fibroma",
    "carcinoma",
    "cancer",
    "melanoma",
    "nevus",
    "naevus",
    "metastasis",
    "metastases",
    "consolidation",
    "infiltrate",
    "atelectasis",
    "cardiomegaly",
    "calcification",
    "hyperintensity",
    "hypointensity",
    "collection",
    "abscess",
    "ulcer",
    "adenoma",
    "keratosis",
    "carcinoma",
    "pneumonia",
    "glioma",
    "hematoma",
    "haematoma",
)
# Words for the marked regions as such: every ROI.
ROI_WORDS = re.compile(
    r"\b(?:regions?\s+of\s+interest|ROIs?|(?:highlighted|marked|outlined|segmented|annotated|delineated|"
    r"labelled|labeled|locali[sz]ed|indicated|boxed|detected)\s+(?:regions?|areas?|structures?|zones?))\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(?:it|its|this|which|they|their|these)\b", re.IGNORECASE)
_DEFINITE = re.compile(r"\b(?:the|this|that|these|its)\s+(?:[\w-]+\s+)?$", re.IGNORECASE)
# A mention in a place phrase ("in the left kidney", "from the liver") is where something is, not the subject.
_PLACE = re.compile(
    r"\b(?:in|within|into|inside|of|from|at|on|near|to|involving|along|across|over|through|throughout|beside|"
    r"above|below|behind|under|overlying|abutting|adjacent)\s+(?:the\s+|a\s+|an\s+|its\s+)?"
    r"(?:[\w-]+\s+){0,2}$",
    re.IGNORECASE,
)
# "the larger polyp", "the smallest lesion": one of several ROIs with the label, by size.
_SIZE_WORD = re.compile(
    r"\b(?:(?P<big>larger|largest|bigger|biggest|dominant|main|major)|"
    r"(?P<small>smaller|smallest|minor))\s+(?:[\w-]+\s+)?$",
    re.IGNORECASE,
)
_SIZED_ONE = re.compile(
    r"\b(?:larger|largest|bigger|biggest|smaller|smallest)\s+(?:one|of\s+(?:the|these)\s+\w+)\b", re.IGNORECASE
)
# "an area of edema", "a focus of enhancement": the noun after "of" is what the phrase is.
_OF_WHAT = re.compile(
    r"\b(?:area|region|focus|foci|zone|component|collection|amount|pocket|patch|rim|portion|"
    r"site|spot|band|island|cluster|group|number|pair)s?\s+of\s+(?:[\w-]+\s+){0,2}$",
    re.IGNORECASE,
)
_MODIFIES = re.compile(r"[\s-]+(?:[a-z][\w-]*\s+)?", re.IGNORECASE)
_ADJECTIVAL_GAP = re.compile(r"^[\s,-]*(?:[\w-]+\s+){0,2}$")
# Spelling variants a label may be written in.
_SPELLINGS = (
    ("tumour", "tumor"),
    ("oedema", "edema"),
    ("haem", "hem"),
    ("centre", "center"),
    ("naevus", "nevus"),
    ("oesophag", "esophag"),
    ("colour", "color"),
)
# Label words that describe how a region was found, not a finding: an ROI whose label is only these is a region.
_REGION_WORDS = re.compile(
    r"^(?:foreground|background|body|tissue|cells?|bone|head|(?:\w+[- ])?(?:field|region|area|zone)"
    r"(?:\s*\(.*\))?)$",
    re.IGNORECASE,
)
_LESION_LIKE_REGION = re.compile(r"focal|hyper|hypo|lesion|nodul|mass", re.IGNORECASE)
# Labels that name a stain, a kind of study, a device, a tissue or a normal/negative result.
_NOT_FINDING_LABEL = re.compile(
    r"\b(?:stain|scan|glands?|devices?|normal|no|not|negative|mucosa|stroma)\b", re.IGNORECASE
)
# Other words a model uses for a finding an ROI's label names.
NOUN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "consolidation": ("opacity",),
    "infiltrate": ("opacity",),
    "pneumonia": ("opacity",),
    "airspace": ("opacity",),
    "glioma": ("tumor",),
    "carcinoma": ("tumor", "lesion"),
    "cancer": ("tumor", "lesion"),
    "neoplasm": ("tumor",),
    "melanoma": ("lesion",),
    "nevus": ("lesion",),
    "keratosis": ("lesion",),
    "adenoma": ("polyp",),
    "necrosis": ("core",),
    "collapse": ("pneumothorax",),
}
_NON_FINDING_KINDS = frozenset({"anatomy", "tissue", "stain", "study", "device", "negative", "normal", "case"})


_IRREGULAR_PLURALS = {
    "metastases": "metastasis",
    "foci": "focus",
    "nuclei": "nucleus",
    "apices": "apex",
    "diagnoses": "diagnosis",
    "bases": "base",
    "pneumothoraces": "pneumothorax",
    "pneumothoraxes": "pneumothorax",
    "hemithoraces": "hemithorax",
    "necroses": "necrosis",
}


def plural_forms(nouns) -> list[str]:
    """Each noun and its plural(s): 'opacity' -> 'opacities', 'pneumothorax' -> 'pneumothoraces'."""
    forms = set(nouns)
    for noun in nouns:
        forms |= {plural for plural, singular in _IRREGULAR_PLURALS.items() if singular == noun}
        if noun.endswith("y"):
            forms.add(noun[:-1] + "ies")
        elif noun.endswith(("s", "x", "ch", "sh")):
            forms.add(noun + "es")
        else:
            forms.add(noun + "s")
    return sorted(forms)


def normalise(word: str) -> str:
    """Lower case, one spelling, singular: how mentions and labels are compared."""
    word = " ".join(word.lower().split())
    for variant, spelling in _SPELLINGS:
        word = word.replace(variant, spelling)
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        last = _IRREGULAR_PLURALS[last]
    elif last.endswith("ies"):
        last = last[:-3] + "y"  # opacities -> opacity
    elif last.endswith(("sses", "xes", "ches", "shes")):
        last = last[:-2]  # masses -> mass
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    return f"{head} {last}" if head else last


def _bare_label(label: str) -> str:
    """A label without its parenthetical and side qualifiers: 'lung field (image left)' -> 'lung field'."""
    return re.sub(r"\s*\(.*?\)", "", label).strip()


def roi_role(roi: ROI, sample: Sample) -> str:
    """'finding', 'anatomy', 'region' (outlined by appearance) or 'other', from the label's kind or its words."""
    kind = roi.kind if roi.kind and roi.kind != "label" else sample.label_kinds.get(roi.label, "label")
    if kind in ("finding", "uncertain"):
        return "finding"
    if kind == "anatomy":
        return "anatomy"
    if kind == "region":
        return "region"
    if kind in _NON_FINDING_KINDS:
        return "other"
    bare = _bare_label(roi.label)
    side_free = re.sub(r"^(?:left|right)\s+", "", bare, flags=re.IGNORECASE)
    if canonical_organ(side_free) is not None:
        return "anatomy"
    if _REGION_WORDS.match(bare) or bare.lower().endswith((" region", " field")):
        return "region"
    if _NOT_FINDING_LABEL.search(bare):
        return "other"
    return "finding"


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    rois: tuple[int, ...] | None  # None: something that is no ROI (the statement is not about the ROIs)
    place: bool  # in a place phrase ("in the left kidney")
    pronoun: bool = False
    label: bool = False  # the text of an ROI's label ("lung field (image left)")


@dataclass(frozen=True)
class _LabelPattern:
    pattern: re.Pattern[str]
    rois_by_text: dict[str, tuple[int, ...]]


@lru_cache(maxsize=256)
def _label_pattern(labels: tuple[str, ...]) -> _LabelPattern:
    """One regex for every way the record's labels are written; matched text (normalised) -> ROI indices."""
    by_text: dict[str, list[int]] = {}
    totals: dict[str, int] = {}
    for label in labels:
        totals[label] = totals.get(label, 0) + 1
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        for form in {label, _bare_label(label)}:
            if not form:
                continue
            by_text.setdefault(normalise(form), []).append(i)
            if totals[label] > 1:
                by_text.setdefault(normalise(f"{form} #{seen[label]}"), []).append(i)
    words = sorted(by_text, key=len, reverse=True)
    alternatives = []
    for text in words:
        body = re.escape(text).replace(r"\ ", r"\s+")
        for variant, spelling in _SPELLINGS:
            body = body.replace(re.escape(spelling), f"(?:{re.escape(spelling)}|{re.escape(variant)})")
        alternatives.append(body + r"(?:e?s)?")
    pattern = re.compile(rf"(?<![\w-])(?:{'|'.join(alternatives)})(?![\w-])", re.IGNORECASE) if alternatives else None
    return _LabelPattern(pattern, {k: tuple(dict.fromkeys(v)) for k, v in by_text.items()})


_FINDING_NOUN = re.compile(
    r"(?<![\w-])("
    + "|".join(sorted(GENERIC_FINDING_NOUNS + SPECIFIC_FINDING_NOUNS, key=len, reverse=True))
    + r")(?:e?s)?(?![\w-])",
    re.IGNORECASE,
)


_GENERIC = frozenset(normalise(n) for n in GENERIC_FINDING_NOUNS)
_LESION_LABEL = re.compile(
    r"\b(?:tumou?r|mass|lesion|nodul|polyp|cyst|neoplas|carcinom|melanom|nev|naev|metasta|fibrom|"
    r"adenom|gliom|sarcom|lymphom)",
    re.IGNORECASE,
)


def _organ_rois(sample: Sample, word: str) -> tuple[int, ...] | None:
    """The ROIs an organ word names ("renal" -> the kidney ROIs; "heart" -> a cardiomegaly ROI), or None."""
    organ = canonical_organ(word)
    rois = tuple(
        i
        for i, r in enumerate(sample.rois)
        if canonical_organ(re.sub(r"^(?:left|right)\s+", "", _bare_label(r.label), flags=re.IGNORECASE)) == organ
    )
    if not rois and organ == "heart":
        rois = tuple(i for i, r in enumerate(sample.rois) if "cardiomegaly" in r.label.lower())
    return rois or None


class Mentions:
    """The mentions in one record's text, and the subject rule; built once per record."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self.rois = sample.rois
        self.roles = [roi_role(r, sample) for r in sample.rois]
        self.labels = _label_pattern(tuple(r.label for r in sample.rois))
        findings = tuple(i for i, role in enumerate(self.roles) if role == "finding")
        lesion_like = tuple(
            i for i, r in enumerate(sample.rois) if self.roles[i] == "region" and _LESION_LIKE_REGION.search(r.label)
        )
        self.finding_rois = findings or lesion_like
        self.focus: tuple[int, ...] | None = None

    def noun_rois(self, noun: str) -> tuple[int, ...] | None:
        """The ROIs a finding noun may stand for; None when none is of that kind."""
        word = normalise(noun)
        for candidate in (word, *NOUN_SYNONYMS.get(word, ())):
            with_word = tuple(
                i
                for i, r in enumerate(self.rois)
                if candidate in normalise(_bare_label(r.label)).replace("-", " ").split()
            )
            if with_word:
                return with_word
        if word in _GENERIC or any(s in _GENERIC for s in NOUN_SYNONYMS.get(word, ())):
            # "the mass" of a glioma is its tumour parts, not the oedema around them
            lesions = tuple(i for i in self.finding_rois if _LESION_LABEL.search(self.rois[i].label))
            return lesions or self.finding_rois or None
        return None

    def labelled(self, noun: str) -> bool:
        """Whether some ROI's label names this noun (or a word a model uses for it)."""
        word = normalise(noun)
        return any(
            candidate in normalise(_bare_label(r.label)).replace("-", " ").split()
            for candidate in (word, *NOUN_SYNONYMS.get(word, ()))
            for r in self.rois
        )

    def _by_size(self, text: str, start: int, rois: tuple[int, ...]) -> tuple[int, ...]:
        size = _SIZE_WORD.search(text[max(0, start - 40) : start])
        if not size or len(rois) < 2:
            return rois
        pick = max if size.group("big") else min
        return (pick(rois, key=lambda i: self.rois[i].area_ratio),)

    def _side_filtered(self, text: str, start: int, rois: tuple[int, ...]) -> tuple[int, ...]:
        """'left lung field' among two lung fields: the one on the patient's left, when the orientation is known."""
        before = re.search(r"\b(left|right)[\s-]+$", text[:start], re.IGNORECASE)
        if not before or len(rois) < 2:
            return rois
        side = before.group(1).lower()
        kept = tuple(
            i for i in rois if patient_side(self.rois[i].position.horizontal, self.sample.patient_left_on_image) == side
        )
        return kept or rois

    def find(self, text: str) -> list[Mention]:
        found: list[Mention] = []
        taken: list[tuple[int, int]] = []

        def free(s: int, e: int) -> bool:
            return all(e <= a or s >= b for a, b in taken)

        def add(s: int, e: int, rois: tuple[int, ...] | None, pronoun: bool = False, label: bool = False) -> None:
            taken.append((s, e))
            place = bool(_PLACE.search(text[:s])) and not _OF_WHAT.search(text[:s])
            found.append(Mention(s, e, rois, place, pronoun, label))

        if self.labels.pattern is not None:
            for m in self.labels.pattern.finditer(text):
                rois = self.labels.rois_by_text.get(normalise(m.group(0))) or self.labels.rois_by_text.get(
                    normalise(m.group(0)).rstrip("s")
                )
                if rois:
                    add(
                        m.start(),
                        m.end(),
                        self._by_size(text, m.start(), self._side_filtered(text, m.start(), rois)),
                        label=True,
                    )
        for m in ROI_WORDS.finditer(text):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), tuple(range(len(self.rois))))
        for m in _FINDING_NOUN.finditer(text):
            if free(m.start(), m.end()):
                rois = self.noun_rois(m.group(1))
                if rois and _DEFINITE.search(text[: m.start()]) and self.focus and set(self.focus) <= set(rois):
                    rois = self.focus  # "the lesion", "this mass": the one being talked about
                elif rois:
                    rois = self._by_size(text, m.start(), rois)
                add(m.start(), m.end(), rois)
        for m in ORGAN_WORDS.finditer(text):
            if free(m.start(), m.end()):
                if _MODIFIES.match(text, m.end()) and any(
                    f.start >= m.end() and _MODIFIES.fullmatch(text[m.end() : f.start]) for f in found
                ):
                    continue  # "renal cyst", "pulmonary nodule": the organ word only says where the finding is
                rois = _organ_rois(self.sample, m.group(0))  # None: an organ that is no ROI
                add(m.start(), m.end(), rois and self._side_filtered(text, m.start(), rois))
        for m in _SIZED_ONE.finditer(text):
            if free(m.start(), m.end()):  # "the smaller one": of the ROIs labelled like the one in focus
                labels = {self.rois[i].label for i in self.focus or ()}
                pool = tuple(i for i, r in enumerate(self.rois) if r.label in labels) or tuple(range(len(self.rois)))
                pick = min if m.group(0).lower().startswith("small") else max
                add(m.start(), m.end(), (pick(pool, key=lambda i: self.rois[i].area_ratio),) if pool else None)
        for m in _PRONOUN.finditer(text):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), self.focus, pronoun=True)
        return sorted(found, key=lambda x: x.start)

    def subject(
        self, text: str, start: int, end: int, mentions: list[Mention], structure: bool = False
    ) -> tuple[int, ...] | None:
        """The ROIs the statement at text[start:end] is about; () when it is about something that is no ROI.

        structure: the statement names an anatomical structure ("the right costophrenic angle is sharp"); with
        no ROI mentioned in its clause it is about that structure, not about the ROI in focus.
        """
        outside = [m for m in mentions if m.end <= start or m.start >= end]
        own = [m for m in mentions if not (m.end <= start or m.start >= end) and m.rois]
        after = [m for m in outside if m.start >= end and not m.pronoun]
        if after and not after[0].place and _ADJECTIVAL_GAP.match(text[end : after[0].start]):
            return self._resolved(after[0])
        named = [m for m in own if not m.place]
        if named:  # "the left lung field occupies …": the statement names its own subject
            return named[-1].rois
        before = [m for m in outside if m.end <= start and not m.place and (m.rois is not None or not m.pronoun)]
        if before:
            chosen = before[-1]
            if chosen.pronoun:  # "a nodule, which lies …": the pronoun's antecedent in this clause, else the focus
                earlier = [m for m in before[:-1] if not m.pronoun and m.rois is not None]
                chosen = earlier[-1] if earlier else chosen
            return self._resolved(chosen)
        later = [m for m in after if not m.place]
        if later:
            return self._resolved(later[0])
        if own:
            return own[-1].rois
        if structure:
            return ()
        if self.focus:
            return self.focus
        if len(self.rois) == 1:
            return (0,)
        return None

    def _resolved(self, mention: Mention) -> tuple[int, ...]:
        if mention.rois is None:
            return ()
        return mention.rois

    def carry(self, mentions: list[Mention]) -> None:
        """After a clause: its first subject-like mention of ROIs becomes what a later "it" means."""
        for m in mentions:
            if m.rois and not m.place and not m.pronoun:
                self.focus = m.rois
                return
