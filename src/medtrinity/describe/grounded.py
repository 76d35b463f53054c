"""The `grounded` describer: the five attributes and one paragraph written from measurements, no model.

Every sentence is backed by the record: modality, organ, disease and labels from the source's metadata;
ROI position words, area, count and patient side from the ROI geometry; texture from intensity statistics
inside vs around each ROI (roi/measure.py) in the modality's own vocabulary; one background sentence
quoted from the top retrieved passage with its id. The words come from `vocabulary`, which `verify` reads
back, so a grounded description always passes verification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medtrinity.caption import NORMAL_LABELS
from medtrinity.describe.base import register_describer
from medtrinity.describe.vocabulary import (
    BRIGHTNESS_WORDS,
    brightness_term,
    canonical_organ,
    count_phrase,
    modality_name,
    patient_side,
)
from medtrinity.errors import StageError
from medtrinity.records import ROI, Attributes, Description, Passage, Position, Sample

GROUNDED_VERSION = "1"
MAX_ROIS_LISTED = 5  # the roi attribute lists at most this many, largest first, and says how many in all
MAX_ROIS_TEXTURED = 3  # the texture attribute measures at most this many (one sentence each)
NORMAL_WORDS = frozenset(NORMAL_LABELS | {"none", "negative"})  # the caption's, plus words a disease field uses
_INNER_HORIZONTAL = frozenset({"left-center", "center", "right-center"})
_INNER_VERTICAL = frozenset({"upper-middle", "middle", "lower-middle"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


@dataclass
class _Texture:
    """The measured words and numbers of one ROI."""

    brightness: str | None  # "brighter" | "darker" | "similar" | None (no surroundings)
    homogeneity: str
    margin: str | None
    mean_inside: float
    mean_around: float
    std_inside: float


# ---------------------------------------------------------------- small phrases
def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def position_phrase(position: Position) -> str:
    """'in the upper-middle right-center region of the image' — both words, verbatim, in that order."""
    if position.vertical == "middle" and position.horizontal == "center":
        return "centrally, in the middle center region of the image"
    return f"in the {position.vertical} {position.horizontal} region of the image"


def area_phrase(area_ratio: float) -> str:
    """'about 3.2%' (the ROI's area_ratio, one decimal); 'less than 0.1%' for specks."""
    if area_ratio < 0.1:
        return "less than 0.1%"
    return f"about {area_ratio:.1f}%"


def _roi_names(rois: list[ROI]) -> list[str]:
    """Labels, numbered where one label names several ROIs ("tumor #2")."""
    totals: dict[str, int] = {}
    for roi in rois:
        totals[roi.label] = totals.get(roi.label, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for roi in rois:
        seen[roi.label] = seen.get(roi.label, 0) + 1
        names.append(f"{roi.label} #{seen[roi.label]}" if totals[roi.label] > 1 else roi.label)
    return names


def _by_size(rois: list[ROI]) -> list[int]:
    """Indices of the ROIs, largest first (stable, so equal areas keep the record's order)."""
    return sorted(range(len(rois)), key=lambda i: -rois[i].area_ratio)


def _side_clause(roi: ROI, patient_left_on_image: str | None) -> str:
    side = patient_side(roi.position.horizontal, patient_left_on_image)
    return f", on the patient's {side}" if side else ""


def _is_finding(label: str, organ: str | None) -> bool:
    """A label that names something other than normal anatomy."""
    word = label.strip().lower()
    return word not in NORMAL_WORDS and canonical_organ(word) is None and word != (organ or "").strip().lower()


def _recorded_finding(sample: Sample) -> str:
    if sample.disease and sample.disease.strip().lower() not in NORMAL_WORDS:
        return sample.disease
    return ", ".join(label for label in dict.fromkeys(sample.labels) if _is_finding(label, sample.organ))


def is_normal_sample(sample: Sample) -> bool:
    disease_normal = sample.disease is None or sample.disease.strip().lower() in NORMAL_WORDS
    return disease_normal and not any(_is_finding(label, sample.organ) for label in sample.labels)


# ---------------------------------------------------------------- the five attributes
def modality_attribute(sample: Sample) -> str:
    sentences = [f"This is {modality_name(sample.modality, sample.organ)}."]
    origin = sample.origin
    if origin.slice is not None:
        axis = f", cut along the {origin.axis} axis" if origin.axis else ""
        sentences.append(f"It is slice {origin.slice} of a volume{axis}.")
    elif origin.frame is not None:
        sentences.append(f"It is frame {origin.frame} of a multi-frame recording.")
    return " ".join(sentences)


def structures_attribute(sample: Sample) -> str:
    if sample.organ:
        sentences = [f"The imaged anatomy is the {sample.organ}, as given by the source."]
    else:
        sentences = ["The imaged anatomy is not specified by the source."]
    labels = list(dict.fromkeys(roi.label for roi in sample.rois))
    if labels:
        sentences.append("The marked structures are: " + ", ".join(labels) + ".")
    else:
        sentences.append("No structure is marked on the image.")
    if sample.disease and sample.disease.strip().lower() not in NORMAL_WORDS:
        sentences.append(f"The source records the finding as {sample.disease}.")
    elif is_normal_sample(sample):
        sentences.append("The source records no disease.")
    return " ".join(sentences)


def roi_attribute(sample: Sample) -> str:
    rois = sample.rois
    if not rois:
        return "No region of interest was localised."
    names = _roi_names(rois)
    order = _by_size(rois)[:MAX_ROIS_LISTED]
    items = [
        f"the {names[i]} is located {position_phrase(rois[i].position)}, "
        f"occupying {area_phrase(rois[i].area_ratio)} of the image"
        f"{_side_clause(rois[i], sample.patient_left_on_image)}"
        for i in order
    ]
    if len(rois) == 1:
        head = "There is one region of interest."
    elif len(rois) <= MAX_ROIS_LISTED:
        head = f"There are {count_phrase(len(rois), 'region of interest', 'regions of interest')}."
    else:
        head = (f"There are {count_phrase(len(rois), 'region of interest', 'regions of interest')}; "
                f"the {len(order)} largest are listed.")
    sources = sorted({roi.source for roi in rois})
    if sources == ["annotation"]:
        provenance = "The regions come from the source's own annotation."
    else:
        experts = [s.split(":", 1)[1] if s.startswith("expert:") else s for s in sources if s != "annotation"]
        provenance = "The regions were proposed by the expert model " + ", ".join(experts)
        provenance += " and the source's annotation." if "annotation" in sources else "."
    return " ".join([head, _capitalise("; ".join(items)) + ".", provenance])


def _measure(sample: Sample, roi: ROI) -> _Texture:
    from medtrinity.roi.measure import (
        brightness_word,
        homogeneity_word,
        margin_word,
        mask_for_roi,
        measure_region,
    )

    stats = measure_region(sample.pixels, mask_for_roi(roi, sample.height, sample.width))
    return _Texture(
        brightness=brightness_word(stats), homogeneity=homogeneity_word(stats), margin=margin_word(stats),
        mean_inside=stats.mean_inside, mean_around=stats.mean_around, std_inside=stats.std_inside,
    )


def _brightness_predicate(modality: str, word: str) -> str:
    term = brightness_term(modality if modality in BRIGHTNESS_WORDS else "Other", word)
    verb = "appears as" if term.startswith(("a ", "an ")) else "is"
    relation = "to" if word == "similar" else "relative to"
    return f"{verb} {term} {relation} its surroundings"


def texture_sentence(modality: str, name: str, texture: _Texture) -> str:
    if texture.brightness is None:
        return (f"The {name} fills nearly the whole image, so there is no surrounding tissue to compare with; "
                f"it is {texture.homogeneity} inside (mean intensity {texture.mean_inside:.0f}, "
                f"standard deviation {texture.std_inside:.0f}).")
    return (f"The {name} {_brightness_predicate(modality, texture.brightness)} "
            f"(mean intensity {texture.mean_inside:.0f} vs {texture.mean_around:.0f} around it), "
            f"is {texture.homogeneity} inside (standard deviation {texture.std_inside:.0f}) "
            f"and has {'a sharp' if texture.margin == 'sharp' else 'an ill-defined'} margin.")


def texture_attribute(sample: Sample) -> str:
    if not sample.rois:
        return "No texture was measured, as no region of interest was localised."
    names = _roi_names(sample.rois)
    return " ".join(
        texture_sentence(sample.modality, names[i], _measure(sample, sample.rois[i]))
        for i in _by_size(sample.rois)[:MAX_ROIS_TEXTURED]
    )


def _border_edges(roi: ROI, width: int, height: int) -> list[str]:
    x0, y0, x1, y1 = roi.bbox
    edges = [("top", y0 <= 0), ("bottom", y1 >= height), ("left", x0 <= 0), ("right", x1 >= width)]
    return [edge for edge, touches in edges if touches]


def _word_list(words: list[str]) -> str:
    """'top', 'top and left', 'top, bottom and left'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _size_word(area_ratio: float) -> str:
    if area_ratio < 5:
        return "a small part"
    if area_ratio < 25:
        return "a moderate part"
    return "a large part"


def local_global_attribute(sample: Sample) -> str:
    rois = sample.rois
    if not rois:
        return "No local finding can be related to the whole image, as no region of interest was localised."
    main = _by_size(rois)[0]
    roi, name = rois[main], _roi_names(rois)[main]
    central = roi.position.horizontal in _INNER_HORIZONTAL and roi.position.vertical in _INNER_VERTICAL
    edges = _border_edges(roi, sample.width, sample.height)
    where = "lies centrally in the image" if central else "lies towards the periphery of the image"
    border = ("does not touch the image border" if not edges
              else f"reaches the image border at the {_word_list(edges)} edge{'s' if len(edges) > 1 else ''}")
    sentences = [f"The {name} {where} and {border}."]
    size = f"It covers {_size_word(roi.area_ratio)} of the image ({area_phrase(roi.area_ratio)})"
    if len(rois) > 1:
        size += f" and is the largest of {count_phrase(len(rois), 'region', 'regions')}"
    sentences.append(size + ".")
    if is_normal_sample(sample):
        anatomy = f", the {sample.organ}" if sample.organ else ""
        sentences.append(
            f"With no disease recorded, the region of interest shows the primary anatomy of the image{anatomy}."
        )
    else:
        finding = _recorded_finding(sample)
        context = f"the {sample.organ}" if sample.organ else "an unspecified anatomy"
        sentences.append(f"It marks the recorded finding ({finding}) within {context}.")
    return " ".join(sentences)


# ---------------------------------------------------------------- knowledge and the paragraph
# A passage without a full stop (a malformed corpus line) must not pour itself into the description.
MAX_BACKGROUND_CHARS = 400


def first_sentence(text: str) -> str:
    collapsed = " ".join(text[: 20 * MAX_BACKGROUND_CHARS].split())
    sentence = _SENTENCE_END.split(collapsed, maxsplit=1)[0].rstrip(" .!?")
    if len(sentence) > MAX_BACKGROUND_CHARS:
        sentence = sentence[:MAX_BACKGROUND_CHARS].rsplit(" ", 1)[0] + " …"
    return sentence


def top_passage(knowledge: list[Passage]) -> Passage | None:
    """The highest-scoring passage (the first one on a tie)."""
    return max(knowledge, key=lambda p: p.score) if knowledge else None


def background_sentence(knowledge: list[Passage]) -> str:
    """'Background: <first sentence of the top passage> [<id>].' — or '' when nothing was retrieved."""
    passage = top_passage(knowledge)
    if passage is None:
        return ""
    sentence = first_sentence(passage.text) or first_sentence(passage.title)
    return f"Background: {sentence} [{passage.id}]." if sentence else ""


def _check_pixels(sample: Sample) -> None:
    if sample.pixels is None:
        raise StageError("the grounded describer needs the image pixels, but none were loaded")
    shape = sample.pixels.shape
    if len(shape) not in (2, 3) or shape[0] != sample.height or shape[1] != sample.width:
        raise StageError(
            f"image pixels have shape {tuple(shape)} but the record says {sample.width}x{sample.height}"
        )


@register_describer("grounded")
class GroundedDescriber:
    """Deterministic describer: the same sample gives the same text on every run."""

    name = "grounded"

    def describe(self, sample: Sample) -> Description:
        if sample.rois:
            _check_pixels(sample)
        attributes = Attributes(
            modality=modality_attribute(sample),
            structures=structures_attribute(sample),
            roi=roi_attribute(sample),
            texture=texture_attribute(sample),
            local_global=local_global_attribute(sample),
        )
        # global -> local -> local-global, then one sentence of retrieved knowledge.
        parts = [attributes.modality, attributes.structures, attributes.roi, attributes.texture,
                 attributes.local_global, background_sentence(sample.knowledge)]
        return Description(
            attributes=attributes,
            text=" ".join(part for part in parts if part),
            describer=f"grounded@{GROUNDED_VERSION} prompt=none",
        )
