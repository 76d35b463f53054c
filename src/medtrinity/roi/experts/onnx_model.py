"""Adapter: any ONNX segmentation model on the user's disk, run through onnxruntime (CPU).

The recipe or config describes the model's input and output, as no ONNX file says how it was trained:

    expert: onnx
    expert_options:
      checkpoint: /models/lesion-unet.onnx   # local file; never downloaded (`model:` is accepted too)
      input_name: input                 # default: the model's first input
      output_name: logits               # default: the model's first output
      size: [256, 256]                  # input height, width; default: the model's fixed size, else the image's
      channels: rgb                     # rgb | bgr | gray: channel order (and count) the model expects
      layout: nchw                      # nchw | nhwc
      scale: 0.00392156862745098        # pixels are multiplied by this first (1/255: to [0, 1])
      mean: [0.485, 0.456, 0.406]       # then (x - mean) / std, per channel
      std: [0.229, 0.224, 0.225]
      output: logits                    # logits | probabilities | mask
      class_names: [background, lesion]
      background: 0                     # index of the background class (logits/probabilities), or null
      threshold: 0.5                    # one-channel outputs: probability (after sigmoid for logits) or mask value

Output kinds: `logits` or `probabilities` of shape [1, C, H, W] (C x H x W, or H x W x C with layout nhwc);
with C > 1 each pixel takes its most likely class (softmax over logits) and every class but the background
that wins somewhere is one region, scored by its mean probability there; with C = 1 the channel is the
object's logit (sigmoid) or probability, thresholded. `mask` is one channel compared with `threshold` as is.
Scores are resized to the image (bilinear) before any threshold or argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

import numpy as np

from medtrinity import records
from medtrinity.errors import StageError, UserError
from medtrinity.roi.experts import local_model, ops
from medtrinity.roi.experts.base import ExpertOptions, check_pixels, expert_source, register_expert

CHANNELS = {"rgb": 3, "bgr": 3, "gray": 1}
OUTPUTS = ("logits", "probabilities", "mask")


def _pair(size: Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or any(int(side) < 1 for side in size):
        raise UserError(f"expert onnx: size must be [height, width], got {size!r}")
    return int(size[0]), int(size[1])


def _per_channel(values: float | Sequence[float], count: int, what: str) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float32))
    if array.size == 1:
        array = np.repeat(array, count)
    if array.size != count:
        raise UserError(f"expert onnx: {what} needs 1 or {count} values for {count} channels, got {array.size}")
    return array


class OnnxOptions(ExpertOptions):
    checkpoint: str | None = local_model.checkpoint_field()
    input_name: str | None = None
    output_name: str | None = None
    size: list[int] | None = Field(None, min_length=2, max_length=2)  # [height, width]
    channels: Literal["rgb", "bgr", "gray"] = "rgb"
    layout: Literal["nchw", "nhwc"] = "nchw"
    scale: float = 1 / 255
    mean: float | list[float] = 0.0
    std: float | list[float] = 1.0
    output: Literal["logits", "probabilities", "mask"] = "logits"
    class_names: list[str] | None = None
    background: int | None = 0
    threshold: float = 0.5
    version: str | None = None
    threads: int = Field(1, ge=1)


@register_expert
class OnnxExpert:
    name = "onnx"
    version = "unset"
    Options = OnnxOptions
    weights_option = "checkpoint"

    def __init__(
        self,
        checkpoint: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        size: Sequence[int] | None = None,
        channels: str = "rgb",
        layout: str = "nchw",
        scale: float = 1 / 255,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        output: str = "logits",
        class_names: Sequence[str] | None = None,
        background: int | None = 0,
        threshold: float = 0.5,
        version: str | None = None,
        threads: int = 1,
        model: str | None = None,  # the former name of `checkpoint`
    ) -> None:
        if channels not in CHANNELS or layout not in ("nchw", "nhwc") or output not in OUTPUTS:
            raise UserError(
                f"expert onnx: channels must be one of {sorted(CHANNELS)}, layout nchw or nhwc, output one of "
                f"{list(OUTPUTS)}; got {channels!r}, {layout!r}, {output!r}"
            )
        file = local_model.local_weights(checkpoint or model, self.name)
        ort = local_model.optional_import("onnxruntime", self.name, "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for a bad graph
            raise UserError(f"expert onnx: cannot load {file}: {error}") from error
        inputs = {node.name: node for node in self.session.get_inputs()}
        outputs = [node.name for node in self.session.get_outputs()]
        self.input_name = input_name or next(iter(inputs))
        self.output_name = output_name or outputs[0]
        if self.input_name not in inputs or self.output_name not in outputs:
            raise UserError(
                f"expert onnx: {file.name} has inputs {list(inputs)} and outputs {outputs}; "
                f"asked for input {self.input_name!r} and output {self.output_name!r}"
            )
        self.channels, self.layout, self.output = channels, layout, output
        self.size = _pair(size) or self._fixed_size(inputs[self.input_name].shape)
        count = CHANNELS[channels]
        self.scale = float(scale)
        self.mean, self.std = _per_channel(mean, count, "mean"), _per_channel(std, count, "std")
        if np.any(self.std == 0):
            raise UserError("expert onnx: std must not be 0")
        self.class_names = list(class_names) if class_names else None
        self.background, self.threshold = background, float(threshold)
        self.version = local_model.weights_version(file, version)

    def _fixed_size(self, shape: Sequence[Any]) -> tuple[int, int] | None:
        """The model's own input height and width when its graph fixes them (ints, not symbolic names)."""
        dims = list(shape)[2:4] if self.layout == "nchw" else list(shape)[1:3]
        return (dims[0], dims[1]) if len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims) else None

    @property
    def source(self) -> str:
        return expert_source(self.name, self.version)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """The image as the model wants it: resized, channel-ordered, normalised, batched."""
        if self.channels == "gray":
            image = ops.to_gray(pixels)[..., None] * 255.0
        else:
            image = ops.to_rgb(pixels) * 255.0  # float RGB 0..255
            if self.channels == "bgr":
                image = image[..., ::-1]
        if self.size is not None and image.shape[:2] != self.size:
            from skimage.transform import resize

            image = resize(image, (*self.size, image.shape[2]), order=1, preserve_range=True, anti_aliasing=True)
        values = ((image * self.scale - self.mean) / self.std).astype(np.float32)
        batch = values[None]  # 1 x H x W x C
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if self.layout == "nchw" else batch)

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """The model's output as a C x H x W float map at the image's size."""
        (raw,) = self.session.run([self.output_name], {self.input_name: self.model_input(pixels)})
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 4:
            if raw.shape[0] != 1:
                raise StageError(f"expert onnx: output batch of {raw.shape[0]} for one image")
            raw = raw[0] if self.layout == "nchw" else raw[0].transpose(2, 0, 1)
        elif raw.ndim == 3 and self.layout == "nhwc" and raw.shape[0] != 1:
            raw = raw.transpose(2, 0, 1)
        elif raw.ndim == 2:
            raw = raw[None]
        if raw.ndim != 3:
            raise StageError(f"expert onnx: output {self.output_name!r} has shape {raw.shape}, not a 2D map")
        return local_model.resize_scores(raw.astype(np.float64), pixels.shape[:2])

    def class_name(self, index: int) -> str:
        if self.class_names is None:
            return f"class {index}"
        if index >= len(self.class_names):
            raise UserError(f"expert onnx: the model gives class {index} but class_names has {len(self.class_names)}")
        return self.class_names[index]

    def object_name(self, labels: list[str]) -> str:
        """A one-channel model's object: the last class name given, else the record's label, else "object"."""
        if self.class_names:
            return self.class_names[-1]
        return labels[0] if labels else "object"

    def locate(self, pixels: np.ndarray, modality: str, organ: str | None, labels: list[str]) -> list[records.Region]:
        check_pixels(pixels, self.name)
        scores = self.scores(pixels)
        if scores.shape[0] == 1:
            return self._one_channel(scores[0], list(labels))
        probabilities = scores if self.output != "logits" else _softmax(scores)
        winner = probabilities.argmax(axis=0)
        found = []
        for index in range(probabilities.shape[0]):
            mask = winner == index
            if index == self.background or not mask.any():
                continue
            score = float(probabilities[index][mask].mean())
            found.append(ops.make_region(mask, self.class_name(index), score, self.source))
        return found

    def _one_channel(self, channel: np.ndarray, labels: list[str]) -> list[records.Region]:
        values = 1.0 / (1.0 + np.exp(-channel)) if self.output == "logits" else channel
        mask = values > self.threshold
        if not mask.any():
            return []
        score = float(np.clip(values[mask].mean(), 0, 1)) if self.output != "mask" else 1.0
        return [ops.make_region(mask, self.object_name(labels), score, self.source)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)
