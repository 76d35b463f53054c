"""The record types that travel between stages, and the one Arrow schema of a build's output.

A `Sample` is created by the read stage from a `SourceItem`, filled in by each later stage, and
turned into one Parquet row by `sample_to_row`. Transient fields (pixels, regions) never reach disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

MODALITIES = (
    "CT",
    "MRI",
    "X-Ray",
    "Ultrasound",
    "Endoscopy",
    "Dermoscopy",
    "Fundus",
    "OCT",
    "Histopathology",
    "Microscopy",
    "PET",
    "Nuclear Medicine",
    "Other",
)
HORIZONTAL_WORDS = ("left", "left-center", "center", "right-center", "right")
VERTICAL_WORDS = ("top", "upper-middle", "middle", "lower-middle", "bottom")
ATTRIBUTE_NAMES = ("modality", "structures", "roi", "texture", "local_global")
# What a label means (declared per recipe, `sources/label_kinds.py`); a describer calls only "finding" a finding.
LABEL_KINDS = (
    "finding",  # an abnormality the source records ("pneumothorax", "polyp", "renal tumor")
    "uncertain",  # a finding the source marks as uncertain ("Pneumonia (uncertain)")
    "case",  # a finding recorded for the whole case or volume, not located on this image (a KiTS tumour-free slice)
    "negative",  # a finding the source says is absent ("no pneumothorax")
    "normal",  # the source calls the image normal ("No Finding", "normal")
    "anatomy",  # a normal structure ("kidney", "left lung", "lung field")
    "tissue",  # a tissue class of a pathology tile ("adipose tissue", "debris", "background")
    "stain",  # how a slide was stained ("IHC (DAB) stain")
    "study",  # what kind of examination it is ("whole-body bone scan")
    "device",  # lines, tubes and implants ("Support Devices")
    "region",  # a region an expert outlined by its appearance, claiming no diagnosis ("foreground", "focal region")
    "label",  # a label whose meaning the recipe does not declare: never called a finding
)


def sample_id(source: str, file: str, slice_index: int | None = None, frame: int | None = None) -> str:
    """Stable id of one image: the same source, input path and slice/frame give the same id on every run."""
    key = f"{source}\0{file}\0{'' if slice_index is None else slice_index}\0{'' if frame is None else frame}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


@dataclass
class Origin:
    file: str
    slice: int | None = None
    axis: str | None = None
    frame: int | None = None
    spacing: list[float] | None = None
    orientation: str | None = None
    intensity: str | None = None
    # "left"/"right": the image side that shows the patient's left, where the source's orientation says so.
    patient_left_on_image: str | None = None
    # Boxes [x0, y0, x1, y1] (x1/y1 exclusive) blacked out because text was burned in there (never the text)
    redacted: list[list[int]] | None = None
    # A source that is itself a compiled dataset names each image its own way: its id for the image (MedTrinity-25M's
    # `id`) and the dataset it took the image from (its `source` column: "chexpert", "brats" …). None elsewhere.
    source_id: str | None = None
    source_dataset: str | None = None


@dataclass
class Position:
    horizontal: str
    vertical: str


@dataclass
class ROI:
    bbox: list[int]  # [x0, y0, x1, y1], x1/y1 exclusive
    label: str
    source: (
        str  # "annotation", "expert:<name>@<version>" or "recovered:<name>@<version>" (found in the source's pixels)
    )
    position: Position
    area_ratio: float  # percent of the image, one decimal
    mask: dict | None = None  # COCO RLE {"size": [h, w], "counts": str}
    score: float | None = None
    kind: str = "label"  # one of LABEL_KINDS: what the label means


@dataclass
class Passage:
    id: str
    title: str
    text: str
    score: float


@dataclass
class Attributes:
    modality: str = ""
    structures: str = ""
    roi: str = ""
    texture: str = ""
    local_global: str = ""


CHECK_STATUSES = ("pass", "fail", "not-verifiable")


@dataclass
class Check:
    """One verification of a description against the record.

    status: "pass", "fail" or "not-verifiable" (the text states something the record cannot confirm or
    refute, e.g. the patient's side when the orientation is unknown). `ok` is False only for "fail", so a
    check that could not be performed never quarantines a record; `status` tells it apart from a pass.
    """

    name: str
    ok: bool
    detail: str
    status: str | None = None

    def __post_init__(self) -> None:
        if self.status is None:  # written before statuses existed, or made with ok alone
            self.status = "pass" if self.ok else "fail"
        elif self.status not in CHECK_STATUSES:
            raise ValueError(f"check status must be one of {CHECK_STATUSES}, got {self.status!r}")


@dataclass
class Claim:
    """One statement of a description, with the record field it rests on, so it can be checked on its own.

    attribute: which of ATTRIBUTE_NAMES the sentence belongs to, or "knowledge" for a quoted passage.
    kind: what is claimed ("modality", "organ", "finding", "position", "area", "brightness", …; the grounded
        describer's kinds are listed in docs/TRUTHFULNESS.md).
    subject: index into `rois` of the ROI the claim is about, or None for the whole image.
    value: the stated value, as the record holds it ("MRI", "upper-middle left", "0.6", "mt-liver-003").
    evidence: the field the value comes from ("modality", "rois[0].position", "labels[1]", "knowledge[0]").
    text: the sentence (or clause) that states it.
    """

    attribute: str
    kind: str
    value: str
    evidence: str
    text: str
    subject: int | None = None


@dataclass
class Description:
    attributes: Attributes
    text: str
    describer: str
    claims: list[Claim] = field(default_factory=list)


@dataclass
class Region:
    """A region as a source or an expert gives it, before geometry turns it into ROIs."""

    label: str
    source: str = "annotation"
    mask: np.ndarray | None = None  # bool HxW
    bbox: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 (x1/y1 exclusive)
    score: float | None = None
    kind: str | None = None  # LABEL_KINDS; None: the record's label_kinds decide (an expert states its own)


@dataclass
class Sample:
    id: str
    source: str
    origin: Origin
    modality: str
    split: str | None = None
    organ: str | None = None
    disease: str | None = None
    labels: list[str] = field(default_factory=list)
    label_kinds: dict[str, str] = field(default_factory=dict)  # label (of `labels` and of ROIs) -> LABEL_KINDS
    reference_text: str | None = None
    width: int = 0
    height: int = 0
    rois: list[ROI] = field(default_factory=list)
    coarse_caption: str = ""
    knowledge: list[Passage] = field(default_factory=list)
    description: str = ""
    attributes: Attributes = field(default_factory=Attributes)
    describer: str = ""
    checks: list[Check] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    # PNG of `pixels` (or the stored JPEG): made by the encode stage, or already by the describer that sent it
    image_bytes: bytes | None = None
    # transient: never written
    pixels: np.ndarray | None = None  # uint8, HxW (gray) or HxWx3 (RGB): the image as seen by the describer
    regions: list[Region] = field(default_factory=list)
    # "left"/"right": the image side showing the patient's left, if known; written as origin.patient_left_on_image
    patient_left_on_image: str | None = None
    expert: str | None = None  # expert to run when the source gives no region
    item: Any = None  # the SourceItem this sample was read from


# ---------------------------------------------------------------- Arrow schema (the one place)
_POSITION = pa.struct([("horizontal", pa.string()), ("vertical", pa.string())])
_RLE = pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])
_ROI = pa.struct(
    [
        ("bbox", pa.list_(pa.int32())),
        ("mask", _RLE),
        ("label", pa.string()),
        ("source", pa.string()),
        ("score", pa.float32()),
        ("position", _POSITION),
        ("area_ratio", pa.float64()),  # float64 so 0.6 reads back as 0.6
        ("kind", pa.string()),
    ]
)
_ORIGIN = pa.struct(
    [
        ("file", pa.string()),
        ("slice", pa.int32()),
        ("axis", pa.string()),
        ("frame", pa.int32()),
        ("spacing", pa.list_(pa.float64())),
        ("orientation", pa.string()),
        ("intensity", pa.string()),
        ("patient_left_on_image", pa.string()),
        ("redacted", pa.list_(pa.list_(pa.int32()))),
        ("source_id", pa.string()),
        ("source_dataset", pa.string()),
    ]
)
_PASSAGE = pa.struct([("id", pa.string()), ("title", pa.string()), ("text", pa.string()), ("score", pa.float32())])
_ATTRIBUTES = pa.struct([(name, pa.string()) for name in ATTRIBUTE_NAMES])
_CHECK = pa.struct([("name", pa.string()), ("ok", pa.bool_()), ("detail", pa.string()), ("status", pa.string())])
_CLAIM = pa.struct(
    [
        ("attribute", pa.string()),
        ("kind", pa.string()),
        ("subject", pa.int32()),
        ("value", pa.string()),
        ("evidence", pa.string()),
        ("text", pa.string()),
    ]
)
_LABEL_KIND = pa.struct([("label", pa.string()), ("kind", pa.string())])
# The same struct as Hugging Face's `Image` feature, so `datasets` decodes the column as images.
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("image", IMAGE_TYPE),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("modality", pa.string()),
        ("organ", pa.string()),
        ("disease", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("label_kinds", pa.list_(_LABEL_KIND)),
        ("origin", _ORIGIN),
        ("rois", pa.list_(_ROI)),
        ("coarse_caption", pa.string()),
        ("knowledge", pa.list_(_PASSAGE)),
        ("description", pa.string()),
        ("attributes", _ATTRIBUTES),
        ("reference_text", pa.string()),
        ("describer", pa.string()),
        ("checks", pa.list_(_CHECK)),
        ("claims", pa.list_(_CLAIM)),
    ],
    # Only the image column needs a hint; `datasets` infers the rest from the Arrow types.
    metadata={b"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}}}}).encode()},
)

# transient: the record failed for a reason a later try may pass (errors.TransientError: a model server
# unreachable, a timeout, 429/5xx after every retry); `build --resume --retry-transient` retries those records.
QUARANTINE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("file", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("transient", pa.bool_()),
    ]
)


def image_extension(data: bytes) -> str:
    return "jpg" if data[:2] == b"\xff\xd8" else "png"


def sample_to_row(sample: Sample) -> dict[str, Any]:
    if sample.image_bytes is None:
        raise ValueError(f"sample {sample.id} has no encoded image")
    return {
        "id": sample.id,
        "source": sample.source,
        "split": sample.split,
        "image": {"bytes": sample.image_bytes, "path": f"{sample.id}.{image_extension(sample.image_bytes)}"},
        "width": sample.width,
        "height": sample.height,
        "modality": sample.modality,
        "organ": sample.organ,
        "disease": sample.disease,
        "labels": list(sample.labels),
        "label_kinds": [{"label": label, "kind": kind} for label, kind in sample.label_kinds.items()],
        "origin": asdict(sample.origin) | {"patient_left_on_image": sample.patient_left_on_image},
        "rois": [asdict(roi) for roi in sample.rois],
        "coarse_caption": sample.coarse_caption,
        "knowledge": [asdict(p) for p in sample.knowledge],
        "description": sample.description,
        "attributes": asdict(sample.attributes),
        "reference_text": sample.reference_text,
        "describer": sample.describer,
        "checks": [asdict(c) for c in sample.checks],
        "claims": [asdict(c) for c in sample.claims],
    }


def row_to_sample(row: dict[str, Any]) -> Sample:
    """Inverse of `sample_to_row` (pixels are not decoded)."""
    rois = [
        ROI(
            bbox=list(r["bbox"]),
            label=r["label"],
            source=r["source"],
            position=Position(**r["position"]),
            area_ratio=r["area_ratio"],
            mask=r["mask"],
            score=r["score"],
            kind=r.get("kind") or "label",
        )
        for r in row["rois"]
    ]
    origin = Origin(**row["origin"])
    return Sample(
        id=row["id"],
        source=row["source"],
        split=row["split"],
        origin=origin,
        modality=row["modality"],
        organ=row["organ"],
        disease=row["disease"],
        labels=list(row["labels"]),
        label_kinds={k["label"]: k["kind"] for k in row.get("label_kinds") or []},
        patient_left_on_image=origin.patient_left_on_image,
        reference_text=row["reference_text"],
        width=row["width"],
        height=row["height"],
        rois=rois,
        coarse_caption=row["coarse_caption"],
        knowledge=[Passage(**p) for p in row["knowledge"]],
        description=row["description"],
        attributes=Attributes(**row["attributes"]),
        describer=row["describer"],
        checks=[Check(**c) for c in row["checks"]],
        claims=[Claim(**c) for c in row.get("claims") or []],
        image_bytes=row["image"]["bytes"],
    )


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)
