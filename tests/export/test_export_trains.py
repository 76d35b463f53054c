"""The export trains: `export llava --kind all` of a real build goes through a LLaVA processor's chat
template and trains a tiny random LLaVA (built offline, tests/fixtures/tiny_llava.py) on CPU."""

from __future__ import annotations

import json
import math
import os

import pytest
from fixtures.exporting import export

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fixtures.tiny_llava import IMAGE_SIZE, PATCH, save_tiny_llava  # noqa: E402 (only once torch is known)

IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2
ROLES = {"human": "user", "gpt": "assistant"}


def messages(entry: dict) -> list[dict]:
    """LLaVA's conversation as chat messages: the "<image>\\n" of the first turn becomes an image part."""
    out = []
    for i, turn in enumerate(entry["conversations"]):
        text = turn["value"]
        if i == 0:
            assert text.startswith("<image>\n")
            content = [{"type": "image"}, {"type": "text", "text": text.removeprefix("<image>\n")}]
        else:
            content = [{"type": "text", "text": text}]
        out.append({"role": ROLES[turn["from"]], "content": content})
    return out


def test_tiny_llava_trains_on_the_llava_export(mini_build, tmp_path):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    export("llava", mini_build, tmp_path / "llava", kind="all")
    entries = json.loads((tmp_path / "llava" / "train.json").read_text(encoding="utf-8"))
    texts = [turn["value"].removeprefix("<image>\n") for e in entries for turn in e["conversations"]]
    model_dir = save_tiny_llava(tmp_path / "tiny-llava", texts=texts)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    unknown = processor.tokenizer.unk_token_id

    def encode(batch: list[dict]):
        prompts = [processor.apply_chat_template(messages(e), tokenize=False) for e in batch]
        images = [Image.open(tmp_path / "llava" / e["image"]).convert("RGB") for e in batch]
        return processor(text=prompts, images=images, return_tensors="pt", padding=True)

    for entry in entries:  # every conversation of the export goes through the processor
        encoded = encode([entry])
        ids = encoded["input_ids"][0]
        assert int((ids == image_id).sum()) == IMAGE_TOKENS  # exactly one image, expanded to its patches
        assert int((ids == unknown).sum()) == 0  # every word is a token the tokenizer knows

    kinds = {}
    for entry in entries:
        kinds.setdefault(entry["id"].rsplit("-", 1)[1], entry)
    batch = encode([kinds["caption"], kinds["qa"], kinds["grounded"]])
    labels = batch["input_ids"].clone()
    labels[(labels == image_id) | (batch["attention_mask"] == 0)] = -100
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    torch.manual_seed(0)
    losses = []
    for _ in range(6):
        loss = model(**batch, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    # it learns the batch; not step by step: the random model's init depends on the vocabulary of every exported
    # text, and Adam at this rate may bounce once
    assert losses[-1] < losses[0] - 0.5 and min(losses) < losses[0] - 1.0, losses
