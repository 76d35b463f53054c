"""The `transformers` describer on tiny LLaVA models built and saved here: the real AutoProcessor /
AutoModelForImageTextToText / generate path, no download.

Two models share one tokenizer trained in this file:
- a randomly initialised one, whose meaningless output must become a readable quarantine reason;
- a "scripted" one whose weights are set by hand so that greedy decoding follows a fixed bigram chain
  ("assistant:" → the JSON answer → end of sequence): embeddings are one-hot, every attention output and
  MLP output is zero (so the last hidden state is the last token's embedding), and the LM head maps each
  token to its successor. It makes the success path, batching with left padding and truncation testable.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the hub, whatever a bug might ask for
os.environ["TRANSFORMERS_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fixtures.tiny_llava import ANSWER, DESCRIPTION  # noqa: E402
from fixtures.tiny_llava import save_tiny_llava as _save_model  # noqa: E402

from medtrinity.describe.base import get_describer  # noqa: E402
from medtrinity.describe.prompting import PROMPT_VERSION, REPAIR_VERSION  # noqa: E402
from medtrinity.describe.transformers_local import TransformersDescriber, pick_dtype  # noqa: E402
from medtrinity.errors import StageError, UserError  # noqa: E402
from medtrinity.records import Check, Description, Origin, Sample  # noqa: E402
from medtrinity.roi.geometry import roi_from_mask  # noqa: E402


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "tiny-llava-random", scripted=False)


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("models") / "tiny-llava-scripted", scripted=True)


def _sample(name: str, lesion_boxes: list[tuple[int, int, int, int]]) -> Sample:
    """A 40x48 grey CT-like image with a bright square per box (x0, y0, x1, y1), and their ROIs."""
    height, width = 40, 48
    pixels = np.full((height, width), 60, np.uint8)
    rois = []
    for x0, y0, x1, y1 in lesion_boxes:
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = True
        pixels[mask] = 200
        rois.append(roi_from_mask(mask, "lesion"))
    return Sample(
        id=name,
        source="test",
        origin=Origin(file=f"{name}.png"),
        modality="CT",
        organ="liver",
        width=width,
        height=height,
        rois=rois,
        coarse_caption="CT of the liver with a lesion.",
        pixels=pixels,
    )


def _one_lesion() -> Sample:
    return _sample("one", [(20, 16, 28, 24)])  # centre (24, 20) of 48x40: middle center, 64 px = 3.3%


def _two_lesions() -> Sample:
    return _sample("two", [(20, 16, 28, 24), (2, 2, 8, 8)])


# ---------------------------------------------------------------- the "done when"
def test_random_model_output_becomes_a_quarantine_reason(random_model):
    describer = get_describer("transformers", model=str(random_model), max_new_tokens=12)
    assert isinstance(describer, TransformersDescriber) and describer.device == "cpu"

    with pytest.raises(StageError) as raised:
        describer.describe(_one_lesion())
    reason = str(raised.value)
    assert reason.startswith(("answer is empty", "answer is truncated", "answer is not JSON")), reason
    assert "\n" not in reason
    assert describer.usage.requests == 1 and 0 < describer.usage.completion_tokens <= 12

    results = describer.describe_many([_one_lesion(), _two_lesions()])
    assert len(results) == 2 and all(isinstance(r, StageError) for r in results)
    assert str(results[0]) == reason  # greedy decoding: the same input gives the same answer


def test_random_model_in_the_describe_stage_quarantines_not_crashes(random_model):
    from medtrinity.pipeline.stages import DescribeStage

    stage = DescribeStage("transformers", {"model": str(random_model), "max_new_tokens": 12})
    outputs = stage.process_batch([_one_lesion(), _two_lesions()])
    assert [type(o) for o in outputs] == [StageError, StageError]
    assert stage.usage()["requests"] == 2


def test_scripted_model_batch_of_two_is_parsed(scripted_model):
    describer = get_describer("transformers", model=str(scripted_model), batch_size=2)
    one, two = _one_lesion(), _two_lesions()  # prompts of different lengths: the batch is left-padded

    results = describer.describe_many([one, two])

    expected_label = f"transformers:tiny-llava-scripted prompt={PROMPT_VERSION}"
    for result in results:
        assert isinstance(result, Description), result
        assert result.text == DESCRIPTION
        attributes = result.attributes
        assert (attributes.modality, attributes.structures, attributes.roi) == ("CT", "liver", "lesion")
        assert (attributes.texture, attributes.local_global) == ("bright", "inside")
        assert result.describer == expected_label
    assert describer.usage.requests == 2
    # 27 answer words + "</s>" per sample
    assert describer.usage.completion_tokens == 2 * (len(ANSWER.split()) + 1)


def test_answer_goes_through_verification_and_repair(scripted_model):
    """The scripted answer says "middle center": right for one sample, wrong for a lesion at the top left,
    which is repaired once (the model says the same again) and then quarantined with the contradiction."""
    from medtrinity.pipeline.stages import DescribeStage, VerifyStage

    describe = DescribeStage("transformers", {"model": str(scripted_model)})
    verify = VerifyStage("repair", describe.describer)
    right, wrong = _one_lesion(), _sample("corner", [(2, 2, 8, 8)])

    outputs = verify.process_batch(describe.process_batch([right, wrong]))

    assert outputs[0] is right and right.description == DESCRIPTION and all(c.ok for c in right.checks)
    assert isinstance(outputs[1], StageError)
    assert str(outputs[1]) == (
        "description still contradicts the record after one repair: "
        "position: text says middle center but lesion is at top left (1.9%)"
    )
    assert wrong.describer.endswith(f"prompt={PROMPT_VERSION}+{REPAIR_VERSION}")
    assert describe.usage()["requests"] == 3  # two answers and one repair


def test_answer_cut_by_max_new_tokens_is_truncated(scripted_model):
    describer = TransformersDescriber(model=scripted_model, max_new_tokens=3)
    with pytest.raises(StageError, match=r"^answer is truncated: .*\(max_new_tokens=3\)$") as raised:
        describer.describe(_one_lesion())
    assert '{"modality": "CT",' in str(raised.value)


def test_repair_sends_the_failed_check_and_labels_the_record(scripted_model):
    describer = TransformersDescriber(model=scripted_model)
    sample = _two_lesions()
    sample.description = DESCRIPTION
    failed = [Check(name="roi_count", ok=False, detail="the text says one lesion, the record has 2 ROIs")]

    repaired = describer.repair(sample, failed)

    assert repaired.describer.endswith(f"prompt={PROMPT_VERSION}+{REPAIR_VERSION}")
    assert repaired.text == DESCRIPTION  # the scripted model answers the same whatever it is told


def test_second_describer_on_the_same_cache_makes_no_call(scripted_model, tmp_path):
    first = TransformersDescriber(model=scripted_model, cache_dir=tmp_path / "cache")
    assert isinstance(first.describe(_one_lesion()), Description) and first.usage.requests == 1

    second = TransformersDescriber(model=scripted_model, cache_dir=tmp_path / "cache")
    again = second.describe_many([_one_lesion(), _two_lesions()])

    assert again[0].text == DESCRIPTION and isinstance(again[1], Description)
    assert (second.usage.cache_hits, second.usage.requests) == (1, 1)  # only the new image is generated


def test_overlay_is_drawn_on_a_copy_only(scripted_model):
    describer = TransformersDescriber(model=scripted_model, overlay=True)
    sample = _one_lesion()
    before = sample.pixels.copy()
    assert describer.describe(sample).text == DESCRIPTION
    np.testing.assert_array_equal(sample.pixels, before)


def test_sample_without_pixels_fails_alone(scripted_model):
    describer = TransformersDescriber(model=scripted_model)
    results = describer.describe_many([replace(_one_lesion(), pixels=None), _one_lesion()])
    assert isinstance(results[0], StageError) and str(results[0]) == "the describer got no pixels for this image"
    assert isinstance(results[1], Description)


# ---------------------------------------------------------------- bad commands
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, "--describer transformers needs --model PATH"),
        (lambda root: root / "absent", "no such directory"),
        (lambda root: (root / "file.bin").write_bytes(b"x") and root / "file.bin", "not a directory"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "not a Hugging Face model directory"),
    ],
)
def test_bad_model_path_is_a_one_line_user_error(tmp_path, make, message):
    target = make(tmp_path)
    with pytest.raises(UserError) as raised:
        get_describer("transformers", model=None if target is None else str(target))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_text_only_model_is_a_one_line_user_error(tmp_path):
    from transformers import LlamaConfig

    text_only = LlamaConfig(
        vocab_size=8,
        hidden_size=8,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    text_only.save_pretrained(tmp_path)
    with pytest.raises(UserError, match="cannot load an image-text-to-text model") as raised:
        TransformersDescriber(model=tmp_path)
    assert "\n" not in str(raised.value)


def test_dtype_per_device():
    assert pick_dtype("cpu") is torch.float32
    assert pick_dtype("mps") is torch.float16
    assert pick_dtype("cpu", "bfloat16") is torch.bfloat16
    with pytest.raises(UserError, match="--dtype must be one of"):
        pick_dtype("cpu", "int8")
