"""The stages of a build, in order: read → locate → caption → retrieve → describe → verify → encode.

Each stage is a small callable with a `name`; it takes the record and returns it filled in, or raises
StageError with a reason a person understands. Stages know nothing of executors (local pool or Ray):
they are built from the BuildConfig inside each worker by `build_stages`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from medtrinity.errors import StageError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.records import Origin, Sample
from medtrinity.sources.base import SourceItem


FALLBACK_EXPERT = "foreground"


class Stage(Protocol):
    name: str

    def __call__(self, record): ...


class ReadStage:
    """SourceItem → Sample with pixels, geometry and the source's own regions."""

    name = "read"

    def __call__(self, item: SourceItem) -> Sample:
        from medtrinity.sources.imaging import read_image

        if not item.path.is_file():
            raise StageError(f"image file {item.file} is missing")
        image = read_image(item.path, frame=item.frame, window=item.window)
        modality = item.modality or image.modality_hint
        if modality is None:
            raise StageError(f"{item.file}: the modality is unknown (the recipe sets none and the file does not say)")
        height, width = image.pixels.shape[:2]
        return Sample(
            id=item.id, source=item.source, split=item.split, modality=modality,
            organ=item.organ or image.body_part, disease=item.disease, labels=list(item.labels),
            reference_text=item.reference_text, width=width, height=height, pixels=image.pixels,
            origin=Origin(
                file=item.file, slice=item.slice, axis=item.axis, frame=item.frame, spacing=image.spacing,
                orientation=image.orientation, intensity=image.intensity,
            ),
            patient_left_on_image=image.patient_left_on_image, expert=item.expert, item=item,
        )


class LocateStage:
    """Regions from the source's annotations; an expert only where the source gives none."""

    name = "locate"

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.roi.geometry import rois_from_regions

        item: SourceItem = sample.item
        shape = (sample.height, sample.width)
        regions = [r for ann in item.annotations for r in ann.resolve(Path(item.root), item, shape)]
        if not regions and sample.expert:
            regions = self._run_expert(sample)
        sample.regions = regions
        sample.rois = rois_from_regions(regions, sample.width, sample.height)
        return sample

    @staticmethod
    def _run_expert(sample: Sample):
        from medtrinity.roi.experts.base import default_expert_for, get_expert

        name = default_expert_for(sample.modality, sample.organ) if sample.expert == "auto" else sample.expert
        regions = get_expert(name).locate(sample.pixels, sample.modality, sample.organ, sample.labels)
        if not regions and name != FALLBACK_EXPERT:  # nothing specific found: the main object, as the paper does
            regions = get_expert(FALLBACK_EXPERT).locate(sample.pixels, sample.modality, sample.organ, sample.labels)
        return regions


class CaptionStage:
    name = "caption"

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.caption import coarse_caption

        sample.coarse_caption = coarse_caption(sample.modality, sample.organ, sample.disease, sample.labels)
        return sample


class RetrieveStage:
    name = "retrieve"

    def __init__(self, kb: str | None, top_k: int) -> None:
        from medtrinity.knowledge.index import load_index

        self.index = load_index(kb)
        self.top_k = top_k

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.knowledge.query import build_query

        labels = sorted({r.label for r in sample.rois} | set(sample.labels))
        query = build_query(sample.coarse_caption, labels, sample.disease, sample.organ, sample.modality)
        sample.knowledge = self.index.search(query, k=self.top_k) if self.top_k else []
        return sample


class DescribeStage:
    name = "describe"

    def __init__(self, describer: str) -> None:
        from medtrinity.describe.base import get_describer

        self.describer = get_describer(describer)

    def __call__(self, sample: Sample) -> Sample:
        description = self.describer.describe(sample)
        sample.attributes, sample.description, sample.describer = (
            description.attributes, description.text, description.describer,
        )
        return sample


class VerifyStage:
    """Checks the text against ROI geometry and metadata; a contradiction is quarantined unless kept."""

    name = "verify"

    def __init__(self, on_contradiction: str) -> None:
        self.on_contradiction = on_contradiction

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.describe.verify import verify

        sample.checks = verify(sample)
        failed = [c for c in sample.checks if not c.ok]
        if failed and self.on_contradiction == "quarantine":
            raise StageError("description contradicts the record: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))
        return sample


class EncodeStage:
    """The stored image: PNG of exactly the pixels the describer saw (never an overlay)."""

    name = "encode"

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.sources.imaging import encode_png

        sample.image_bytes = encode_png(sample.pixels)
        return sample


def build_stages(config: BuildConfig) -> list[Callable]:
    return [
        ReadStage(), LocateStage(), CaptionStage(), RetrieveStage(config.kb, config.top_k),
        DescribeStage(config.describer), VerifyStage(config.on_contradiction), EncodeStage(),
    ]
