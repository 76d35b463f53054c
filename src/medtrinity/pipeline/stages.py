"""The stages of a build, in order: read → locate → caption → retrieve → describe → verify → encode.

Each stage is a small callable with a `name`; it takes the record and returns it filled in, or raises
StageError with a reason a person understands. Stages know nothing of executors (local pool or Ray):
they are built from the BuildConfig inside each worker by `build_stages`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from medtrinity.errors import StageError, TransientError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.store import ShardStore
from medtrinity.records import Check, Description, Origin, Sample, image_extension
from medtrinity.sources.base import SourceItem


class ReadStage:
    """SourceItem → Sample with pixels, geometry and the source's own regions."""

    name = "read"

    def __call__(self, item: SourceItem) -> Sample:
        from medtrinity.sources.annotations import SourceProblem
        from medtrinity.sources.imaging import read_image
        from medtrinity.sources.label_kinds import kinds_of

        problem = next((a for a in item.annotations if isinstance(a, SourceProblem)), None)
        if problem is not None:
            raise StageError(problem.reason)  # the source's own entry is broken: say so, not "file missing"
        own_reader = getattr(item, "read_image", None)
        if own_reader is not None:  # pixels that are no file of their own (a Parquet cell, a tar.zst member)
            image = own_reader()
        else:
            if item.path.is_dir():  # a folder named like an image: listed so that it is counted, not skipped
                raise StageError(f"{item.file} is a directory, not an image file")
            if not item.path.is_file():
                broken = item.path.is_symlink()
                raise StageError(f"image file {item.file} is {'a broken symbolic link' if broken else 'missing'}")
            image = read_image(item.path, frame=item.frame, window=item.window, slice_index=item.slice, axis=item.axis)
        modality = item.modality or image.modality_hint
        if modality is None:
            raise StageError(f"{item.file}: the modality is unknown (the recipe sets none and the file does not say)")
        height, width = image.pixels.shape[:2]
        patient_left = item.patient_left_on_image or image.patient_left_on_image
        return Sample(
            id=item.id,
            source=item.source,
            split=item.split,
            modality=modality,
            organ=item.organ or image.body_part,
            disease=item.disease,
            labels=list(item.labels),
            label_kinds=kinds_of(item.labels, item.label_kinds, item.disease),
            reference_text=item.reference_text,
            width=width,
            height=height,
            pixels=image.pixels,
            origin=Origin(
                file=item.file,
                slice=item.slice,
                axis=item.axis,
                frame=item.frame,
                spacing=image.spacing,
                orientation=item.orientation or image.orientation,
                intensity=image.intensity,
                patient_left_on_image=patient_left,
                # a compiled dataset's own id and source name for the image (items of its layout carry them)
                source_id=getattr(item, "source_id", None),
                source_dataset=getattr(item, "source_dataset", None),
            ),
            patient_left_on_image=patient_left,
            expert=item.expert,
            item=item,
        )


class BurnedInTextStage:
    """Text burned into the pixels (site, patient name or ID, dates) found and blacked out, right after read,
    so that the stored image and everything later stages and the describer see are without it. The boxes go
    into origin.redacted; the text itself is never read. Policy (`--pixel-phi`): None redacts where text is
    expected (DICOM marked BurnedInAnnotation or of modality US/SC/XC/OT; recipes with burned_in_text),
    "redact" on every image, "quarantine" quarantines every image that shows text; with "keep" the stage is
    not built."""

    name = "burned-in-text"

    def __init__(self, policy: str | None = None) -> None:
        self.policy = policy

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.sources.pixel_text import (
            dicom_expects_text,
            find_text_lines,
            redact,
            redaction_boxes,
        )

        item: SourceItem | None = sample.item
        if self.policy is None and not (item is not None and (item.burned_in_text or dicom_expects_text(item.path))):
            return sample
        lines = find_text_lines(sample.pixels)
        if not lines:
            return sample
        if self.policy == "quarantine":
            raise StageError(
                f"text burned into the image in {len(lines)} place{'s' if len(lines) > 1 else ''} "
                "(--pixel-phi quarantine)"
            )
        boxes = redaction_boxes(lines, sample.width, sample.height)
        sample.pixels = redact(sample.pixels, boxes)
        sample.origin.redacted = boxes
        return sample


class LocateStage:
    """Regions from the source's annotations, and an expert's where the source gives none (or, in
    "add" mode, beside them). The build config's `expert` / `expert_mode` override the recipe's."""

    name = "locate"

    def __init__(
        self, expert: str | dict | None = None, expert_mode: str | None = None, experts: dict[str, dict] | None = None
    ) -> None:
        self.expert, self.expert_mode = expert, expert_mode
        self.experts = experts or {}  # the build config's per-expert options, over the recipe's
        self._experts: dict[str, object] = {}  # one instance per expert and options: models load once

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.roi.experts.base import merge_expert_regions
        from medtrinity.roi.geometry import rois_from_region

        item: SourceItem = sample.item
        shape = (sample.height, sample.width)
        source = [r for ann in item.annotations for r in ann.resolve(Path(item.root), item, shape)]
        choice = self.expert if self.expert is not None else sample.expert
        mode = self.expert_mode or item.expert_mode
        found = (
            self._run_expert(sample, choice, item.expert_options) if choice and (mode == "add" or not source) else []
        )
        sample.regions = merge_expert_regions(source, found, mode)
        sample.rois = []
        for region in sample.regions:
            rois = rois_from_region(region, sample.width, sample.height)
            for roi in rois:
                roi.kind = self._kind(region, sample)
                sample.label_kinds.setdefault(roi.label, roi.kind)  # a source label keeps its own kind
            sample.rois += rois
        return sample

    @staticmethod
    def _kind(region, sample: Sample) -> str:
        """What an ROI's label means: the expert's statement, else the record's kinds (sources/label_kinds.py)."""
        from medtrinity.sources.label_kinds import kind_of

        if region.kind is not None:
            return region.kind
        item: SourceItem | None = sample.item
        declared = {**(item.label_kinds if item is not None else {}), **sample.label_kinds}
        return kind_of(region.label, declared, sample.disease)

    def _expert(self, name: str, options: dict):
        from medtrinity.roi.experts.base import get_expert

        key = json.dumps([name, options], sort_keys=True, default=str)
        if key not in self._experts:
            self._experts[key] = get_expert(name, **options)
        return self._experts[key]

    def _run_expert(self, sample: Sample, choice, recipe_options: dict):
        from medtrinity.roi.experts.base import FALLBACK_EXPERT, options_for, resolve_expert_choice

        view = (sample.origin.orientation or "").split(";")[0].strip() or None  # "PA; rows L, columns F" -> PA
        name = resolve_expert_choice(choice, sample.modality, sample.organ, view)
        if name is None:
            return []
        args = (sample.pixels, sample.modality, sample.organ, sample.labels)
        regions = self._expert(name, options_for(name, recipe_options, self.experts)).locate(*args)
        if not regions and name != FALLBACK_EXPERT:  # nothing specific found: the main object, as the paper does
            fallback = options_for(FALLBACK_EXPERT, recipe_options, self.experts)
            regions = self._expert(FALLBACK_EXPERT, fallback).locate(*args)
        return regions


class CaptionStage:
    name = "caption"

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.caption import coarse_caption

        # The source's own region labels count as what the source states (SLAKE's boxes name its lesions).
        labels = list(dict.fromkeys([*sample.labels, *(r.label for r in sample.rois if r.source == "annotation")]))
        sample.coarse_caption = coarse_caption(
            sample.modality, sample.organ, sample.disease, labels, sample.label_kinds
        )
        return sample


class RetrieveStage:
    name = "retrieve"

    def __init__(self, kb: str | None, top_k: int) -> None:
        from medtrinity.knowledge.hybrid import open_kb

        self.index = open_kb(kb)
        self.top_k = top_k

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.knowledge.query import build_query

        # The source's own labels only: an expert's generic names ("focal region", "foreground") would pull
        # passages about whatever else such regions appear in.
        labels = sorted({r.label for r in sample.rois if r.source == "annotation"} | set(sample.labels))
        query = build_query(sample.coarse_caption, labels, sample.disease, sample.organ, sample.modality)
        sample.knowledge = self.index.search(query, k=self.top_k) if self.top_k else []
        return sample


def describer_options(config: BuildConfig) -> dict:
    """The options a describer backend is built with, from the build config."""
    cache_dir = str(ShardStore(config.out).cache_dir)
    if config.describer == "openai":
        return {
            "model": config.model,
            "base_url": config.base_url,
            "api_key_env": config.api_key_env,
            "concurrency": config.concurrency,
            "overlay": config.overlay,
            "cache_dir": cache_dir,
            "timeout": config.request_timeout,
            "max_attempts": config.max_attempts,
            "backoff": config.retry_backoff,
            "max_tokens": config.max_tokens,
            "structured_output": config.structured_output,
            "max_image_side": config.max_image_side,
        }
    if config.describer == "transformers":
        return {
            "model": config.model,
            "overlay": config.overlay,
            "cache_dir": cache_dir,
            "max_new_tokens": config.max_tokens,
        }
    return {}


def _apply(sample: Sample, description: Description) -> Sample:
    sample.attributes, sample.description, sample.describer, sample.claims = (
        description.attributes,
        description.text,
        description.describer,
        description.claims,
    )
    return sample


def _contradiction(failed: list[Check]) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in failed)


class DescribeStage:
    name = "describe"

    def __init__(self, describer: str, options: dict | None = None) -> None:
        from medtrinity.describe.base import get_describer

        self.describer = get_describer(describer, **(options or {}))
        # A backend that works on many records at once (a model client) gets whole batches; the others go
        # through the runner's per-record path, which also logs unexpected errors.
        if hasattr(self.describer, "describe_batch"):
            self.process_batch = self._describe_batch
        self.batch_size: int | None = getattr(self.describer, "batch_size", None)

    def __call__(self, sample: Sample) -> Sample:
        return _apply(sample, self.describer.describe(sample))

    def _describe_batch(self, samples: list[Sample]) -> list:
        results = self.describer.describe_batch(samples)
        return [r if isinstance(r, BaseException) else _apply(s, r) for s, r in zip(samples, results, strict=True)]

    def usage(self) -> dict[str, int] | None:
        """The backend's running totals (requests, cache hits, retries, tokens), if it keeps any."""
        usage = getattr(self.describer, "usage", None)
        return usage.as_dict() if usage is not None else None


class VerifyStage:
    """Checks the text against ROI geometry and metadata, then applies the contradiction policy.

    repair: a describer that can (`repair_batch`) is asked once more with the failed checks named; the new
    answer is verified again and quarantined if it still contradicts. A deterministic describer would only
    repeat itself, so for it repair is quarantine. keep: the record is written with its failed checks.
    """

    name = "verify"

    def __init__(self, on_contradiction: str, describer=None) -> None:
        self.on_contradiction = on_contradiction
        self.describer = describer
        if on_contradiction == "repair" and hasattr(describer, "repair_batch"):
            self.process_batch = self._verify_and_repair

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.describe.verify import verify

        sample.checks = verify(sample)
        failed = [c for c in sample.checks if not c.ok]
        if failed and self.on_contradiction != "keep":
            raise StageError("description contradicts the record: " + _contradiction(failed))
        return sample

    def _verify_and_repair(self, samples: list[Sample]) -> list:
        from medtrinity.describe.verify import verify

        outputs: list = [None] * len(samples)
        to_repair: list[tuple[int, list[Check]]] = []
        for i, sample in enumerate(samples):
            try:
                sample.checks = verify(sample)
            except Exception as err:  # a verifier bug must not lose the batch
                outputs[i] = err
                continue
            failed = [c for c in sample.checks if not c.ok]
            if failed:
                to_repair.append((i, failed))
            else:
                outputs[i] = sample
        if not to_repair:
            return outputs
        answers = self.describer.repair_batch([(samples[i], failed) for i, failed in to_repair])
        for (i, failed), answer in zip(to_repair, answers, strict=True):
            sample = samples[i]
            if isinstance(answer, BaseException):
                # a repair lost to an unreachable server may succeed later: it stays transient
                failure = TransientError if isinstance(answer, TransientError) else StageError
                outputs[i] = failure(
                    f"description contradicts the record ({_contradiction(failed)}) and the repair request failed: {answer}"
                )
                continue
            _apply(sample, answer)
            sample.checks = verify(sample)
            still = [c for c in sample.checks if not c.ok]
            outputs[i] = (
                StageError("description still contradicts the record after one repair: " + _contradiction(still))
                if still
                else sample
            )
        return outputs


class EncodeStage:
    """The stored image: exactly the pixels the describer saw (never an overlay). A JPEG read as stored
    keeps its own bytes (the same pixels, without a PNG three times its size); anything else is PNG."""

    name = "encode"

    def __call__(self, sample: Sample) -> Sample:
        from medtrinity.image_codec import encode_png

        item: SourceItem | None = sample.item
        if (
            item is not None
            and item.frame is None
            and item.path.suffix.lower() in (".jpg", ".jpeg")
            and (sample.origin.intensity or "").endswith("as stored")
            and not sample.origin.redacted
        ):
            data = item.path.read_bytes()
            if image_extension(data) == "jpg":
                sample.image_bytes = data
                return sample
        if sample.image_bytes is None:  # a model describer may have encoded this PNG already, to send it
            sample.image_bytes = encode_png(sample.pixels)
        return sample


def build_stages(config: BuildConfig) -> list[Callable]:
    from medtrinity.describe.reference_audit import ReferenceAuditStage  # a source's own caption, audited

    describe = DescribeStage(config.describer, describer_options(config))
    text = [BurnedInTextStage(config.pixel_phi)] if config.pixel_phi != "keep" else []
    return [
        ReadStage(),
        *text,
        LocateStage(config.expert, config.expert_mode, config.experts),
        CaptionStage(),
        RetrieveStage(config.kb, config.top_k),
        describe,
        VerifyStage(config.on_contradiction, describe.describer),
        ReferenceAuditStage(),
        EncodeStage(),
    ]
