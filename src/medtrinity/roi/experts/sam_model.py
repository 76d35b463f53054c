"""Adapter: a SAM or MedSAM checkpoint on the user's disk, run with `segment-anything`'s network and a box prompt.

    expert: sam
    expert_options:
      checkpoint: /models/medsam_vit_b.pth   # local state dict; never downloaded (`model:` is accepted too)
      model_type: vit_b                 # vit_b (SAM-B, MedSAM) | vit_l | vit_h; or `architecture` for others
      prompt: foreground                # box when the record has none: foreground (main object) | image
      label: lesion                     # region label; default: the record's first label, else "object"

The network is built here from the architecture (the `segment_anything` builders fix it to full size and
read the file themselves) and the state dict is loaded strictly, so a checkpoint of another size is an
error, not a silent mismatch. A MedSAM file that wraps its weights under "model" is unwrapped. Each box
prompt gives the best of SAM's three candidate masks (its own predicted IoU is the region's score).

Only `segment_anything.modeling` is used, loaded under an alias of its own: the package's `__init__` imports
`SamPredictor`, whose transforms import torchvision, and PyPI's torchvision does not install beside the CPU
torch this project pins. The predictor's inference (resize, normalise, encode, decode) is redone here with
the same math; the test checks it against `SamPredictor` wherever torchvision is importable.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field

import numpy as np

from medtrinity import records
from medtrinity.errors import UserError
from medtrinity.roi.experts import local_model, ops
from medtrinity.roi.experts.base import (
    ExpertOptions,
    check_pixels,
    expert_source,
    get_expert,
    register_expert,
)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels (x1/y1 exclusive)


@dataclass(frozen=True)
class SamArchitecture:
    """The sizes `segment_anything.build_sam._build_sam` hard-codes, made explicit."""

    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)


PRESETS: dict[str, SamArchitecture] = {
    "vit_b": SamArchitecture(),
    "vit_l": SamArchitecture(
        encoder_embed_dim=1024, encoder_depth=24, encoder_num_heads=16, encoder_global_attn_indexes=(5, 11, 17, 23)
    ),
    "vit_h": SamArchitecture(
        encoder_embed_dim=1280, encoder_depth=32, encoder_num_heads=16, encoder_global_attn_indexes=(7, 15, 23, 31)
    ),
}


def architecture_for(model_type: str, overrides: Mapping[str, Any] | None) -> SamArchitecture:
    if model_type not in PRESETS:
        raise UserError(f"expert sam: model_type must be one of {sorted(PRESETS)}, got {model_type!r}")
    known = set(asdict(PRESETS[model_type]))
    unknown = set(overrides or {}) - known
    if unknown:
        raise UserError(f"expert sam: unknown architecture keys {sorted(unknown)}; known: {sorted(known)}")
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in (overrides or {}).items()}
    return replace(PRESETS[model_type], **values)


MODELING_ALIAS = "_medtrinity_sam_modeling"  # sys.modules name of segment_anything/modeling loaded alone


def sam_modeling() -> ModuleType:
    """`segment_anything.modeling` (Sam, ImageEncoderViT, ...) without running `segment_anything/__init__`.

    The modeling folder imports only torch and its own siblings (relatively), so it loads as a package of
    its own; `find_spec` of the top-level package locates it on disk without executing it.
    """
    loaded = sys.modules.get(MODELING_ALIAS)
    if loaded is not None:
        return loaded
    local_model.optional_import("torch", "sam", "sam")
    package = importlib.util.find_spec("segment_anything")
    if package is None or not package.submodule_search_locations:
        raise UserError("expert sam needs the `segment_anything` package: pip install 'medtrinity[sam]'")
    folder = Path(next(iter(package.submodule_search_locations))) / "modeling"
    spec = importlib.util.spec_from_file_location(
        MODELING_ALIAS, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None or not folder.is_dir():
        raise UserError(f"expert sam: no segment_anything/modeling under {folder.parent}; reinstall medtrinity[sam]")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODELING_ALIAS] = module  # before exec: its relative imports look the parent up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [name for name in sys.modules if name == MODELING_ALIAS or name.startswith(MODELING_ALIAS + ".")]:
            del sys.modules[name]
        raise
    return module


def build_sam(arch: SamArchitecture):
    """An untrained `segment_anything.modeling.Sam` of this architecture, in eval mode."""
    from functools import partial

    import torch

    modeling = sam_modeling()
    ImageEncoderViT, MaskDecoder, PromptEncoder = modeling.ImageEncoderViT, modeling.MaskDecoder, modeling.PromptEncoder
    Sam, TwoWayTransformer = modeling.Sam, modeling.TwoWayTransformer
    embedding = arch.image_size // arch.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=arch.encoder_depth,
            embed_dim=arch.encoder_embed_dim,
            img_size=arch.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.encoder_num_heads,
            patch_size=arch.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.encoder_global_attn_indexes,
            window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(embedding, embedding),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=arch.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_num_heads,
            ),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=arch.iou_head_depth,
            iou_head_hidden_dim=arch.iou_head_hidden_dim,
        ),
        pixel_mean=list(arch.pixel_mean),
        pixel_std=list(arch.pixel_std),
    )
    return sam.eval()


def load_sam(file, arch: SamArchitecture):
    import torch

    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # training checkpoints (MedSAM) wrap the weights
    sam = build_sam(arch)
    try:
        sam.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise UserError(
            f"expert sam: {file} does not fit the {arch.encoder_embed_dim}-wide, {arch.encoder_depth}-deep "
            f"architecture asked for (set model_type or architecture): {str(error)[:300]}"
        ) from error
    return sam


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) with the longest side scaled to `long_side`, rounded as `ResizeLongestSide` does."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """ResizeLongestSide.apply_image: torchvision's resize of a PIL image is PIL's (antialiased) bilinear."""
    from PIL import Image

    height, width = preprocess_shape(rgb.shape[0], rgb.shape[1], long_side)
    return np.array(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


def scale_box(box: Box, original_size: tuple[int, int], long_side: int) -> np.ndarray:
    """ResizeLongestSide.apply_boxes: the box in the resized image's pixels, as a 1x4 float array."""
    new_height, new_width = preprocess_shape(original_size[0], original_size[1], long_side)
    corners = np.asarray(box, dtype=np.float64).reshape(2, 2)
    corners[:, 0] *= new_width / original_size[1]
    corners[:, 1] *= new_height / original_size[0]
    return corners.reshape(1, 4)


@dataclass(frozen=True)
class EncodedImage:
    """SAM's image embedding and the two sizes its masks are mapped back through."""

    features: Any  # torch.Tensor 1xCxhxw
    input_size: tuple[int, int]  # resized, before padding
    original_size: tuple[int, int]


def encode_image(model, rgb: np.ndarray) -> EncodedImage:
    """SamPredictor.set_image: resize, normalise and pad (`model.preprocess`), run the image encoder."""
    import torch

    if model.image_format == "BGR":
        rgb = rgb[..., ::-1]
    resized = resize_longest_side(np.ascontiguousarray(rgb), model.image_encoder.img_size)
    tensor = torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None]
    with torch.inference_mode():
        features = model.image_encoder(model.preprocess(tensor))
    return EncodedImage(features, (resized.shape[0], resized.shape[1]), (rgb.shape[0], rgb.shape[1]))


def predict_box(model, image: EncodedImage, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """SamPredictor.predict(box=..., multimask_output=True): 3xHxW boolean masks and their predicted IoUs."""
    import torch

    scaled = scale_box(box, image.original_size, model.image_encoder.img_size)
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(
            points=None, boxes=torch.as_tensor(scaled, dtype=torch.float)[None], masks=None
        )
        low_res, ious = model.mask_decoder(
            image_embeddings=image.features,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        masks = model.postprocess_masks(low_res, image.input_size, image.original_size) > model.mask_threshold
    return masks[0].numpy(), ious[0].numpy()


class SamOptions(ExpertOptions):
    checkpoint: str | None = local_model.checkpoint_field()
    model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    architecture: dict[str, Any] | None = None  # SamArchitecture fields that differ from model_type's
    prompt: Literal["foreground", "image"] = "foreground"
    label: str | None = None
    version: str | None = None
    threads: int = Field(1, ge=1)


@register_expert
class SamExpert:
    name = "sam"
    version = "unset"
    Options = SamOptions
    weights_option = "checkpoint"

    def __init__(
        self,
        checkpoint: str | None = None,
        model_type: str = "vit_b",
        architecture: Mapping[str, Any] | None = None,
        prompt: str = "foreground",
        label: str | None = None,
        version: str | None = None,
        threads: int = 1,
        model: str | None = None,  # the former name of `checkpoint`
    ) -> None:
        if prompt not in ("foreground", "image"):
            raise UserError(f"expert sam: prompt must be foreground or image, got {prompt!r}")
        file = local_model.local_weights(checkpoint or model, self.name)
        torch = local_model.optional_import("torch", self.name, "sam")
        torch.set_num_threads(threads)
        self.model = load_sam(file, architecture_for(model_type, architecture))
        self.prompt, self.label = prompt, label
        self.version = local_model.weights_version(file, version)

    @property
    def source(self) -> str:
        return expert_source(self.name, self.version)

    def default_box(self, pixels: np.ndarray, modality: str, organ: str | None) -> Box:
        """The whole image, or the main foreground object's box when asked and one stands out."""
        height, width = pixels.shape[:2]
        if self.prompt == "foreground":
            found = get_expert("foreground").locate(pixels, modality, organ, [])
            if found and found[0].bbox is not None:
                return found[0].bbox
        return (0.0, 0.0, float(width), float(height))

    def locate(
        self,
        pixels: np.ndarray,
        modality: str,
        organ: str | None,
        labels: list[str],
        boxes: Sequence[tuple[str, Box]] | None = None,
    ) -> list[records.Region]:
        """Regions for each (label, box) prompt; without prompts one box: the foreground's or the image's."""
        check_pixels(pixels, self.name)
        if not boxes:
            default_label = self.label or (labels[0] if labels else "object")
            boxes = [(default_label, self.default_box(pixels, modality, organ))]
        rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
        image = encode_image(self.model, rgb)
        found = []
        for label, box in boxes:
            masks, ious = predict_box(self.model, image, box)
            best = int(np.argmax(ious))
            if masks[best].any():
                found.append(ops.make_region(masks[best], label, float(ious[best]), self.source))
        return found
