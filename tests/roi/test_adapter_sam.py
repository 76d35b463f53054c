"""The sam adapter on a tiny randomly initialised SAM built here, saved as a state dict and loaded back.

The network comes from `segment_anything/modeling` loaded alone (the package __init__ needs torchvision,
which CI lacks). The adapter's masks are checked against SAM's inference written out step by step below,
and also against `SamPredictor` itself wherever torchvision is importable.
"""

import importlib.util
import sys
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("segment_anything") is None:  # find_spec: importing it would need torchvision
    pytest.skip("segment_anything is not installed", allow_module_level=True)

from medtrinity.errors import UserError  # noqa: E402 (only once segment_anything is known)
from medtrinity.roi.experts import get_expert, sam_model  # noqa: E402

modeling = sam_model.sam_modeling()
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None

# 64 px input, 16 px patches (a 4x4 embedding), 1-deep encoder and decoder, 32/16 wide: a few thousand weights
TINY = {
    "encoder_embed_dim": 32,
    "encoder_depth": 1,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": [0],
    "image_size": 64,
    "patch_size": 16,
    "window_size": 0,
    "prompt_embed_dim": 16,
    "mask_in_chans": 4,
    "decoder_depth": 1,
    "decoder_mlp_dim": 32,
    "decoder_num_heads": 2,
    "iou_head_depth": 1,
    "iou_head_hidden_dim": 16,
}


def tiny_sam(seed: int):
    torch.manual_seed(seed)
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=64,
            patch_size=16,
            embed_dim=32,
            depth=1,
            num_heads=2,
            mlp_ratio=4,
            out_chans=16,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=0,
            global_attn_indexes=(0,),
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=16, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=4
        ),
        mask_decoder=modeling.MaskDecoder(
            transformer_dim=16,
            num_multimask_outputs=3,
            iou_head_depth=1,
            iou_head_hidden_dim=16,
            transformer=modeling.TwoWayTransformer(depth=1, embedding_dim=16, mlp_dim=32, num_heads=2),
        ),
    )
    return sam.eval()


def image():
    rows, cols = np.mgrid[:80, :96]
    blob = (rows - 40) ** 2 / 20**2 + (cols - 50) ** 2 / 26**2 <= 1
    return np.where(blob, 200, 40).astype(np.uint8)


def reference(sam, pixels: np.ndarray, box) -> tuple[np.ndarray, float]:
    """SamPredictor.set_image + predict(box, multimask_output=True), written out: best mask and its IoU."""
    from PIL import Image

    rgb = np.repeat(pixels[..., None], 3, axis=2)
    assert pixels.shape == (80, 96)  # longest side 96 -> 64: 80 * 64 / 96 = 53.3 rounds to 53
    resized = np.array(Image.fromarray(rgb).resize((64, 53), Image.Resampling.BILINEAR))
    with torch.no_grad():
        features = sam.image_encoder(sam.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].contiguous()))
        scaled = torch.tensor([[box[0] * 64 / 96, box[1] * 53 / 80, box[2] * 64 / 96, box[3] * 53 / 80]])
        sparse, dense = sam.prompt_encoder(points=None, boxes=scaled[None], masks=None)
        low_res, ious = sam.mask_decoder(
            image_embeddings=features,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        masks = sam.postprocess_masks(low_res, (53, 64), (80, 96)) > sam.mask_threshold
    best = int(torch.argmax(ious[0]))
    return masks[0, best].numpy(), float(ious[0, best])


def predictor_reference(sam, pixels: np.ndarray, box) -> tuple[np.ndarray, float]:
    """The same through segment_anything's own SamPredictor (needs torchvision)."""
    from segment_anything import SamPredictor

    predictor = SamPredictor(sam)
    predictor.set_image(np.repeat(pixels[..., None], 3, axis=2))
    masks, ious, _ = predictor.predict(box=np.asarray(box, np.float32), multimask_output=True)
    best = int(np.argmax(ious))
    return masks[best], float(ious[best])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    sam = tiny_sam(seed=3)
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(sam.state_dict(), path)
    return sam, path


def test_loaded_checkpoint_gives_the_same_masks_as_the_model_it_was_saved_from(checkpoint):
    sam, path = checkpoint
    expert = get_expert("sam", model=str(path), architecture=TINY, version="tiny")
    pixels = image()
    box = (10.0, 12.0, 80.0, 70.0)
    (region,) = expert.locate(pixels, "Other", None, [], boxes=[("blob", box)])
    mask, iou = reference(sam, pixels, box)
    assert mask.any() and not mask.all()  # seed 3 gives a partial mask, so the comparison says something
    assert np.array_equal(region.mask, mask)
    assert region.label == "blob" and region.source == "expert:sam@tiny"
    assert region.score == round(min(1.0, max(0.0, iou)), 3)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="SamPredictor imports torchvision")
def test_the_inference_matches_segment_anythings_own_predictor(checkpoint):
    sam, path = checkpoint
    expert = get_expert("sam", model=str(path), architecture=TINY, version="tiny")
    pixels = image()
    for box in [(10.0, 12.0, 80.0, 70.0), (24.0, 20.0, 77.0, 61.0), (0.0, 0.0, 96.0, 80.0)]:
        mask, iou = predictor_reference(sam, pixels, box)
        found = expert.locate(pixels, "Other", None, [], boxes=[("blob", box)])
        assert [region.mask.tolist() for region in found] == ([mask.tolist()] if mask.any() else [])
        assert [region.score for region in found] == ([round(min(1.0, max(0.0, iou)), 3)] if mask.any() else [])


def test_default_prompt_is_the_foreground_box_and_the_record_label(checkpoint):
    sam, path = checkpoint
    pixels = image()
    (region,) = get_expert("sam", model=str(path), architecture=TINY).locate(pixels, "Other", None, ["mass"])
    (foreground,) = get_expert("foreground").locate(pixels, "Other", None, [])
    mask, _ = reference(sam, pixels, foreground.bbox)
    assert foreground.bbox == (24.0, 20.0, 77.0, 61.0)
    assert region.label == "mass" and np.array_equal(region.mask, mask)
    assert region.source.startswith("expert:sam@tiny_sam-")


def test_the_modeling_classes_load_without_the_segment_anything_package_init():
    assert modeling.__name__ == sam_model.MODELING_ALIAS and sam_model.sam_modeling() is modeling
    assert modeling.Sam.__module__ == f"{sam_model.MODELING_ALIAS}.sam"
    if not HAS_TORCHVISION:
        assert "segment_anything" not in sys.modules and "torchvision" not in sys.modules


def test_a_missing_segment_anything_is_a_user_error_naming_the_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "segment_anything" else real_find_spec(name, *a)
    )
    monkeypatch.delitem(sys.modules, sam_model.MODELING_ALIAS)
    with pytest.raises(UserError, match=r"medtrinity\[sam\]"):
        sam_model.sam_modeling()


def test_a_checkpoint_of_another_architecture_is_a_user_error(checkpoint):
    _, path = checkpoint
    with pytest.raises(UserError, match="does not fit"):
        get_expert("sam", model=str(path), architecture={**TINY, "encoder_embed_dim": 48})
    with pytest.raises(UserError, match="does not exist"):
        get_expert("sam", model=str(path.with_name("absent.pth")))
    with pytest.raises(UserError, match="unknown architecture keys"):
        get_expert("sam", model=str(path), architecture={"depth": 1})
