"""Adapter: a Cellpose (v4, Cellpose-SAM) model file on the user's disk: one region per cell.

    expert: cellpose
    expert_options:
      checkpoint: /models/cpsam         # a local Cellpose 4 weights file (`model:` is accepted too); model
                                        # names (cpsam...) are refused, as Cellpose would download them
      diameter: null                    # typical cell diameter in pixels; null: the model's own scale
      flow_threshold: 0.4
      cellprob_threshold: 0.0
      min_size: 15

Cellpose 4 builds a fixed ViT-L network (about 300M weights) and loads the file into it non-strictly, so a
file missing most weights would run a random network without a word: the file is checked here first to
be a complete Cellpose 4 model (its `W2` readout and its encoder). Cellpose 3 files are refused, as by
Cellpose itself. A cell's score is its mean cell probability (sigmoid of the cellprob map).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from medtrinity import records
from medtrinity.errors import UserError
from medtrinity.roi.experts import local_model, ops
from medtrinity.roi.experts.base import ExpertOptions, check_pixels, expert_source, register_expert

REQUIRED_KEYS = ("W2", "out.weight", "encoder.patch_embed.proj.weight", "encoder.neck.0.weight")
MAX_CELLS = 200  # one region per cell up to this many; past it, one "cells" region for them all


def check_cellpose_file(file) -> None:
    """A complete Cellpose 4 state dict, or a UserError saying what it is not."""
    import torch

    try:
        state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # a pickle of anything else, a truncated file
        raise UserError(f"expert cellpose: {file} is not a PyTorch weights file: {error}") from error
    keys = {key.removeprefix("module.") for key in state} if isinstance(state, dict) else set()
    missing = [key for key in REQUIRED_KEYS if key not in keys]
    if missing:
        raise UserError(f"expert cellpose: {file} is not a complete Cellpose 4 model (missing {', '.join(missing)})")


class CellposeOptions(ExpertOptions):
    checkpoint: str | None = local_model.checkpoint_field()
    diameter: float | None = Field(None, gt=0)
    flow_threshold: float = 0.4
    cellprob_threshold: float = 0.0
    min_size: int = Field(15, ge=0)
    version: str | None = None
    threads: int = Field(1, ge=1)


@register_expert
class CellposeExpert:
    name = "cellpose"
    version = "unset"
    Options = CellposeOptions
    weights_option = "checkpoint"

    def __init__(
        self,
        checkpoint: str | None = None,
        diameter: float | None = None,
        flow_threshold: float = 0.4,
        cellprob_threshold: float = 0.0,
        min_size: int = 15,
        version: str | None = None,
        threads: int = 1,
        model: str | None = None,  # the former name of `checkpoint`
    ) -> None:
        # a model name such as "cpsam" is not a file: refused (Cellpose would download it)
        file = local_model.local_weights(checkpoint or model, self.name)
        torch = local_model.optional_import("torch", self.name, "cellpose")
        models = local_model.optional_import("cellpose.models", self.name, "cellpose")
        check_cellpose_file(file)
        torch.set_num_threads(threads)
        self.model = models.CellposeModel(gpu=False, pretrained_model=str(file), use_bfloat16=False)
        self.diameter, self.min_size = diameter, min_size
        self.flow_threshold, self.cellprob_threshold = flow_threshold, cellprob_threshold
        self.version = local_model.weights_version(file, version)

    @property
    def source(self) -> str:
        return expert_source(self.name, self.version)

    def locate(self, pixels: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[records.Region]:
        check_pixels(pixels, self.name)
        masks, flows, _ = self.model.eval(
            pixels,
            diameter=self.diameter,
            flow_threshold=self.flow_threshold,
            cellprob_threshold=self.cellprob_threshold,
            min_size=self.min_size,
            channel_axis=2 if pixels.ndim == 3 else None,
        )
        regions = cell_regions(np.asarray(masks), 1.0 / (1.0 + np.exp(-np.asarray(flows[2]))), self.source)
        for region in regions:
            region.kind = "region"  # cells found by appearance, claiming no diagnosis
        return regions


def cell_regions(masks: np.ndarray, probability: np.ndarray, source: str) -> list[records.Region]:
    """Regions from a Cellpose label image (0 background, 1..n cells), largest first."""
    count = int(masks.max())
    if count == 0:
        return []
    if count > MAX_CELLS:
        cells = masks > 0
        return [ops.make_region(cells, "cells", float(probability[cells].mean()), source)]
    sizes = np.bincount(masks.ravel(), minlength=count + 1)[1:]
    found = []
    for index in np.argsort(-sizes, kind="stable") + 1:
        cell = masks == index
        if cell.any():
            found.append(ops.make_region(cell, "cell", float(probability[cell].mean()), source))
    return found
