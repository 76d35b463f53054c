"""The sam adapter on a tiny randomly initialised SAM built here, saved as a state dict and loaded back."""

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from segment_anything import SamPredictor  # noqa: E402
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer,
)

from medtrinity.errors import UserError  # noqa: E402
from medtrinity.roi.experts import get_expert  # noqa: E402

# 64 px input, 16 px patches (a 4x4 embedding), 1-deep encoder and decoder, 32/16 wide: a few thousand weights
TINY = dict(
    encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=[0], image_size=64,
    patch_size=16, window_size=0, prompt_embed_dim=16, mask_in_chans=4, decoder_depth=1, decoder_mlp_dim=32,
    decoder_num_heads=2, iou_head_depth=1, iou_head_hidden_dim=16,
)


def tiny_sam(seed: int) -> Sam:
    torch.manual_seed(seed)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=4, out_chans=16,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=0, global_attn_indexes=(0,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=16, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=16, num_multimask_outputs=3, iou_head_depth=1, iou_head_hidden_dim=16,
            transformer=TwoWayTransformer(depth=1, embedding_dim=16, mlp_dim=32, num_heads=2),
        ),
    )
    return sam.eval()


def image():
    rows, cols = np.mgrid[:80, :96]
    blob = (rows - 40) ** 2 / 20**2 + (cols - 50) ** 2 / 26**2 <= 1
    return np.where(blob, 200, 40).astype(np.uint8)


def reference(sam: Sam, pixels: np.ndarray, box) -> tuple[np.ndarray, float]:
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
    assert mask.any()  # seed 3 gives a non-empty mask, so the comparison says something
    assert np.array_equal(region.mask, mask)
    assert region.label == "blob" and region.source == "expert:sam@tiny"
    assert region.score == round(min(1.0, max(0.0, iou)), 3)


def test_default_prompt_is_the_foreground_box_and_the_record_label(checkpoint):
    sam, path = checkpoint
    pixels = image()
    (region,) = get_expert("sam", model=str(path), architecture=TINY).locate(pixels, "Other", None, ["mass"])
    (foreground,) = get_expert("foreground").locate(pixels, "Other", None, [])
    mask, _ = reference(sam, pixels, foreground.bbox)
    assert foreground.bbox == (24.0, 20.0, 77.0, 61.0)
    assert region.label == "mass" and np.array_equal(region.mask, mask)
    assert region.source.startswith("expert:sam@tiny_sam-")


def test_a_checkpoint_of_another_architecture_is_a_user_error(checkpoint):
    _, path = checkpoint
    with pytest.raises(UserError, match="does not fit"):
        get_expert("sam", model=str(path), architecture={**TINY, "encoder_embed_dim": 48})
    with pytest.raises(UserError, match="does not exist"):
        get_expert("sam", model=str(path.with_name("absent.pth")))
    with pytest.raises(UserError, match="unknown architecture keys"):
        get_expert("sam", model=str(path), architecture={"depth": 1})
