"""The `transformers` describer: a local Hugging Face image-text-to-text model directory, batched on one device.

`--describer transformers --model PATH` loads `AutoProcessor` + `AutoModelForImageTextToText` from PATH only
(never the hub), on CUDA, else Apple MPS, else the CPU, in a dtype that device runs well. Each sample becomes
one chat turn — the image and the multigranular prompt of `prompting` — rendered with the processor's chat
template where it has one; a batch is left-padded and decoded greedily, so a re-run gives the same text. The
answer goes through `prompting.parse_answer`: an empty, cut-off or unparseable answer is a StageError (the
record's quarantine reason), never a crash. torch and transformers are imported only here, only when used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity.describe.base import Reply, Usage, register_describer
from medtrinity.describe.cache import open_cache, request_key
from medtrinity.describe.prompting import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    describer_label,
    description_or_error,
    previous_answer_json,
    prompt_versions,
    render_prompt,
    render_repair_prompt,
)
from medtrinity.errors import StageError, UserError
from medtrinity.records import Check, Description, Sample

BACKEND = "transformers"
DEFAULT_MAX_NEW_TOKENS = 1024  # as the build config's --max-tokens: the six-field JSON answer fits with room
DEFAULT_BATCH_SIZE = 8
INSTALL_HINT = "pip install 'medtrinity[transformers]'"
_DTYPES = ("float32", "float16", "bfloat16")
# Models this process has loaded: a build loads one per worker (the Ray engine one per model actor), and
# reports these counts so that a model loaded once per shard would show.
MODEL_LOADS = 0


@dataclass
class _Request:
    """One model call: the chat turns, the image, and the cache key of both."""

    messages: list[dict[str, Any]]
    image: Any  # PIL.Image.Image (RGB)
    key: str
    repaired: bool = False


# ---------------------------------------------------------------- device, dtype, loading
def pick_device(requested: str | None = None) -> str:
    """'cuda' if a GPU is visible, else 'mps' (Apple), else 'cpu'; an explicit request wins."""
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, requested: str | None = None) -> Any:
    """bfloat16 on GPUs that have it (else float16), float16 on MPS, float32 on the CPU (half is slow there)."""
    import torch

    if requested:
        if requested not in _DTYPES:
            raise UserError(f"--dtype must be one of {', '.join(_DTYPES)}, got {requested!r}")
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_model_dir(model: str | os.PathLike | None) -> Path:
    """The model directory, or UserError saying why it cannot be one (checked before torch is imported)."""
    if model is None or not str(model).strip():
        raise UserError("--describer transformers needs --model PATH (a local Hugging Face model directory)")
    path = Path(model).expanduser()
    if not path.exists():
        raise UserError(f"--model {model}: no such directory (the transformers describer never downloads models)")
    if not path.is_dir():
        raise UserError(f"--model {model}: not a directory (give the folder that holds config.json)")
    if not (path / "config.json").is_file():
        raise UserError(f"--model {model}: not a Hugging Face model directory (it has no config.json)")
    return path


def _import_libraries() -> tuple[Any, Any]:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as error:
        raise UserError(f"the transformers describer needs torch and transformers ({INSTALL_HINT}): {error}") from error
    return transformers.AutoProcessor, transformers.AutoModelForImageTextToText


# ---------------------------------------------------------------- the describer
@register_describer(BACKEND)
class TransformersDescriber:
    """Describes samples with a local image-text-to-text model; see the module docstring."""

    name = BACKEND

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        dtype: str | None = None,
        overlay: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if int(max_new_tokens) < 1 or int(batch_size) < 1:
            raise UserError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}")
        self.model_dir = check_model_dir(model)
        self.model_name = self.model_dir.resolve().name
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.overlay = bool(overlay)
        self.usage = Usage()
        self.cache = open_cache(cache_dir)
        self._load(device, dtype)

    def _load(self, device: str | None, dtype: str | None) -> None:
        global MODEL_LOADS
        auto_processor, auto_model = _import_libraries()
        MODEL_LOADS += 1
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces next to local_files_only
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        where = self.model_dir
        try:
            self.processor = auto_processor.from_pretrained(where, local_files_only=True)
            self.model = auto_model.from_pretrained(where, local_files_only=True, dtype=self.dtype)
        except Exception as error:  # unknown architecture, missing weights, not a vision model…
            raise UserError(f"--model {where}: cannot load an image-text-to-text model: {_one_line(error)}") from error
        self.model.to(self.device).eval()
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is None:
            raise UserError(f"--model {where}: its processor has no tokenizer")
        tokenizer.padding_side = "left"  # decoder-only batching: every prompt must end at the last column
        self.tokenizer = tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = tokenizer.eos_token_id if eos is None else eos
        self.eos_ids = {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None}
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else min(self.eos_ids, default=0)
        # A model's own sampling settings are ignored: greedy decoding makes the dataset reproducible.
        self.generation_options = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "pad_token_id": self.pad_id,
        }

    # ------------------------------------------------------------ public API
    def describe(self, sample: Sample) -> Description:
        """One sample's description, or StageError with the quarantine reason."""
        return _raise_or_return(self.describe_batch([sample])[0])

    def describe_batch(self, samples: Sequence[Sample]) -> list[Description | Exception]:
        """A description or the exception each sample failed with, in order; never raises for one record."""
        return self._run([self._safe_request(sample) for sample in samples])

    describe_many = describe_batch

    def repair(self, sample: Sample, failed: list[Check]) -> Description:
        """One repaired description, or StageError; see `repair_batch`."""
        return _raise_or_return(self.repair_batch([(sample, failed)])[0])

    def repair_batch(self, items: Sequence[tuple[Sample, list[Check]]]) -> list[Description | Exception]:
        """Ask once more for each sample, naming its failed checks after its current description as the
        model's own turn; results in order, as `describe_batch`."""
        return self._run([self._safe_request(sample, failed) for sample, failed in items])

    # ------------------------------------------------------------ requests
    def _safe_request(self, sample: Sample, failed: list[Check] | None = None) -> _Request | Exception:
        try:
            return self._request(sample, failed)
        except StageError as error:
            return error

    def _request(self, sample: Sample, failed: list[Check] | None = None) -> _Request:
        from PIL import Image

        from medtrinity.describe.overlay import draw_overlay

        if sample.pixels is None:
            raise StageError("the describer got no pixels for this image")
        pixels = np.asarray(sample.pixels)
        if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
            raise StageError(f"the describer needs uint8 HxW or HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
        # The overlay is drawn on a copy for the model only; the stored image keeps the pixels as read.
        shown = draw_overlay(pixels, sample.rois) if self.overlay else pixels
        image = Image.fromarray(shown).convert("RGB")
        user = [{"type": "image"}, {"type": "text", "text": render_prompt(sample, overlay=self.overlay)}]
        messages = [{"role": "user", "content": user}]
        if failed:
            messages += [
                {"role": "assistant", "content": [{"type": "text", "text": previous_answer_json(sample)}]},
                {"role": "user", "content": [{"type": "text", "text": render_repair_prompt(failed)}]},
            ]
        key = self._key(messages, image)
        return _Request(messages=messages, image=image, key=key, repaired=bool(failed))

    def _key(self, messages: list[dict[str, Any]], image: Any) -> str:
        inputs = {
            "messages": messages,
            "system": SYSTEM_PROMPT,
            "image_sha256": hashlib.sha256(image.tobytes()).hexdigest(),
            "image_size": list(image.size),
            "generation": {"max_new_tokens": self.max_new_tokens, "greedy": True},
            "model_dir": str(self.model_dir.resolve()),
        }
        return request_key(BACKEND, self.model_name, PROMPT_VERSION, inputs)

    def _chat_text(self, messages: list[dict[str, Any]]) -> str:
        """The model's input text: its chat template when it has one, else the image token and the turns."""
        if getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None):
            system = {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]}
            try:
                return self.processor.apply_chat_template(
                    [system, *messages], add_generation_prompt=True, tokenize=False
                )
            except Exception:  # many templates refuse a system turn: fold it into the first user text instead
                return self.processor.apply_chat_template(
                    _with_system_in_first_turn(messages), add_generation_prompt=True, tokenize=False
                )
        image_token = getattr(self.processor, "image_token", None) or "<image>"
        turns = [
            " ".join(part["text"] for part in message["content"] if part["type"] == "text") for message in messages
        ]
        return f"{image_token}\n{SYSTEM_PROMPT}\n\n" + "\n\n".join(turns) + "\n"

    # ------------------------------------------------------------ running
    def _run(self, requests: list[_Request | Exception]) -> list[Description | Exception]:
        results: list[Description | Exception | None] = [None] * len(requests)
        pending: list[tuple[int, _Request]] = []
        for index, request in enumerate(requests):
            if isinstance(request, Exception):
                results[index] = request
                continue
            cached = self.cache.get_reply(request.key) if self.cache is not None else None
            if cached is not None:
                self.usage.cache_hits += 1
                results[index] = self._description(cached, request.repaired)
            else:
                pending.append((index, request))
        for start in range(0, len(pending), self.batch_size):
            chunk = pending[start : start + self.batch_size]
            for (index, request), reply in zip(chunk, self._generate_resilient([r for _, r in chunk])):
                if isinstance(reply, Exception):
                    results[index] = reply
                    continue
                self._record(request, reply)
                results[index] = self._description(reply, request.repaired)
        return results  # type: ignore[return-value]

    def _generate_resilient(self, requests: list[_Request]) -> list[Reply | Exception]:
        """The batch's replies; if the batch fails (e.g. out of memory), each request alone, so one bad input
        fails only its own record."""
        try:
            return self._generate(requests)
        except Exception as error:
            if len(requests) == 1:
                return [error]
        replies: list[Reply | Exception] = []
        for request in requests:
            try:
                replies.extend(self._generate([request]))
            except Exception as error:
                replies.append(error)
        return replies

    def _generate(self, requests: list[_Request]) -> list[Reply]:
        import torch

        texts = [self._chat_text(r.messages) for r in requests]
        inputs = self.processor(text=texts, images=[r.image for r in requests], return_tensors="pt", padding=True)
        inputs = inputs.to(self.device, dtype=self.dtype)  # dtype applies to the floating tensors (pixels) only
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self.generation_options)
        prompt_length = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        replies = []
        for row, n_prompt in zip(output[:, prompt_length:].tolist(), prompt_tokens):
            ended = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
            kept = row if ended is None else row[:ended]
            finish = "length" if ended is None and len(row) >= self.max_new_tokens else "stop"
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            replies.append(
                Reply(
                    content=text,
                    finish_reason=finish,
                    prompt_tokens=int(n_prompt),
                    completion_tokens=len(kept) + (ended is not None),
                )
            )
        return replies

    def _record(self, request: _Request, reply: Reply) -> None:
        self.usage.requests += 1
        self.usage.add_tokens(reply)
        if self.cache is not None:
            self.cache.put_reply(
                request.key,
                reply,
                backend=BACKEND,
                model=self.model_name,
                prompt_version=prompt_versions(request.repaired),
            )

    def _description(self, reply: Reply, repaired: bool) -> Description | StageError:
        result = description_or_error(reply, describer_label(BACKEND, self.model_name, repaired=repaired))
        if isinstance(result, StageError) and reply.finish_reason == "length":
            return StageError(f"{result} (max_new_tokens={self.max_new_tokens})")
        return result


def _raise_or_return(result: Description | Exception) -> Description:
    if isinstance(result, Exception):
        raise result
    return result


def _with_system_in_first_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first, *rest = messages
    content = [
        {**part, "text": f"{SYSTEM_PROMPT}\n\n{part['text']}"} if part["type"] == "text" else part
        for part in first["content"]
    ]
    return [{**first, "content": content}, *rest]
