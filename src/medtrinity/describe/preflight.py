"""Before a build touches its output folder: can this model server serve it? One line if not.

1. The server answers at all (a short timeout on `GET /models`; a 503 while it loads the model is waited out).
2. The model is one the server lists ("did you mean tiny.gguf?"); servers without the endpoint are tolerated.
3. A short request in the build's own form (the real prompt for a small test image, list-form content)
   is accepted, which settles the structured-output mode in `auto`, and its `usage.prompt_tokens` is not far
   below the prompt's own size (a chat template that drops list content would leave only the system prompt).
4. The same request with the test image: accepted, and its prompt tokens grow — by image tokens, not by the
   image's base64 text. A server that drops or stringifies the image would write records as if described
   from images no model saw.

An unset API key for a remote URL is named in the line of whichever check failed.
"""

from __future__ import annotations

import difflib
import time
from typing import Any

import numpy as np

from medtrinity.describe.server_errors import (
    ServerUnfit,
    classify,
    context_reason,
    missing_key_note,
    server_message,
)
from medtrinity.errors import UserError
from medtrinity.records import Origin, Sample

PROBE_TIMEOUT_S = 10.0  # reaching the server and listing its models
LOADING_WAIT_S = 60.0  # how long a server answering 503 (still loading its model) is waited for
PROBE_MAX_TOKENS = 1  # the probes need the server's token count, not an answer
TEST_IMAGE_SIDE = 64
# An image read as a picture costs a fixed number of tokens (1 to ~1,200 for a 64x64 image, by model);
# read as base64 text it costs ~1 token per 2-4 characters. Growth above characters / 8 is text.
STRINGIFIED_CHARS_PER_TOKEN = 8


def preflight_stages(stages: list) -> dict[str, Any] | None:
    """Run the preflight of the build's describer, if it has one; what it found (for the manifest), or None."""
    for stage in stages:
        describer = getattr(stage, "describer", None)
        if describer is not None and hasattr(describer, "preflight"):
            return describer.preflight()
    return None


def probe_sample() -> Sample:
    """A small colour noise image (noise: its base64 is long, so a server reading it as text shows at once)."""
    pixels = np.random.default_rng(0).integers(0, 256, (TEST_IMAGE_SIDE, TEST_IMAGE_SIDE, 3), dtype=np.uint8)
    return Sample(
        id="preflight",
        source="preflight",
        origin=Origin(file="preflight.png"),
        modality="CT",
        organ="chest",
        width=TEST_IMAGE_SIDE,
        height=TEST_IMAGE_SIDE,
        pixels=pixels,
        coarse_caption="CT image of the chest.",
    )


def check_server(describer) -> dict[str, Any]:
    """The four checks above for an OpenAICompatDescriber; sets its output mode. UserError on the first failure."""
    import httpx

    url = describer.base_url
    info: dict[str, Any] = {"backend": "openai", "model": describer.model, "base_url": url}
    timeout = min(PROBE_TIMEOUT_S, describer.timeout)
    with httpx.Client(base_url=url, headers=describer._headers, timeout=timeout, follow_redirects=True) as http:
        listed = listed_models(describer, http)
        check_model_name(describer.model, listed, url)
        with_image, _ = describer._first_messages(probe_sample())
        text_only = [with_image[0], {"role": "user", "content": [with_image[1]["content"][1]]}]
        http.timeout = httpx.Timeout(describer.timeout)  # a completion on a slow local server takes a while
        text_tokens = negotiate(describer, http, text_only)
        info["structured_output"] = describer.negotiation.mode
        info["vision"] = check_vision(describer, http, with_image, text_tokens)
    return info


def _key_note(describer) -> str:
    return missing_key_note(describer.base_url, describer.api_key_env, describer._has_key)


def listed_models(describer, http) -> list[str] | None:
    """The model ids `GET /models` lists; None when the server has no such endpoint (or an unreadable one)."""
    import httpx

    url, waited = describer.base_url, 0.0
    while True:
        try:
            response = http.get("/models")
        except httpx.TimeoutException:
            raise UserError(
                f"the model server at {url} does not answer within {http.timeout.connect:g} s: is it "
                f"running and reachable? (check --base-url){_key_note(describer)}"
            ) from None
        except httpx.TransportError as err:
            raise UserError(
                f"cannot reach the model server at {url} ({type(err).__name__}): start it, or check "
                f"--base-url{_key_note(describer)}"
            ) from None
        if response.status_code in (502, 503, 504) and waited < LOADING_WAIT_S:  # e.g. llama-server "Loading model"
            time.sleep(2.0)
            waited += 2.0
            continue
        break
    if response.status_code in (401, 403):
        raise describer.unfit(
            f"the server refused the API key (HTTP {response.status_code}): {server_message(response.text)}"
        )
    if response.status_code != 200:
        return None
    try:
        data = response.json().get("data")
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)] or None
    except (ValueError, AttributeError, TypeError):
        return None


def closest_model(name: str, listed: list[str]) -> str | None:
    """The listed id the user most likely meant: one that contains the name, else the closest spelling."""
    lowered = name.lower()
    containing = sorted((i for i in listed if lowered in i.lower()), key=len)
    if containing:
        return containing[0]
    close = difflib.get_close_matches(lowered, [i.lower() for i in listed], n=1, cutoff=0.6)
    return next((i for i in listed if i.lower() == close[0]), None) if close else None


def check_model_name(model: str, listed: list[str] | None, url: str) -> None:
    # Ollama serves "llava" as "llava:latest": both names are the same model there.
    if not listed or model in listed or f"{model}:latest" in listed:
        return
    shown = ", ".join(listed[:5]) + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")
    guess = closest_model(model, listed)
    hint = f" — did you mean {guess}?" if guess else ""
    raise UserError(f"the model server at {url} does not serve model {model!r} (it lists {shown}){hint}")


def _post(describer, http, messages: list[dict], mode: str) -> tuple[int, Any, str]:
    """(status, parsed JSON or None, text) of one probe completion; transient failures retried with backoff."""
    import httpx

    from medtrinity.describe.openai_compat import backoff_delay

    body = describer._body(messages, mode, max_tokens=PROBE_MAX_TOKENS)
    reason = ""
    for attempt in range(1, describer.max_attempts + 1):
        try:
            response = http.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            reason = f"no answer within {describer.timeout:g} s"
        except httpx.TransportError as err:
            reason = f"connection failed ({type(err).__name__})"
        else:
            refusal = (
                None
                if response.status_code == 200
                else classify(response.status_code, response.text, describer.model, asked_structured=mode != "none")
            )
            if refusal is None or refusal.kind != "transient":
                try:
                    data = response.json()
                except ValueError:
                    data = None
                return response.status_code, data, response.text
            reason = refusal.reason
        if attempt < describer.max_attempts:
            time.sleep(backoff_delay(attempt, describer.backoff, describer.max_backoff))
    raise UserError(
        f"the model server at {describer.base_url} did not answer a short test request after "
        f"{describer.max_attempts} attempts: {reason}{_key_note(describer)}"
    )


def _prompt_tokens(data: Any) -> int:
    from medtrinity.describe.openai_compat import _token_count

    return _token_count(data, "prompt_tokens")


def negotiate(describer, http, messages: list[dict]) -> int:
    """Send the text-only probe, stepping down the output mode on each refusal of it; its prompt tokens."""
    from medtrinity.describe.openai_compat import check_prompt_received
    from medtrinity.errors import StageError

    url = describer.base_url
    while True:
        mode = describer.negotiation.mode
        status, data, text = _post(describer, http, messages, mode)
        if status == 200:
            tokens = _prompt_tokens(data)
            try:
                check_prompt_received(tokens, messages)
            except StageError as err:
                raise UserError(f"{url}: {err}") from None
            return tokens
        refusal = classify(status, text, describer.model, asked_structured=mode != "none")
        if refusal.kind == "structured_output":
            try:
                describer.negotiation.refused(mode, refusal.reason)  # steps down, or stops an explicit choice
            except ServerUnfit as stop:
                raise describer.unfit(str(stop)) from None
            continue
        if refusal.kind == "unfit":
            raise describer.unfit(refusal.reason)
        if refusal.kind == "context":
            raise UserError(
                f"{url}: {context_reason(text)} for a short test prompt: start the server with a "
                "larger context (llama-server -c N, vLLM --max-model-len N)"
            )
        raise UserError(f"{url} refuses a short test request: {refusal.reason}")


def check_vision(describer, http, messages: list[dict], text_tokens: int) -> str:
    """Send the probe with the test image; refuse a server whose model does not see it. What was seen."""
    url, side = describer.base_url, TEST_IMAGE_SIDE
    status, data, text = _post(describer, http, messages, describer.negotiation.mode)
    if status != 200:
        refusal = classify(status, text, describer.model, asked_structured=describer.negotiation.mode != "none")
        if refusal.kind == "unfit":
            raise describer.unfit(refusal.reason)
        if refusal.kind == "context":
            raise UserError(
                f"{url}: a {side}x{side} test image overflows the server's context "
                f"({context_reason(text)}): the server reads the image as text — its chat template "
                "has no image support (llama-server: --mmproj; see docs/BACKENDS.md)"
            )
        raise UserError(f"{url} refuses a request with a {side}x{side} test image: {refusal.reason}")
    image_tokens = _prompt_tokens(data)
    if not text_tokens or not image_tokens:
        return "not checked: the server reports no prompt token counts"
    growth = image_tokens - text_tokens
    if growth <= 0:
        raise UserError(
            f"{url}: the model does not receive images — its prompt stayed at {text_tokens} tokens when a "
            f"{side}x{side} test image was added (llama-server: start it with --mmproj; llama-cpp-python: "
            "--clip_model_path with a vision --chat_format; see docs/BACKENDS.md)"
        )
    image_chars = len(messages[1]["content"][0]["image_url"]["url"])
    if growth > image_chars / STRINGIFIED_CHARS_PER_TOKEN:
        raise UserError(
            f"{url}: the server reads the image as text — a {side}x{side} test image added {growth} prompt tokens, "
            f"about one per {image_chars / growth:.1f} characters of its base64 (its chat template has no image "
            "support; see docs/BACKENDS.md)"
        )
    return f"checked: a {side}x{side} test image added {growth} prompt tokens ({text_tokens} -> {image_tokens})"
