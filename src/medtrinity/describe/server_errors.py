"""What a model server's refusal means, read from its status code and its own error message.

Real servers disagree on status codes (llama-cpp-python answers almost everything with HTTP 500; llama-server,
vLLM, SGLang, Ollama and OpenAI use 400/404 with different bodies), so a refusal is classed by what it says:

- transient (connection, timeout, 429, 502/503/504, an unexplained 500): retried with backoff;
- structured output refused (names `response_format` / `json_schema` …): the next output mode is tried;
- context overflow: the request may be shrunk once, then the record is quarantined;
- refused for this request (other 4xx: content refused, payload too large): quarantined, never retried;
- unfit for this build (no vision projector, a chat template that fails on images, unknown model, bad key,
  a request form the server rejects): the build stops at the first one, with the cause and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from medtrinity.errors import StageError, UserError

_SNIPPET = 160


class ServerStop(UserError):
    """The model server cannot serve this build (wrong setup, or gone): no later record could succeed."""

    def during_build(self, shard: int) -> ServerStop:
        """The same cause, said the way a build that stopped half-way says it (kept shards, --resume)."""
        return type(self)(
            f"{self}. The build stopped at shard {shard}: finished shards are kept; "
            "rerun with --resume once the server is fixed"
        )


class ServerUnfit(ServerStop):
    """The server answers, but lacks something every request needs (vision, a template, the model, the key)."""


class ServerGone(ServerStop):
    """The server stopped accepting connections in the middle of a build."""


class ContextOverflow(StageError):
    """The request is longer than the server's context: a smaller request may still fit."""


def is_local_url(url: str) -> bool:
    """A server on this machine or a private network (which usually needs no API key)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "host.docker.internal") or host.endswith((".local", ".localhost")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def missing_key_note(base_url: str, key_env: str, has_key: bool) -> str:
    """' (OPENAI_API_KEY is not set)' for a remote server called without a key; '' otherwise."""
    return (
        ""
        if has_key or is_local_url(base_url)
        else f" ({key_env} is not set: export it, or name your variable with --api-key-env)"
    )


@dataclass(frozen=True)
class Refusal:
    kind: str  # transient | structured_output | context | request | unfit
    reason: str  # one line for a quarantine reason or a stop message


def server_message(text: str, limit: int | None = _SNIPPET) -> str:
    """The server's own error message from its body (OpenAI, vLLM/SGLang, llama.cpp, FastAPI shapes), one line,
    cut to `limit` characters (None: whole)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    if not isinstance(message, str):
        message = json.dumps(message) if message is not None else text
    flat = " ".join(message.split())
    return flat if limit is None or len(flat) <= limit else flat[:limit] + "…"


# (pattern in the server's message, the cause, the fix) for refusals no request of this build can get past.
_UNFIT: tuple[tuple[re.Pattern, str, str], ...] = (
    (
        re.compile(r"image input is not supported|provide the mmproj", re.IGNORECASE),
        "the server has no vision projector loaded, so it cannot read images",
        "start llama-server with --mmproj PATH (the model's mmproj GGUF)",
    ),
    (
        re.compile(r"can only concatenate str \(not \"list\"\)|chat.?template|jinja|TemplateError", re.IGNORECASE),
        "the server's chat template fails on a message with an image (list content)",
        (
            "start the server with a chat format for vision models (llama-cpp-python: --chat_format llava-1-5 "
            "--clip_model_path MMPROJ; llama-server: --jinja --mmproj MMPROJ; vLLM/SGLang: --chat-template)"
        ),
    ),
    (
        re.compile(
            r"not a multimodal model|does not support (images|image input|vision)|missing data required for "
            r"image input|image_url is only supported by certain models|images? (are|is) not supported",
            re.IGNORECASE,
        ),
        "the model does not take images",
        "serve a vision-language model (Qwen2.5-VL, LLaVA, …; for Ollama pull e.g. llava or qwen2.5vl)",
    ),
)
_STRUCTURED = re.compile(
    r"response_format|json_schema|json_object|guided_(json|decoding)|json schema|grammar", re.IGNORECASE
)
_CONTEXT = re.compile(
    r"context (length|size|window)|context_length_exceeded|exceed_context_size|maximum context|"
    r"longer than the model's context|exceeds? the (available )?context",
    re.IGNORECASE,
)
# (requested, limit) in each server's overflow message
_CONTEXT_NUMBERS = (
    re.compile(r"request \((?P<asked>\d+) tokens\) exceeds the available context size \((?P<limit>\d+) tokens\)"),
    re.compile(r"maximum context length is (?P<limit>\d+) tokens\. However, you requested (?P<asked>\d+) tokens"),
    re.compile(r"input \((?P<asked>\d+) tokens\) is longer than the model's context length \((?P<limit>\d+) tokens\)"),
    re.compile(r"requested (?P<asked>\d+) tokens.*?context (?:size|length|window) (?:is |of )?\(?(?P<limit>\d+)"),
)


def context_reason(text: str) -> str:
    """'the request is longer than the server's context (3666 tokens > 3072)' from any server's overflow body."""
    message = text
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else {}
        if (
            isinstance(error, dict)
            and isinstance(error.get("n_prompt_tokens"), int)
            and isinstance(error.get("n_ctx"), int)
        ):
            return f"the request is longer than the server's context ({error['n_prompt_tokens']} tokens > {error['n_ctx']})"
        message = server_message(text, limit=None)
    except (ValueError, AttributeError):
        pass
    for pattern in _CONTEXT_NUMBERS:
        found = pattern.search(message)
        if found:
            return f"the request is longer than the server's context ({found['asked']} tokens > {found['limit']})"
    return f"the request is longer than the server's context: {server_message(text)}"


def classify(status: int, text: str, model: str, asked_structured: bool) -> Refusal:
    """What an HTTP error answer means for the build (status is not 200)."""
    message, whole = server_message(text), server_message(text, limit=None)
    if status in (401, 403):
        return Refusal("unfit", f"the server refused the API key (HTTP {status}): {message}")
    for pattern, cause, fix in _UNFIT:
        if pattern.search(whole):
            return Refusal("unfit", f"{cause} ({message}): {fix}")
    if _CONTEXT.search(whole):
        return Refusal("context", context_reason(text))
    if asked_structured and _STRUCTURED.search(whole):
        return Refusal("structured_output", message)
    if status == 404:
        return Refusal(
            "unfit",
            f"the server does not serve model {model!r} or has no /chat/completions "
            f"(HTTP 404: {message}): pass the name it serves with --model, and check --base-url",
        )
    if status == 422 or "validation error" in whole.lower():
        return Refusal(
            "unfit",
            f"the server rejects the form of the request (HTTP {status}: {message}); "
            "it may not be OpenAI-compatible for images: see docs/BACKENDS.md",
        )
    if status == 429:
        return Refusal("transient", "rate limited (HTTP 429)")
    if status >= 500 or status == 408:
        return Refusal("transient", f"server error (HTTP {status}): {message}")
    if status == 413:
        return Refusal(
            "request", f"the server refused the request as too large (HTTP 413): {message}; lower --max-image-side"
        )
    return Refusal("request", f"the server refused the request (HTTP {status}): {message}")
