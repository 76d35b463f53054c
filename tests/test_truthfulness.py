"""Every claim of every grounded description of the demo and every recipe miniature holds on its record.

The records are read back from Parquet, as a user gets them. The checker here is written independently of the
describer: it recomputes each stated value from the record's own fields — positions, areas, counts, sides from
the ROI geometry and the orientation; findings, negatives and "normal" from the declared label kinds; texture
numbers from the stored image and the RLE mask (decoded with PIL and pycocotools); border and placement words
from the box; the background sentence from the stored passage — and re-derives each word from the numbers the
sentence prints. It also checks that the claims' sentences are exactly the description.

Assertions that rest on the label kinds (filled in per recipe by sources/label_kinds.py): finding / uncertain /
case / negative / normal / device / stain / study / tissue claims, "no diagnosis", the texture eligibility of an
ROI and what its relation sentence calls it (finding, anatomy, region …), and the normal/abnormal filter of
the background passage.
"""

from __future__ import annotations

import io
import math
import re
from itertools import groupby

import numpy as np
import pytest
from fixtures.miniatures import build_miniatures, miniature_rows
from PIL import Image
from pycocotools import mask as coco_mask
from scipy import ndimage

from medtrinity.describe.vocabulary import (
    BRIGHTNESS_WORDS,
    COMPATIBLE_MODALITIES,
    modalities_named,
)

# The rules as documented (docs/TRUTHFULNESS.md), restated here so the describer's constants are not trusted.
MIN_TEXTURE_PIXELS = 64
MIN_RING_PIXELS = 64
TEXTURED_KINDS = {"finding", "uncertain", "anatomy", "tissue"}
CONTRAST_THRESHOLD, MIN_DIFFERENCE = 0.5, 5
HETEROGENEITY_THRESHOLD, LEVEL_FLOOR = 0.15, 16.0
SHARP_RATIO = 2.5
DARK_LEVEL, MAX_DARK_INSIDE, MAX_DARK_RING, CHROMA, MAX_COLOUR = 10, 0.1, 0.25, 60, 0.01
THORACIC_ORGANS = {"chest", "lung", "lungs", "heart", "thorax", "rib", "ribs"}
STATUS_KINDS = {"finding", "uncertain", "case", "negative", "normal"}
MODALITY_WORDS = {
    "CT": "CT (computed tomography)",
    "MRI": "MRI (magnetic resonance)",
    "X-Ray": "X-ray (radiograph)",
    "Ultrasound": "ultrasound image",
    "Endoscopy": "endoscopy image",
    "Dermoscopy": "dermoscopy image",
    "Fundus": "fundus photograph",
    "OCT": "OCT",
    "Histopathology": "histopathology image",
    "Microscopy": "microscopy image",
    "PET": "PET",
    "Nuclear Medicine": "nuclear medicine",
    "Other": "unspecified modality",
}
DATASET_WORDS = re.compile(
    r"\b(?:data\s?sets?|challenges?|benchmarks?|BraTS|KiTS\d*|Kvasir|ISIC|HAM10000|BUSI|CheXpert|MIMIC|"
    r"ChestX-?ray\d*|SLAKE|VQA-RAD|RSNA|SIIM|NCT-CRC)\b",
    re.IGNORECASE,
)
TEXTURE_CLAIMS = {
    "brightness",
    "mean_inside",
    "mean_around",
    "contrast",
    "homogeneity",
    "heterogeneity",
    "core_std",
    "intensity_level",
    "margin",
    "edge_sharpness",
    "no_comparison",
}
FINDING_SENTENCE_CLAIMS = {
    "finding",
    "unlocated_finding",
    "finding_region",
    "expert_finding_region",
    "region_region",
    "no_texture",
    "background",
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return miniature_rows(build_miniatures(tmp_path_factory.mktemp("truthfulness")))


# ---------------------------------------------------------------- the record, read independently
class Record:
    def __init__(self, row: dict) -> None:
        self.row = row
        self.kinds = {k["label"]: k["kind"] for k in row["label_kinds"] or []}
        self.rois = row["rois"]
        self._gray = None

    def label_kind(self, label: str) -> str:
        return self.kinds.get(label) or "label"

    def indexed(self, evidence: str, field: str) -> int:
        match = re.fullmatch(rf"{field}\[(\d+)\](?:\.\w+)?", evidence)
        assert match, f"evidence {evidence!r} is not {field}[i]"
        return int(match.group(1))

    def findings(self) -> list[str]:
        """Everything the source records as a finding (disease, finding labels, annotated finding ROIs), each
        once (case-insensitively)."""
        found = [self.row["disease"]] if self.row["disease"] else []
        found += [label for label in self.row["labels"] if self.label_kind(label) == "finding"]
        found += [r["label"] for r in self.rois if r["kind"] == "finding" and r["source"] == "annotation"]
        return list({name.lower(): name for name in reversed(found)}.values())[::-1]

    def gray(self) -> np.ndarray:
        if self._gray is None:
            image = Image.open(io.BytesIO(self.row["image"]["bytes"]))
            array = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
            self._gray = (
                array[:, :, :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
                if array.ndim == 3
                else array.astype(np.float64)
            )
            self.rgb = array if array.ndim == 3 else None
        return self._gray

    def mask(self, index: int) -> np.ndarray:
        roi = self.rois[index]
        if roi["mask"] is None:
            x0, y0, x1, y1 = roi["bbox"]
            out = np.zeros((self.row["height"], self.row["width"]), dtype=bool)
            out[y0:y1, x0:x1] = True
            return out
        rle = {"size": list(roi["mask"]["size"]), "counts": roi["mask"]["counts"].encode()}
        return coco_mask.decode(rle).astype(bool)

    def dark_margin(self) -> np.ndarray:
        labelled, _ = ndimage.label(self.gray() <= DARK_LEVEL, structure=np.ones((3, 3)))
        edge = set(np.concatenate([labelled[0], labelled[-1], labelled[:, 0], labelled[:, -1]]).tolist()) - {0}
        return np.isin(labelled, list(edge))


def texture_numbers(record: Record, index: int) -> dict:
    """The statistics of ROI `index`, computed here from the decoded image and mask."""
    gray, inside = record.gray(), record.mask(index)
    count = int(inside.sum())
    width = max(5, round(0.25 * math.sqrt(count)))
    out_distance = ndimage.distance_transform_edt(~inside)
    in_distance = ndimage.distance_transform_edt(inside)
    ring = ~inside & (out_distance <= width) if not inside.all() else np.zeros_like(inside)
    core = inside & (in_distance > 2.0)
    if core.sum() < 9:
        core = inside
    mean_in, std_in = gray[inside].mean(), gray[inside].std()
    numbers = {"pixels": count, "ring_pixels": int(ring.sum()), "mean_inside": mean_in, "std_core": gray[core].std()}
    if ring.sum() >= 9:
        mean_around, std_around = gray[ring].mean(), gray[ring].std()
        gradient = ndimage.gaussian_gradient_magnitude(gray, 1.0)
        band = (inside & (in_distance <= 2)) | (ring & (out_distance <= 2))
        rest = (inside | ring) & ~band
        numbers |= {
            "mean_around": mean_around,
            "contrast": (mean_in - mean_around) / max(math.sqrt((std_in**2 + std_around**2) / 2), 1.0),
            "edge_sharpness": gradient[band].mean() / max(gradient[rest].mean(), 1.0),
            "level": max(mean_in, mean_around, LEVEL_FLOOR),
        }
    else:
        numbers["level"] = max(mean_in, LEVEL_FLOOR)
    numbers["heterogeneity"] = numbers["std_core"] / numbers["level"]
    margin = record.dark_margin()
    numbers["dark_inside"] = float(margin[inside].mean())
    numbers["dark_ring"] = float(margin[ring].mean()) if ring.any() else 0.0
    rgb = getattr(record, "rgb", None)
    chroma = (rgb.max(axis=2).astype(int) - rgb.min(axis=2)) >= CHROMA if rgb is not None else np.zeros_like(inside)
    numbers["colour"] = float(chroma[inside | ring].mean())
    return numbers


def close(stated: str, actual: float, step: float) -> bool:
    """A printed number agrees with the recomputed one within its rounding (and float noise)."""
    return abs(float(stated) - actual) <= step / 2 + 1e-6 + 1e-4 * abs(actual)


# ---------------------------------------------------------------- the checker
def image_side(horizontal: str) -> str | None:
    return {"left": "left", "left-center": "left", "right-center": "right", "right": "right"}.get(horizontal)


def check_texture(record: Record, claims: list[dict], problems: list[str]) -> None:
    index = claims[0]["subject"]
    roi = record.rois[index]
    if roi["kind"] not in TEXTURED_KINDS and not (roi["kind"] == "label" and roi["source"] == "annotation"):
        problems.append(f"texture stated for {roi['label']!r} of kind {roi['kind']}")
        return
    numbers = texture_numbers(record, index)
    said = {c["kind"]: c["value"] for c in claims}
    text = claims[0]["text"]
    if numbers["pixels"] < MIN_TEXTURE_PIXELS:
        problems.append(f"texture stated for a {numbers['pixels']}-pixel region")
    if numbers["dark_inside"] > MAX_DARK_INSIDE:
        problems.append(f"texture stated for {roi['label']!r} lying on the dark margin")
    if record.row["modality"] == "Ultrasound" and numbers["colour"] > MAX_COLOUR:
        problems.append(f"echo words for {roi['label']!r} under a colour overlay")
    for kind, key, step in [
        ("mean_inside", "mean_inside", 1),
        ("core_std", "std_core", 1),
        ("intensity_level", "level", 1),
        ("heterogeneity", "heterogeneity", 0.01),
    ]:
        if kind in said and not close(said[kind], numbers[key], step):
            problems.append(f"{kind} {said[kind]} but recomputed {numbers[key]:.3f}")
    heterogeneous = float(said["heterogeneity"]) >= HETEROGENEITY_THRESHOLD
    if said["homogeneity"] != ("heterogeneous" if heterogeneous else "homogeneous"):
        problems.append(f"{said['homogeneity']} with heterogeneity {said['heterogeneity']}")
    for kind in ("homogeneity", "heterogeneity", "core_std", "intensity_level"):
        if said[kind] not in text:
            problems.append(f"{kind} {said[kind]} not in {text!r}")
    if "no_comparison" in said:
        reason = said["no_comparison"]
        enough_ring = numbers["ring_pixels"] >= MIN_RING_PIXELS
        if reason == "margin" and not (enough_ring and numbers["dark_ring"] > MAX_DARK_RING):
            problems.append(f"{roi['label']!r} not compared for the dark margin, but its ring is tissue")
        if reason != "margin" and (enough_ring or int(reason) != numbers["ring_pixels"]):
            problems.append(
                f"{roi['label']!r} not compared for {reason} ring pixels, recomputed {numbers['ring_pixels']}"
            )
        return
    if numbers["ring_pixels"] < MIN_RING_PIXELS or numbers["dark_ring"] > MAX_DARK_RING:
        problems.append(
            f"{roi['label']!r} compared with a ring of {numbers['ring_pixels']} pixels "
            f"({numbers['dark_ring']:.0%} dark margin)"
        )
        return
    for kind, key, step in [
        ("mean_around", "mean_around", 1),
        ("contrast", "contrast", 0.1),
        ("edge_sharpness", "edge_sharpness", 0.1),
    ]:
        if not close(said[kind], numbers[key], step):
            problems.append(f"{kind} {said[kind]} but recomputed {numbers[key]:.3f}")
        if said[kind] not in text:
            problems.append(f"{kind} {said[kind]} not in {text!r}")
    difference = int(said["mean_inside"]) - int(said["mean_around"])
    if abs(float(said["contrast"])) < CONTRAST_THRESHOLD or abs(difference) < MIN_DIFFERENCE:
        expected = "similar"
    else:
        expected = "brighter" if difference > 0 else "darker"
    if said["brightness"] != expected:
        problems.append(f"{said['brightness']} but the printed numbers say {expected} ({text!r})")
    terms = BRIGHTNESS_WORDS.get(record.row["modality"], BRIGHTNESS_WORDS["Other"])
    term = dict(zip(("brighter", "darker", "similar"), terms))[expected]
    if term not in text:
        problems.append(f"{term!r} not in {text!r}")
    sharp = float(said["edge_sharpness"]) >= SHARP_RATIO
    if said["margin"] != ("sharp" if sharp else "ill-defined") or f"{said['margin']} margin" not in text:
        problems.append(f"{said['margin']} margin with edge ratio {said['edge_sharpness']}")


def check_background(record: Record, claim: dict, problems: list[str]) -> None:
    index = record.indexed(claim["evidence"], "knowledge")
    passage = record.row["knowledge"][index]
    if claim["value"] != passage["id"]:
        problems.append(f"background cites {claim['value']} but knowledge[{index}] is {passage['id']}")
    match = re.fullmatch(r"Background: (.*) \[(.+)\]\.", claim["text"])
    if not match or match.group(2) != passage["id"]:
        problems.append(f"background sentence not in its form: {claim['text']!r}")
        return
    quoted = match.group(1).removesuffix(" …")
    source = " ".join(passage["text"].split()) or passage["title"]
    if not source.startswith(quoted):
        problems.append(f"background {quoted!r} is not quoted verbatim from {passage['id']}")
    modality = record.row["modality"]
    allowed = {modality} | COMPATIBLE_MODALITIES.get(modality, frozenset())
    named = set(modalities_named(f"{passage['title']}. {passage['text']}"))
    in_quote = set(modalities_named(quoted))
    if (in_quote and not in_quote & allowed) or (named and not named & allowed):
        problems.append(f"background {passage['id']} is about {named} on a {modality} image")
    if passage["id"].startswith(("HP:", "ICD10CM:")) and not record.findings():
        problems.append(f"background {passage['id']} names an abnormality on an image with no recorded finding")
    if DATASET_WORDS.search(passage["title"]) or DATASET_WORDS.search(passage["text"]):
        problems.append(f"background {passage['id']} is about a dataset")
    says_normal = bool(re.search(r"\bnormal\b", passage["title"] + " " + quoted, re.IGNORECASE))
    labelled_normal = any(record.label_kind(label) == "normal" for label in record.row["labels"])
    has_finding = (
        bool(record.findings())
        or any(r["kind"] == "finding" for r in record.rois)
        or any(record.label_kind(label) in ("uncertain", "case") for label in record.row["labels"])
    )
    if says_normal and (has_finding or not labelled_normal):
        problems.append(f"normal passage {passage['id']} on an image the source does not call normal")
    if labelled_normal and not has_finding and not says_normal:
        problems.append(f"passage {passage['id']} on an image the source calls normal is not a normal passage")


def check_label_claim(record: Record, claim: dict, problems: list[str]) -> None:
    """finding / uncertain / case / negative / normal / device / stain / study / tissue / label claims."""
    kind, value, evidence, text = claim["kind"], claim["value"], claim["evidence"], claim["text"]
    row = record.row
    if evidence == "disease":
        if kind != "finding" or value != row["disease"]:
            problems.append(f"{kind} claim {value!r} from disease {row['disease']!r}")
    elif evidence.startswith("rois["):
        roi = record.rois[record.indexed(evidence, "rois")]
        if kind != "finding" or roi["kind"] != "finding" or roi["source"] != "annotation" or value != roi["label"]:
            problems.append(f"{kind} claim {value!r} from ROI {roi['label']!r} ({roi['kind']}, {roi['source']})")
    else:
        label = row["labels"][record.indexed(evidence, "labels")]
        if label != value or record.label_kind(label) != kind:
            problems.append(f"{kind} claim {value!r} from label {label!r} of kind {record.label_kind(label)}")
    shown = re.sub(r"\s*\((?:uncertain|possible|probable)\)$", "", value, flags=re.IGNORECASE) or value
    if kind != "normal" and shown not in text:
        problems.append(f"{value!r} not in {text!r}")
    expected_words = {
        "finding": "finding",
        "uncertain": "uncertain",
        "case": "case recorded with",
        "negative": "records",
        "normal": "labels the image as normal",
        "device": "notes",
        "stain": "stain",
        "study": "study",
        "tissue": "classes this",
        "label": "not declare",
    }
    if expected_words[kind] not in text and not (kind == "case" and "case as a whole" in text):
        problems.append(f"{kind} claim in {text!r}")
    if kind == "negative" and not re.search(rf"records (?:no )?{re.escape(value)}", text, re.IGNORECASE):
        problems.append(f"negative {value!r} not stated as absent: {text!r}")
    if kind == "case" and "No lesion is annotated" in text:
        if any(r["kind"] == "finding" for r in record.rois):
            problems.append("'no lesion is annotated' on a record with a finding ROI")
        noun = (
            "slice"
            if row["origin"]["slice"] is not None
            else "frame"
            if row["origin"]["frame"] is not None
            else "image"
        )
        if f"on this {noun} of a case" not in text:
            problems.append(f"case sentence does not say {noun}: {text!r}")


RELATION_KINDS = {
    "uncertain_region": "uncertain",
    "anatomy_region": "anatomy",
    "tissue_region": "tissue",
    "device_region": "device",
    "region_region": "region",
}


def check_claim(record: Record, claim: dict, problems: list[str]) -> None:
    row, rois = record.row, record.rois
    kind, value, text, subject = claim["kind"], claim["value"], claim["text"], claim["subject"]
    roi = rois[subject] if subject is not None else None
    if kind == "modality":
        if value != row["modality"] or MODALITY_WORDS[value] not in text:
            problems.append(f"modality {value!r} / record {row['modality']!r}: {text!r}")
    elif kind == "organ_group":
        if value != "chest" or "chest X-ray" not in text or row["organ"] not in THORACIC_ORGANS:
            problems.append(f"'chest' said of organ {row['organ']!r}")
    elif kind in ("slice", "axis", "frame"):
        if value != str(row["origin"][kind]) or value not in text:
            problems.append(f"{kind} {value!r} but origin has {row['origin'][kind]!r}")
    elif kind == "organ":
        expected = f"the {row['organ']}" if row["organ"] else "not specified"
        if value != (row["organ"] or "") or expected not in text:
            problems.append(f"organ {value!r} / record {row['organ']!r}: {text!r}")
    elif kind == "roi_label":
        if value != roi["label"] or value not in text:
            problems.append(f"label {value!r} / ROI {roi['label']!r}")
    elif kind == "count":
        n = len(rois)
        expected = "No region" if n == 0 else "one region" if n == 1 else f"{n} regions"
        if value != str(n) or expected not in text:
            problems.append(f"count {value} but {n} ROIs: {text!r}")
    elif kind == "listed":
        listed = [c["subject"] for c in row["claims"] if c["kind"] == "position" and c["attribute"] == "roi"]
        rest = [r["area_ratio"] for i, r in enumerate(rois) if i not in listed]
        if int(value) != len(listed) or (rest and min(rois[i]["area_ratio"] for i in listed) < max(rest)):
            problems.append(f"the {value} listed are not the largest")
    elif kind in ("finding", "uncertain", "case", "negative", "normal", "device", "stain", "study", "tissue", "label"):
        check_label_claim(record, claim, problems)
    elif kind == "no_diagnosis":
        stated = [label for label in row["labels"] if record.label_kind(label) in STATUS_KINDS]
        if (
            row["disease"]
            or stated
            or any(r["kind"] in ("finding", "uncertain") and r["source"] == "annotation" for r in rois)
        ):
            problems.append(f"'no diagnosis' but the source gives {row['disease']!r} / {stated}")
    elif kind == "position":
        expected = f"{roi['position']['vertical']} {roi['position']['horizontal']}"
        if value != expected or expected not in text:
            problems.append(f"position {value!r} but ROI is {expected!r}")
    elif kind == "area":
        shown = "less than 0.1%" if roi["area_ratio"] < 0.1 else f"{roi['area_ratio']:.1f}%"
        if float(value) != roi["area_ratio"] or shown not in text:
            problems.append(f"area {value} but ROI has {roi['area_ratio']}")
    elif kind == "side":
        side = image_side(roi["position"]["horizontal"])
        orientation = row["origin"]["patient_left_on_image"]
        expected = (
            None
            if side is None or orientation not in ("left", "right")
            else ("left" if side == orientation else "right")
        )
        if value != expected or f"patient's {value}" not in text:
            problems.append(f"patient side {value!r} but the geometry gives {expected!r}")
    elif kind == "provenance":
        source = rois[record.indexed(claim["evidence"], "rois")]["source"]
        shown = "annotation" if value == "annotation" else value.removeprefix("expert:")
        if value != source or shown not in text:
            problems.append(f"provenance {value!r} / {source!r}")
    elif kind in TEXTURE_CLAIMS:
        pass  # checked sentence by sentence in check_texture
    elif kind == "no_texture":
        eligible = [i for i, r in enumerate(rois) if r["kind"] in TEXTURED_KINDS]
        sizes = [int(record.mask(i).sum()) for i in eligible]
        if any(c["kind"] in TEXTURE_CLAIMS for c in row["claims"]):
            problems.append("'no texture' beside a texture sentence")
        ok = {
            "no_roi": not rois,
            "kind": rois and not eligible,
            "size": eligible and all(s < MIN_TEXTURE_PIXELS for s in sizes),
        }.get(value, bool(eligible))
        if not ok:
            problems.append(f"no texture for reason {value!r} but eligible ROIs have sizes {sizes}")
    elif kind == "placement":
        centre = (roi["position"]["horizontal"], roi["position"]["vertical"]) == ("center", "middle")
        where = f"{roi['position']['vertical']} {roi['position']['horizontal']}"
        if centre != (value == "central") or centre != ("centrally" in text):
            problems.append(f"placement {value!r} for an ROI at {where}")
        if not centre and (value != where or "off-centre" not in text or where not in text):
            problems.append(f"placement {value!r} for an ROI at {where}")
    elif kind == "border":
        x0, y0, x1, y1 = roi["bbox"]
        edges = [
            e
            for e, touches in [
                ("top", y0 <= 0),
                ("bottom", y1 >= row["height"]),
                ("left", x0 <= 0),
                ("right", x1 >= row["width"]),
            ]
            if touches
        ]
        if value != (",".join(edges) or "none") or (not edges) != ("does not touch" in text):
            problems.append(f"border {value!r} but the box {roi['bbox']} touches {edges}")
    elif kind == "size":
        area = roi["area_ratio"]
        expected = "a small part" if area < 5 else "a moderate part" if area < 25 else "a large part"
        if value != expected or expected not in text:
            problems.append(f"size {value!r} for {area}%")
    elif kind == "rank":
        largest = all(roi["area_ratio"] > r["area_ratio"] for i, r in enumerate(rois) if i != subject)
        if (value == "largest") != largest or (value == "largest") != ("the largest" in text):
            problems.append(f"rank {value!r} but largest={largest}")
    elif kind == "finding_region":
        findings = record.findings()
        if roi["kind"] != "finding":
            problems.append(f"finding tied to {roi['label']!r} of kind {roi['kind']}")
        elif roi["source"] == "annotation" and value != roi["label"]:
            problems.append(f"finding {value!r} tied to annotated {roi['label']!r}")
        elif roi["source"] != "annotation" and (len(findings) != 1 or value != findings[0]):
            problems.append(f"expert region tied to {value!r} among findings {findings}")
        if f"recorded finding {value}" not in text:
            problems.append(f"finding region sentence {text!r}")
    elif kind == "expert_finding_region":
        if roi["kind"] != "finding" or roi["source"] == "annotation" or value != roi["label"]:
            problems.append(f"expert finding region {value!r} on {roi}")
    elif kind in RELATION_KINDS:
        if roi["kind"] != RELATION_KINDS[kind] or value != roi["label"]:
            problems.append(f"{kind} said of {roi['label']!r} of kind {roi['kind']}")
    elif kind == "labelled_region":
        if value != roi["label"] or roi["kind"] in ("finding", *RELATION_KINDS.values()):
            problems.append(f"labelled region said of {roi['label']!r} of kind {roi['kind']}")
    elif kind == "unlocated_finding":
        if any(r["kind"] == "finding" for r in rois) or value not in record.findings():
            problems.append(f"'no region outlines {value}' with ROI kinds {[r['kind'] for r in rois]}")
    elif kind == "background":
        check_background(record, claim, problems)
    elif kind == "redacted_text":
        boxes = row["origin"]["redacted"] or []
        if value != str(len(boxes)) or not boxes or f"removed from {value} area" not in text:
            problems.append(f"text removed from {value} areas but the record has {len(boxes)} boxes: {text!r}")
    else:
        problems.append(f"unknown claim kind {kind!r}: nothing checks it")


def check_sentence(record: Record, text: str, claims: list[dict], problems: list[str]) -> None:
    """Words a sentence may only use when its claims support them."""
    kinds = {c["kind"] for c in claims}
    if "background" in kinds:
        return
    for name in sorted({r["label"] for r in record.rois} | set(record.row["labels"]), key=len, reverse=True):
        text = text.replace(name, "<label>")  # a label is a name, not a statement
    if re.search(r"no disease", text, re.IGNORECASE):
        problems.append(f"'no disease' stated: {text!r}")
    if "centrally" in text and not any(
        c["kind"] in ("position", "placement")
        and record.rois[c["subject"]]["position"] == {"horizontal": "center", "vertical": "middle"}
        for c in claims
    ):
        problems.append(f"'centrally' without a centre-bin ROI: {text!r}")
    if re.search(r"\bfinding", text) and not kinds & FINDING_SENTENCE_CLAIMS:
        problems.append(f"'finding' in a sentence with claims {sorted(kinds)}: {text!r}")
    if re.search(r"\bnormal\b", text) and "normal" not in kinds:
        problems.append(f"'normal' without a normal-kind label: {text!r}")
    areas = {c["value"] for c in claims if c["kind"] == "area"}
    for number in re.findall(r"(\d+(?:\.\d+)?)%", text):
        if number not in areas and not (number == "0.1" and "less than 0.1%" in text):
            problems.append(f"{number}% stated without an area claim: {text!r}")
    terms = {t for words in BRIGHTNESS_WORDS.values() for t in words}
    if not kinds & TEXTURE_CLAIMS and any(re.search(rf"\b{re.escape(t)}\b", text) for t in terms):
        problems.append(f"an intensity word without a measured claim: {text!r}")


def unsupported(row: dict) -> list[str]:
    """Every problem the checker finds in one record's description and claims."""
    record = Record(row)
    claims = row["claims"]
    problems: list[str] = []
    if not claims:
        return ["the description has no claims"]
    sentences = [(text, list(group)) for text, group in groupby(claims, key=lambda c: c["text"])]
    if " ".join(text for text, _ in sentences) != row["description"]:
        problems.append("the claims' sentences are not the description")
    for name, text in row["attributes"].items():
        own = [t for t, _ in groupby([c for c in claims if c["attribute"] == name], key=lambda c: c["text"])]
        if " ".join(own) != text:
            problems.append(f"the {name} attribute is not its claims' sentences")
    for text, group in sentences:
        for claim in group:
            check_claim(record, claim, problems)
        texture = [c for c in group if c["kind"] in TEXTURE_CLAIMS]
        if texture:
            check_texture(record, texture, problems)
        check_sentence(record, text, group, problems)
    return problems


# ---------------------------------------------------------------- the tests
def test_every_claim_of_every_grounded_description_holds(records):
    assert len(records) > 100
    failures = {f"{r['source']} {r['origin']['file']}": p for r in records if (p := unsupported(r))}
    assert failures == {}


def test_every_record_is_grounded_and_states_its_disease_status(records):
    for row in records:
        assert row["describer"].startswith("grounded@")
        kinds = {c["kind"] for c in row["claims"]}
        assert kinds & {"finding", "uncertain", "case", "negative", "normal", "no_diagnosis"}, row["description"]


def test_the_checker_catches_planted_falsehoods(records):
    """The checker must be able to fail: one false claim of each kind is found."""
    row = next(
        r
        for r in records
        if len(r["rois"]) >= 2
        and any(c["kind"] == "brightness" for c in r["claims"])
        and r["origin"]["patient_left_on_image"]
    )

    def planted(kind: str, change) -> list[str]:
        copy = dict(row, claims=[dict(c) for c in row["claims"]])
        claim = next(c for c in copy["claims"] if c["kind"] == kind)
        change(claim)
        return unsupported(copy)

    def swap_word(claim: dict) -> None:
        claim["value"] = {"brighter": "darker", "darker": "brighter", "similar": "brighter"}[claim["value"]]

    assert planted("position", lambda c: c.update(value="top left"))
    assert planted("area", lambda c: c.update(value=str(float(c["value"]) + 3)))
    assert planted("count", lambda c: c.update(value="7"))
    assert planted("side", lambda c: c.update(value={"left": "right", "right": "left"}[c["value"]]))
    assert planted("brightness", swap_word)
    assert planted("mean_inside", lambda c: c.update(value=str(int(c["value"]) + 9)))
    assert planted("modality", lambda c: c.update(value="PET"))
    assert unsupported(dict(row, description=row["description"] + " The lesion is hypodense."))
    normal = dict(row, claims=[dict(c) for c in row["claims"]])
    normal["claims"][0] = dict(normal["claims"][0], kind="normal", evidence="disease")
    assert unsupported(normal)
