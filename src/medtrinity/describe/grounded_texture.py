"""The texture attribute: intensity words for tissue, each quoting the statistic it is computed from.

Only ROIs that show tissue are described — kinds finding, uncertain, anatomy and tissue, and regions the source
itself drew under a label whose meaning its recipe does not declare (they outline something in the image; the
words measure it without saying what it is) — and only when they have at least measure.MIN_TEXTURE_PIXELS pixels; an expert's appearance region ("foreground") or a device is
not tissue and gets no density or echo word. Pixels that are not tissue are kept out of the words:
- an ROI lying more than a tenth on the dark margin (measure.dark_margin: dark pixels connected to the image
  border — air, an ultrasound's black screen) or, on ultrasound, touched by a colour overlay (Doppler) is
  not described;
- an ROI whose ring lies more than a quarter on the dark margin (a head against air) is described inside
  only: comparing it with air would call the whole body "hyperintense" or "an opacity".
Each word comes from the rounded numbers the sentence prints (measure.read_texture): brightness from both
means and the contrast, homogeneity from the heterogeneity (core standard deviation over the reference
level), the margin from the edge ratio.
"""

from __future__ import annotations

import numpy as np

from medtrinity.describe.claims import Fact, say
from medtrinity.describe.vocabulary import BRIGHTNESS_WORDS, brightness_term
from medtrinity.records import ROI, Claim, Sample
from medtrinity.roi.measure import MIN_TEXTURE_PIXELS, TextureReading

ATTRIBUTE = "texture"
TEXTURED_KINDS = ("finding", "uncertain", "anatomy", "tissue")
MAX_ROIS_TEXTURED = 3  # at most this many sentences: findings first, then the largest
MAX_MARGIN_FRACTION_INSIDE = 0.1
MAX_MARGIN_FRACTION_RING = 0.25
MAX_COLOUR_FRACTION = 0.01


def _not_tissue(sample: Sample, mask: np.ndarray, ring: np.ndarray, margin: np.ndarray, colour: np.ndarray) -> bool:
    """The ROI lies on the dark margin, or (ultrasound) a colour overlay covers part of it or its ring."""
    if float(margin[mask].mean()) > MAX_MARGIN_FRACTION_INSIDE:
        return True
    return sample.modality == "Ultrasound" and float(colour[mask | ring].mean()) > MAX_COLOUR_FRACTION


def _ring_on_margin(ring: np.ndarray, margin: np.ndarray) -> bool:
    return bool(ring.any()) and float(margin[ring].mean()) > MAX_MARGIN_FRACTION_RING


def _predicate(modality: str, word: str) -> str:
    term = brightness_term(modality if modality in BRIGHTNESS_WORDS else "Other", word)
    verb = "appears as" if term.startswith(("a ", "an ")) else "is"
    relation = "to" if word == "similar" else "relative to"
    return f"{verb} {term} {relation} its surroundings"


def texture_sentence(
    sample: Sample, index: int, name: str, reading: TextureReading, ring_outside_body: bool = False
) -> list[Claim]:
    """One sentence of measured words and the numbers they come from, as claims about ROI `index`.

    Without a comparison (a ring under MIN_RING_PIXELS, or `ring_outside_body`) only the inside is described.
    """
    evidence = f"image,rois[{index}].mask"

    def fact(kind: str, value) -> Fact:
        return Fact(kind, str(value), evidence, index)

    inside = (
        f"is {reading.homogeneity} inside (heterogeneity {reading.heterogeneity:.2f}: core standard "
        f"deviation {reading.std_core} over intensity level {reading.reference_level})"
    )
    facts = [
        fact("homogeneity", reading.homogeneity),
        fact("heterogeneity", f"{reading.heterogeneity:.2f}"),
        fact("core_std", reading.std_core),
        fact("intensity_level", reading.reference_level),
    ]
    if ring_outside_body:
        text = (
            f"The {name} {inside}; it is not compared with its surroundings, which lie mostly outside the imaged field."
        )
        return say(ATTRIBUTE, text, [*facts, fact("no_comparison", "margin")])
    if not reading.compared:
        text = (
            f"The {name} {inside}; with {reading.pixels_around} pixels around it there is too little "
            "surrounding image to compare it with."
        )
        return say(ATTRIBUTE, text, [*facts, fact("no_comparison", str(reading.pixels_around))])
    text = (
        f"The {name} {_predicate(sample.modality, reading.brightness)} (mean intensity {reading.mean_inside} "
        f"vs {reading.mean_around} around it, contrast {reading.contrast:.1f} standard deviations), {inside} "
        f"and has {'a sharp' if reading.margin == 'sharp' else 'an ill-defined'} margin (edge gradient "
        f"{reading.edge_sharpness:.1f} times the gradient nearby)."
    )
    return say(
        ATTRIBUTE,
        text,
        [
            fact("brightness", reading.brightness),
            fact("mean_inside", reading.mean_inside),
            fact("mean_around", reading.mean_around),
            fact("contrast", f"{reading.contrast:.1f}"),
            *facts,
            fact("margin", reading.margin),
            fact("edge_sharpness", f"{reading.edge_sharpness:.1f}"),
        ],
    )


def is_textured(roi: ROI) -> bool:
    return roi.kind in TEXTURED_KINDS or (roi.kind == "label" and roi.source == "annotation")


def _candidates(rois: list[ROI]) -> list[int]:
    """Tissue ROIs: findings first, then by area, largest first (stable)."""
    eligible = [i for i, roi in enumerate(rois) if is_textured(roi)]
    return sorted(eligible, key=lambda i: (rois[i].kind not in ("finding", "uncertain"), -rois[i].area_ratio))


_NONE_DESCRIBED = {  # worded without "no <noun>", which a reader of counts would take for "0 regions"
    "kind": "Texture is not described: it is given for findings, anatomical structures, tissue classes and regions "
    "the source drew, and these regions are none of those.",
    "size": "Texture is not described: none of the finding, tissue or anatomical regions has the {pixels} "
    "pixels needed to measure it.",
    "overlay": "Texture is not described: the tissue regions lie on the dark margin outside the imaged field or "
    "under a colour overlay.",
    "overlay,size": "Texture is not described: none of the finding, tissue or anatomical regions is both large "
    "enough and clear of the dark margin and of colour overlays.",
}


def texture_claims(sample: Sample, names: list[str]) -> list[Claim]:
    from medtrinity.roi.measure import (
        colour_overlay,
        dark_margin,
        mask_for_roi,
        measure_region,
        read_texture,
        ring_mask,
    )

    if not sample.rois:
        return say(
            ATTRIBUTE,
            "No texture was measured, as no region of interest was localised.",
            [Fact("no_texture", "no_roi", "rois")],
        )
    claims: list[Claim] = []
    skipped: set[str] = set()
    margin = colour = None
    for index in _candidates(sample.rois):
        if len({c.subject for c in claims}) >= MAX_ROIS_TEXTURED:
            break
        mask = mask_for_roi(sample.rois[index], sample.height, sample.width)
        reading = read_texture(measure_region(sample.pixels, mask))
        if reading is None:
            skipped.add("size")
            continue
        if margin is None:
            margin, colour = dark_margin(sample.pixels), colour_overlay(sample.pixels)
        ring = ring_mask(mask)
        if _not_tissue(sample, mask, ring, margin, colour):
            skipped.add("overlay")
            continue
        outside = reading.compared and _ring_on_margin(ring, margin)
        claims += texture_sentence(sample, index, names[index], reading, ring_outside_body=outside)
    if claims:
        return claims
    reason = ",".join(sorted(skipped)) or "kind"
    return say(
        ATTRIBUTE, _NONE_DESCRIBED[reason].format(pixels=MIN_TEXTURE_PIXELS), [Fact("no_texture", reason, "rois")]
    )
