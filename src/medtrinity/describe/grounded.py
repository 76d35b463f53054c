"""The `grounded` describer: the five attributes and one paragraph built from claims on the record, no model.

Every sentence is the rendering of structured claims (describe/claims.py), each naming the record field it
rests on; `Description.claims` holds them all, so the description can be checked claim by claim
(docs/TRUTHFULNESS.md). Modality, organ and disease status come from the source's metadata and the declared
label kinds (disease_status.py); ROI position, area, count, patient side, placement and border from the ROI
geometry; texture from intensity statistics of tissue ROIs (grounded_texture.py); one background sentence
from the best on-topic retrieved passage (grounded_background.py). The words come from `vocabulary`, which
`verify` reads back.
"""

from __future__ import annotations

from medtrinity.describe.base import register_describer
from medtrinity.describe.claims import Fact, render, say, word_list
from medtrinity.describe.disease_status import (
    recorded_findings,
    status_claims,
    uncertain_name,
)
from medtrinity.describe.grounded_background import background_claims
from medtrinity.describe.grounded_texture import texture_claims
from medtrinity.describe.vocabulary import (
    count_phrase,
    modality_name,
    patient_side,
)
from medtrinity.errors import StageError
from medtrinity.records import ROI, Attributes, Claim, Description, Position, Sample

GROUNDED_VERSION = "2"
MAX_ROIS_LISTED = 5  # the roi attribute lists at most this many, largest first, and says how many in all


# ---------------------------------------------------------------- small phrases
def position_phrase(position: Position) -> str:
    """'in the upper-middle right-center region of the image' — both words, verbatim, in that order."""
    if is_central(position):
        return "centrally, in the middle center region of the image"
    return f"in the {position.vertical} {position.horizontal} region of the image"


def is_central(position: Position) -> bool:
    """Only the centre bin (horizontal "center", vertical "middle") is called central."""
    return position.horizontal == "center" and position.vertical == "middle"


def area_phrase(area_ratio: float) -> str:
    """'about 3.2%' (the ROI's area_ratio, one decimal); 'less than 0.1%' for specks."""
    if area_ratio < 0.1:
        return "less than 0.1%"
    return f"about {area_ratio:.1f}%"


def roi_names(rois: list[ROI]) -> list[str]:
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


def by_size(rois: list[ROI]) -> list[int]:
    """Indices of the ROIs, largest first (stable, so equal areas keep the record's order)."""
    return sorted(range(len(rois)), key=lambda i: -rois[i].area_ratio)


def border_edges(roi: ROI, width: int, height: int) -> list[str]:
    """The image edges the ROI's box touches (x1/y1 exclusive, so x1 == width touches the right edge)."""
    x0, y0, x1, y1 = roi.bbox
    edges = [("top", y0 <= 0), ("bottom", y1 >= height), ("left", x0 <= 0), ("right", x1 >= width)]
    return [edge for edge, touches in edges if touches]


def size_word(area_ratio: float) -> str:
    if area_ratio < 5:
        return "a small part"
    if area_ratio < 25:
        return "a moderate part"
    return "a large part"


RECOVERED = "recovered:"  # an ROI found in the source's pixels: a box the publisher drew into the image it released


def expert_name(source: str) -> str:
    return source.split(":", 1)[1] if source.startswith("expert:") else source


def outlined_by(roi: ROI) -> str:
    if roi.source == "annotation":
        return "the source's annotation"
    if roi.source.startswith(RECOVERED):  # no expert judged the image: the box was drawn into it, and read back
        return "a box drawn into the released image"
    return f"the expert {expert_name(roi.source)}"


def provenance_text(sources: list[str]) -> str:
    """Where the regions come from, each ROI source named as the record holds it."""
    if sources == ["annotation"]:
        return "The regions come from the source's own annotation."
    recovered = [s for s in sources if s.startswith(RECOVERED)]
    experts = [expert_name(s) for s in sources if s != "annotation" and not s.startswith(RECOVERED)]
    parts = []
    if recovered:
        parts.append("recovered from the boxes drawn into the released image (" + ", ".join(recovered) + ")")
    if experts:
        parts.append("proposed by the expert model " + ", ".join(experts))
    if "annotation" in sources:
        parts.append("taken from the source's own annotation")
    return "The regions were " + word_list(parts) + "."


# ---------------------------------------------------------------- the five attributes
def modality_claims(sample: Sample) -> list[Claim]:
    facts = [Fact("modality", sample.modality, "modality")]
    if modality_name(sample.modality, sample.organ) != modality_name(sample.modality):  # "a chest X-ray"
        facts.append(Fact("organ_group", "chest", "organ"))
    claims = say("modality", f"This is {modality_name(sample.modality, sample.organ)}.", facts)
    origin = sample.origin
    if origin.slice is not None:
        axis = f", cut along the {origin.axis} axis" if origin.axis else ""
        facts = [Fact("slice", str(origin.slice), "origin.slice")]
        facts += [Fact("axis", origin.axis, "origin.axis")] if origin.axis else []
        claims += say("modality", f"It is slice {origin.slice} of a volume{axis}.", facts)
    elif origin.frame is not None:
        claims += say(
            "modality",
            f"It is frame {origin.frame} of a multi-frame recording.",
            [Fact("frame", str(origin.frame), "origin.frame")],
        )
    if origin.redacted:  # the black boxes are not anatomy: say where they come from
        n = len(origin.redacted)
        claims += say(
            "modality",
            f"Burned-in text was removed from {n} area{'s' if n != 1 else ''} of the image.",
            [Fact("redacted_text", str(n), "origin.redacted")],
        )
    return claims


def structures_claims(sample: Sample) -> list[Claim]:
    if sample.organ:
        claims = say(
            "structures",
            f"The imaged anatomy is the {sample.organ}, as given by the source.",
            [Fact("organ", sample.organ, "organ")],
        )
    else:
        claims = say("structures", "The imaged anatomy is not specified by the source.", [Fact("organ", "", "organ")])
    first_of: dict[str, int] = {}
    for index, roi in enumerate(sample.rois):
        first_of.setdefault(roi.label, index)
    if first_of:
        claims += say(
            "structures",
            "The regions are labelled: " + ", ".join(first_of) + ".",
            [Fact("roi_label", label, f"rois[{i}].label", i) for label, i in first_of.items()],
        )
    else:
        claims += say("structures", "No region is marked on the image.", [Fact("count", "0", "rois")])
    return claims + status_claims(sample)


def roi_claims(sample: Sample, names: list[str]) -> list[Claim]:
    rois = sample.rois
    if not rois:
        return say("roi", "No region of interest was localised.", [Fact("count", "0", "rois")])
    order = by_size(rois)[:MAX_ROIS_LISTED]
    count = Fact("count", str(len(rois)), "rois")
    regions = count_phrase(len(rois), "region of interest", "regions of interest")
    if len(rois) <= MAX_ROIS_LISTED:
        claims = say("roi", f"There {'is' if len(rois) == 1 else 'are'} {regions}.", [count])
    else:
        claims = say(
            "roi",
            f"There are {regions}; the {len(order)} largest are listed.",
            [count, Fact("listed", str(len(order)), "rois[*].area_ratio")],
        )
    for i in order:
        roi = rois[i]
        facts = [
            Fact("position", f"{roi.position.vertical} {roi.position.horizontal}", f"rois[{i}].position", i),
            Fact("area", f"{roi.area_ratio:.1f}", f"rois[{i}].area_ratio", i),
        ]
        side = patient_side(roi.position.horizontal, sample.patient_left_on_image)
        if side:
            facts.append(Fact("side", side, f"rois[{i}].position,origin.patient_left_on_image", i))
        text = (
            f"The {names[i]} is located {position_phrase(roi.position)}, occupying "
            f"{area_phrase(roi.area_ratio)} of the image" + (f", on the patient's {side}." if side else ".")
        )
        claims += say("roi", text, facts)
    first_of: dict[str, int] = {}
    for index, roi in enumerate(rois):
        first_of.setdefault(roi.source, index)
    sources = sorted(first_of)
    provenance = [Fact("provenance", source, f"rois[{first_of[source]}].source") for source in sources]
    return claims + say("roi", provenance_text(sources), provenance)


def main_roi(rois: list[ROI]) -> int:
    """The ROI the local-global attribute relates to the image: the largest finding, else the largest ROI."""
    findings = [i for i in by_size(rois) if rois[i].kind == "finding"]
    return findings[0] if findings else by_size(rois)[0]


def _relation(sample: Sample, index: int) -> list[Claim]:
    """What the main ROI is, as its kind says — a finding only when it is one."""
    roi, who = sample.rois[index], outlined_by(sample.rois[index])
    label_fact = Fact(f"{roi.kind}_region", roi.label, f"rois[{index}].label,rois[{index}].kind", index)
    if roi.kind == "finding" and roi.source == "annotation":
        return say(
            "local_global", f"It marks the recorded finding {roi.label}, as annotated by the source.", [label_fact]
        )
    if roi.kind == "finding":
        findings = recorded_findings(sample).evidence()
        if len(findings) == 1 and "," not in findings[0][0]:  # the expert locates the one finding recorded
            ((finding, evidence),) = findings
            return say(
                "local_global",
                f"It marks the recorded finding {finding}, as located by {who}.",
                [Fact("finding_region", finding, f"{evidence},rois[{index}].kind", index)],
            )
        return say(
            "local_global",
            f"It is the region {who} outlines as {roi.label}.",
            [Fact("expert_finding_region", roi.label, label_fact.evidence, index)],
        )
    texts = {
        "uncertain": f"It marks {uncertain_name(roi.label)}, which the source marks as uncertain.",
        "anatomy": f"It is the {roi.label}, an anatomical structure outlined by {who}.",
        "tissue": f"It is the tissue region {roi.label}, outlined by {who}.",
        "device": f"It outlines the device {roi.label}, drawn by {who}.",
        "region": f"It is a region outlined by {who} from the image's appearance, not a finding.",
    }
    if roi.source.startswith(RECOVERED):  # the publisher drew the box; nothing here judged the image's appearance
        texts["region"] = f"It is the region marked by {who}, not a finding."
    if roi.kind in texts:
        return say("local_global", texts[roi.kind], [label_fact])
    return say(
        "local_global",
        f"It is the region labelled {roi.label} by {who}.",
        [Fact("labelled_region", roi.label, label_fact.evidence, index)],
    )


def local_global_claims(sample: Sample, names: list[str]) -> list[Claim]:
    rois = sample.rois
    if not rois:
        return say(
            "local_global",
            "No region can be related to the whole image, as no region of interest was localised.",
            [Fact("count", "0", "rois")],
        )
    index = main_roi(rois)
    roi, name = rois[index], names[index]
    edges = border_edges(roi, sample.width, sample.height)
    border = (
        "does not touch the image border"
        if not edges
        else f"reaches the image border at the {word_list(edges)} edge{'s' if len(edges) > 1 else ''}"
    )
    where = f"{roi.position.vertical} {roi.position.horizontal}"
    placement = Fact("placement", "central" if is_central(roi.position) else where, f"rois[{index}].position", index)
    border_fact = Fact("border", ",".join(edges) or "none", f"rois[{index}].bbox", index)
    if is_central(roi.position):
        text = f"The {name} lies centrally in the image and {border}."
    else:
        text = f"The {name} lies off-centre, in the {where} region of the image, and {border}."
    claims = say("local_global", text, [placement, border_fact])
    facts = [
        Fact("size", size_word(roi.area_ratio), f"rois[{index}].area_ratio", index),
        Fact("area", f"{roi.area_ratio:.1f}", f"rois[{index}].area_ratio", index),
    ]
    size = f"It covers {size_word(roi.area_ratio)} of the image ({area_phrase(roi.area_ratio)})"
    if len(rois) > 1:
        largest = all(roi.area_ratio > other.area_ratio for j, other in enumerate(rois) if j != index)
        regions = count_phrase(len(rois), "region", "regions")
        size += f" and is the largest of {regions}" if largest else f" and is one of {regions}"
        facts += [
            Fact("rank", "largest" if largest else "one of", "rois[*].area_ratio", index),
            Fact("count", str(len(rois)), "rois"),
        ]
    claims += say("local_global", size + ".", facts)
    claims += _relation(sample, index)
    findings = recorded_findings(sample)
    if findings and not any(r.kind == "finding" for r in rois):
        names_ = findings.names()
        noun = "finding" if len(names_) == 1 else "findings"
        verb = "is" if len(names_) == 1 else "are"
        claims += say(
            "local_global",
            f"The recorded {noun} {word_list(names_)} {verb} not outlined by any region.",
            [Fact("unlocated_finding", value, evidence) for value, evidence in findings.evidence()],
        )
    return claims


# ---------------------------------------------------------------- the describer
def _check_pixels(sample: Sample) -> None:
    if sample.pixels is None:
        raise StageError("the grounded describer needs the image pixels, but none were loaded")
    shape = sample.pixels.shape
    if len(shape) not in (2, 3) or shape[0] != sample.height or shape[1] != sample.width:
        raise StageError(f"image pixels have shape {tuple(shape)} but the record says {sample.width}x{sample.height}")


def describe_claims(sample: Sample) -> dict[str, list[Claim]]:
    """The claims of each attribute, and of the background ("knowledge"), in paragraph order."""
    names = roi_names(sample.rois)
    return {
        "modality": modality_claims(sample),
        "structures": structures_claims(sample),
        "roi": roi_claims(sample, names),
        "texture": texture_claims(sample, names),
        "local_global": local_global_claims(sample, names),
        "knowledge": background_claims(sample),
    }


@register_describer("grounded")
class GroundedDescriber:
    """Deterministic describer: the same sample gives the same text and claims on every run."""

    name = "grounded"

    def describe(self, sample: Sample) -> Description:
        if sample.rois:
            _check_pixels(sample)
        parts = describe_claims(sample)
        attributes = Attributes(**{name: render(claims) for name, claims in parts.items() if name != "knowledge"})
        # global -> local -> local-global, then one sentence of retrieved knowledge.
        claims = [claim for part in parts.values() for claim in part]
        return Description(
            attributes=attributes,
            text=render(claims),
            claims=claims,
            describer=f"grounded@{GROUNDED_VERSION} prompt=none",
        )
