"""Read a description back and compare what it states with the record's metadata and ROI geometry.

Checks (each a records.Check with status pass / fail / not-verifiable and a readable detail): modality,
position, area, roi_count, side, organ. The text is read the way a vision-language model writes it
(`verify_text`: clauses, negations, hypotheticals; `verify_subjects`: which ROI each statement is about;
`verify_position`, `verify_quantities`: places, areas, counts; `anatomy`: organ claims). Only what the text
asserts is checked: a text that states nothing of a kind passes that check; a statement the record cannot
confirm or refute (the patient's side with the orientation unknown, an organ claim on a record without an
organ) makes the check "not-verifiable" unless another statement of that kind fails. Quoted background
knowledge (a sentence citing a passage id like "[mt-lung-003]") is not a statement about this image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medtrinity.describe.anatomy import (
    FIELD_MODALITIES,
    ORGAN_WORDS,
    canonical_organ,
    organ_fits,
)
from medtrinity.describe.verify_position import Placement, placements
from medtrinity.describe.verify_quantities import (
    FINDING_NOUNS,
    Area,
    Count,
    areas,
    counts,
    zero_counts,
)
from medtrinity.describe.verify_subjects import Mentions, normalise
from medtrinity.describe.verify_text import (
    Clause,
    claims_text,
    other_study_cues,
    split_clauses,
)
from medtrinity.describe.vocabulary import (
    COMPATIBLE_MODALITIES,
    HORIZONTAL_SIDE,
    MODALITY_PATTERNS,
    alternation,
    modality_mentions,
    patient_side,
)
from medtrinity.records import ROI, Check, Sample

__all__ = ["CHECKS", "claims_text", "verify"]

# Where a text says which anatomy the image shows ("CT image of the liver", "a slice through the kidneys",
# "abdominal CT", "the imaged anatomy is the brain").
_IMAGE_NOUNS = (
    r"images?|scans?|radiographs?|photographs?|pictures?|photos?|frames?|stills?|clips?|loops?|"
    r"acquisitions?|projections?|slides?|sections?|views?|study|studies|sonograms?|"
    r"examinations?|x-?rays?|films?|slices?|cuts?|cross-sections?|CT|MRI?|ultrasound|sonography|"
    r"endoscopy|colonoscopy|micrographs?|tiles?|patch(?:es)?|specimens?|biops(?:y|ies)|tissue"
)
_ORGAN = rf"(?P<organ>{ORGAN_WORDS.pattern})"
_ORGAN_CLAIMS = (
    re.compile(
        rf"\b(?:{_IMAGE_NOUNS})\s+(?:of|through|from|at\s+the\s+level\s+of|across|showing|depicting)\s+(?:the\s+|a\s+|an\s+)?"
        rf"(?:patient(?:'|’)s\s+)?(?:(?:left|right|upper|lower|mid|both|entire|whole|distal|proximal)\s+){{0,2}}{_ORGAN}",
        re.IGNORECASE,
    ),
    re.compile(rf"\bimaged\s+(?:anatomy|organ|region|body\s+part)\s+is\s+(?:the\s+)?{_ORGAN}", re.IGNORECASE),
    re.compile(
        rf"\b(?:at\s+the\s+level\s+of|slice\s+through|cut\s+through|section\s+through)\s+(?:the\s+)?{_ORGAN}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"{_ORGAN}\s+(?:(?:axial|coronal|sagittal|contrast-enhanced|non-contrast|plain|frontal|lateral)\s+)?"
        rf"(?:{_IMAGE_NOUNS})\b",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:image|scan|slice|photograph|view|radiograph|film)\s+(?:is\s+of|shows|depicts|demonstrates|"
        rf"captures|displays|focuses\s+on|is\s+centred\s+on|is\s+centered\s+on)\s+(?:the\s+|a\s+|an\s+)?"
        rf"(?:(?:axial|coronal|sagittal|cross-sectional|frontal|close-up|magnified|portion\s+of\s+the|part\s+of\s+the|"
        rf"view\s+of\s+the|section\s+of\s+the|cross-section\s+of\s+the)\s+){{0,2}}{_ORGAN}",
        re.IGNORECASE,
    ),
)
# Organ words that are no organ claim in a field-of-view image ("visible to the naked eye").
_NOT_ORGAN = re.compile(
    r"naked\s+eye|\beye\s+(?:catching|level)|\bbody\s+of\s+the\b|\bhead\s+of\s+the\b", re.IGNORECASE
)


# ---------------------------------------------------------------- the reading of one text
@dataclass
class _Statement:
    item: Placement | Area | Count
    subject: tuple[int, ...] | None  # None: any ROI may be meant; (): something that is no ROI
    clause: Clause


@dataclass
class Reading:
    """A text read once for all checks: its clauses and the statements of each kind with their subjects."""

    sample: Sample
    clauses: list[Clause]
    placements: list[_Statement] = field(default_factory=list)
    areas: list[_Statement] = field(default_factory=list)
    counts: list[_Statement] = field(default_factory=list)
    zeros: list[_Statement] = field(default_factory=list)
    mentions: Mentions | None = None


def _count_nouns(sample: Sample, mentions: Mentions) -> str:
    """Nouns a count may be of: finding nouns and the words of finding ROIs' labels."""
    words = {
        normalise(w)
        for i in mentions.finding_rois
        for w in re.findall(r"[A-Za-z][\w-]*", sample.rois[i].label)
        if len(w) > 3
    }
    return "|".join(filter(None, (FINDING_NOUNS, alternation(words))))


def read(sample: Sample, text: str) -> Reading:
    reading = Reading(sample, split_clauses(text))
    mentions = reading.mentions = Mentions(sample)
    nouns = _count_nouns(sample, mentions)
    for clause in reading.clauses:
        found = mentions.find(clause.text)
        names = [(m.start, m.end) for m in found if m.label]
        asserted = clause.asserted
        if asserted:
            for place in placements(asserted, sample.modality, names):
                subject = mentions.subject(clause.text, place.start, place.end, found, place.structure)
                reading.placements.append(_Statement(place, subject, clause))
            for area in areas(asserted):
                reading.areas.append(
                    _Statement(area, mentions.subject(clause.text, area.start, area.end, found), clause)
                )
            for count in counts(asserted, nouns):
                reading.counts.append(_Statement(count, None, clause))
        elif not clause.hypothetical:
            for count in zero_counts(clause.text, nouns):
                reading.zeros.append(_Statement(count, None, clause))
        mentions.carry(found)
    return reading


# ---------------------------------------------------------------- results
@dataclass
class _Results:
    name: str
    failed: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)

    def check(self, nothing: str) -> Check:
        def unique(items: list[str]) -> list[str]:
            return list(dict.fromkeys(items))

        if self.failed:
            return Check(self.name, False, " | ".join(unique(self.failed)), "fail")
        if self.passed:
            detail = self.passed_detail()
            if self.unverifiable:
                detail += "; not verifiable: " + " | ".join(unique(self.unverifiable))
            return Check(self.name, True, detail, "pass")
        if self.unverifiable:
            return Check(self.name, True, "not verifiable: " + " | ".join(unique(self.unverifiable)), "not-verifiable")
        return Check(self.name, True, nothing, "pass")

    def passed_detail(self) -> str:
        return ", ".join(dict.fromkeys(self.passed))


def _where(roi: ROI) -> str:
    return f"{roi.label} is at {roi.position.vertical} {roi.position.horizontal} ({roi.area_ratio:.1f}%)"


def _shown(rois: list[ROI]) -> str:
    return "; ".join(_where(roi) for roi in rois) if rois else "the record has no ROI"


def _candidates(sample: Sample, subject: tuple[int, ...] | None) -> list[ROI]:
    return list(sample.rois) if subject is None else [sample.rois[i] for i in subject]


def _phrase(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- the checks
def check_modality(reading: Reading) -> Check:
    sample, results = reading.sample, _Results("modality")
    record = sample.modality
    named = []
    for clause in reading.clauses:
        cues = other_study_cues(clause.text)
        for modality, start, end in modality_mentions(clause.text):
            if not any(_near(start, end, cue, clause.text) for cue in cues):
                named.append(modality)
    named = list(dict.fromkeys(named))
    if not named:
        return Check("modality", True, "text names no modality", "pass")
    if record not in MODALITY_PATTERNS:
        results.unverifiable.append(f"record modality {record!r} has no vocabulary to check against")
        return results.check("")
    wrong = [m for m in named if m != record and m not in COMPATIBLE_MODALITIES.get(record, frozenset())]
    if wrong:
        return Check("modality", False, f"text names {', '.join(wrong)} but the record is {record}", "fail")
    if record in named:
        return Check("modality", True, f"text names {record}, as recorded", "pass")
    return Check("modality", True, f"text names {', '.join(named)}, compatible with {record}", "pass")


_NEAR_WORDS = 6  # a cue this many words from a modality name makes it another study ("MRI is recommended")


def _near(start: int, end: int, cue: tuple[int, int], text: str) -> bool:
    lo, hi = (end, cue[0]) if cue[0] >= end else (cue[1], start)
    return hi <= lo or len(text[lo:hi].split()) <= _NEAR_WORDS


BORDER_TOLERANCE = 0.02  # of the image side: "touches the top edge" of an ROI a pixel or two short of it


def _touches(roi: ROI, edge: str, width: int, height: int) -> bool:
    x0, y0, x1, y1 = roi.bbox
    dx, dy = BORDER_TOLERANCE * width, BORDER_TOLERANCE * height
    return {"top": y0 <= dy, "bottom": y1 >= height - dy, "left": x0 <= dx, "right": x1 >= width - dx}[edge]


def _fits_position(roi: ROI, place: Placement, width: int, height: int) -> bool:
    if place.border:
        return all(_touches(roi, edge, width, height) for edge in place.border)
    if place.periphery:
        return (roi.position.vertical, roi.position.horizontal) != ("middle", "center")
    return (place.vertical is None or roi.position.vertical in place.vertical) and (
        place.horizontal is None or roi.position.horizontal in place.horizontal
    )


def check_position(reading: Reading) -> Check:
    sample, results = reading.sample, _Results("position")
    for statement in reading.placements:
        place = statement.item
        if place.kind != "position":
            continue
        phrase = _phrase(place.text)
        if not sample.rois:
            results.unverifiable.append(f"text says {phrase} but the record has no ROI")
            continue
        if statement.subject == ():
            continue  # said of something that is no ROI ("the liver lies in the upper left")
        rois = _candidates(sample, statement.subject)
        if any(_fits_position(r, place, sample.width, sample.height) for r in rois):
            results.passed.append(phrase)
        else:
            results.failed.append(f"text says {phrase} but {_shown(rois)}")
    check = results.check("text states no position words")
    if check.status == "pass" and results.passed:
        check.detail = "position words agree: " + check.detail
    return check


def _patient_where(roi: ROI, orientation: str | None) -> str:
    side = patient_side(roi.position.horizontal, orientation)
    return f"{roi.label} is on the patient's {side}" if side else f"{roi.label} is in the centre band (no side)"


def check_side(reading: Reading) -> Check:
    """Each stated side must be where the ROI it is said of is; an ROI in the centre band fits either side."""
    sample, results = reading.sample, _Results("side")
    orientation = sample.patient_left_on_image if sample.patient_left_on_image in ("left", "right") else None
    for statement in reading.placements:
        place = statement.item
        if place.kind != "side":
            continue
        if not sample.rois:
            results.unverifiable.append("the record has no ROI")
            continue
        if statement.subject == ():
            continue
        rois = _candidates(sample, statement.subject)
        image_ok = place.horizontal is not None and any(r.position.horizontal in place.horizontal for r in rois)
        if place.frame == "image":
            if image_ok:
                results.passed.append(f"image {_image_side(place)}")
            else:
                results.failed.append(f"text puts it on the image's {_image_side(place)} but {_shown(rois)}")
            continue
        if orientation is None:
            results.unverifiable.append("the patient's orientation on the image is unknown")
            continue
        patient_ok = any(patient_side(r.position.horizontal, orientation) in (place.side, None) for r in rois)
        if patient_ok or (place.frame == "either" and image_ok):
            results.passed.append(place.side)
        else:
            where = "; ".join(_patient_where(r, orientation) for r in rois)
            results.failed.append(f"text says the patient's {place.side} but {where}")
    check = results.check("text states no side")
    if check.status == "pass" and results.passed:
        check.detail = "stated sides agree: " + check.detail
    return check


def _image_side(place: Placement) -> str:
    sides = {HORIZONTAL_SIDE[h] for h in place.horizontal or ()} - {None}
    return sides.pop() if len(sides) == 1 else "centre"


def check_area(reading: Reading) -> Check:
    sample, results = reading.sample, _Results("area")
    for statement in reading.areas:
        area = statement.item
        stated = _phrase(area.text)
        if not sample.rois:
            results.unverifiable.append(f"text says {stated} but the record has no ROI")
            continue
        if statement.subject == ():
            continue
        rois = _candidates(sample, statement.subject)
        together = round(sum(r.area_ratio for r in rois), 1)  # "the lesions together cover …"
        if any(area.fits(r.area_ratio) for r in rois) or (len(rois) > 1 and area.fits(together)):
            results.passed.append(_area_words(area))
        else:
            results.failed.append(f"text says {_area_words(area)} but {_shown(rois)}")
    check = results.check("text states no area")
    if check.status == "pass" and results.passed:
        check.detail = "stated areas agree: " + check.detail
    return check


def _area_words(area: Area) -> str:
    value = f"{area.value:g}%" if area.precision != "words" else f"{_phrase(area.text)} (~{area.value:.0f}%)"
    return {"<": "under ", ">": "over "}.get(area.bound or "", "") + value if area.precision != "words" else value


def _clusters(rois: list[ROI]) -> int:
    """How many groups of touching or overlapping boxes: the parts of one lesion count once."""
    groups: list[list[int]] = []
    for roi in rois:
        x0, y0, x1, y1 = roi.bbox
        touching = [g for g in groups if any(not (x1 < b[0] or b[2] < x0 or y1 < b[1] or b[3] < y0) for b in g)]
        merged = [roi.bbox] + [b for g in touching for b in g]
        groups = [g for g in groups if g not in touching] + [merged]
    return len(groups)


def _narrowed(rois: list[ROI], adjectives: tuple[str, ...]) -> list[ROI]:
    """'enhancing tumor' among 'GD-enhancing tumor' and 'necrotic tumor core': the ROIs whose label has the words."""
    words = [normalise(a) for a in adjectives]
    label_words = {i: set(normalise(r.label).replace("-", " ").split()) for i, r in enumerate(rois)}
    named = [w for w in words if any(w in ws for ws in label_words.values())]
    kept = [r for i, r in enumerate(rois) if all(w in label_words[i] for w in named)]
    return kept or rois


def check_roi_count(reading: Reading) -> Check:
    sample, results = reading.sample, _Results("roi_count")
    mentions = reading.mentions
    actual = len(sample.rois)
    for statement in reading.counts + reading.zeros:
        count: Count = statement.item
        stated = "several" if count.several else str(count.value)
        if count.roi_noun:
            if (count.several and actual >= 2) or (not count.several and count.value == actual):
                results.passed.append(f"{stated} region(s)")
            else:
                results.failed.append(f"text says {stated} region(s) but the record has {actual}")
            continue
        subject = mentions.noun_rois(count.noun) if mentions else None
        noun = normalise(count.noun)
        if count.value == 0 and (not subject or not mentions.labelled(noun)):
            continue  # "no mass" where no label is a mass: says nothing about the ROIs
        if subject is None:
            results.unverifiable.append(f"text counts {stated} {noun} but no ROI is of that kind")
            continue
        rois = _narrowed([sample.rois[i] for i in subject], count.adjectives)
        if count.value == 0:
            fits = not rois
        elif count.several:
            fits = len(rois) >= 2
        else:
            # Parts of one lesion named differently (necrotic core, enhancing tumour) may be called one tumour;
            # pieces of one label count as one only where they touch.
            low = _clusters(rois) if len({r.label for r in rois}) == 1 else 1
            fits = low <= count.value <= len(rois)
        if fits:
            results.passed.append(f"{stated} {noun}")
        else:
            labels = ", ".join(dict.fromkeys(r.label for r in rois))
            results.failed.append(f"text says {stated} {noun} but the record has {len(rois)} ({labels})")
    check = results.check("text states no count of regions")
    if check.status == "pass" and results.passed:
        check.detail = "stated counts agree: " + check.detail
    return check


def _organ_claims(reading: Reading) -> list[str]:
    """Organ words the text says the image shows (in field-of-view images: every organ the text places there)."""
    claims = []
    field_of_view = reading.sample.modality in FIELD_MODALITIES
    for clause in reading.clauses:
        if clause.hypothetical:
            continue
        spans = []
        for pattern in _ORGAN_CLAIMS:
            for m in pattern.finditer(clause.text):
                claims.append(m.group("organ"))
                spans.append(m.span("organ"))
        if field_of_view and clause.asserted:
            text = _NOT_ORGAN.sub(lambda m: " " * len(m.group(0)), clause.asserted)
            labels = [(m.start, m.end) for m in reading.mentions.find(clause.text) if m.label]
            for m in ORGAN_WORDS.finditer(text):
                if all(m.end() <= a or m.start() >= b for a, b in labels + spans):
                    claims.append(m.group(0))
    return list(dict.fromkeys(c.lower() for c in claims))


def check_organ(reading: Reading) -> Check:
    """A claim of which anatomy the image shows must fit the record's organ (`anatomy.organ_fits`)."""
    sample = reading.sample
    claims = _organ_claims(reading)
    if not claims:
        return Check("organ", True, "text names no imaged organ", "pass")
    recorded = canonical_organ(sample.organ)
    if recorded is None:
        return Check(
            "organ", True, f"not verifiable: record organ {sample.organ!r} is not in the anatomy map", "not-verifiable"
        )
    wrong = [c for c in claims if canonical_organ(c) and not organ_fits(canonical_organ(c), recorded, sample.modality)]
    if wrong:
        return Check(
            "organ",
            False,
            f"text says the image shows {', '.join(wrong)} but the record's organ is {sample.organ} ({recorded})",
            "fail",
        )
    return Check("organ", True, f"named organs ({', '.join(claims)}) fit the record's {recorded}", "pass")


CHECKS = (check_modality, check_position, check_area, check_roi_count, check_side, check_organ)


def verify(sample: Sample, text: str | None = None) -> list[Check]:
    """Every check of `text` (default: the sample's description) against the record."""
    reading = read(sample, claims_text(sample.description if text is None else text))
    return [check(reading) for check in CHECKS]
