"""The `openai` describer: any OpenAI-compatible chat-completions server (OpenAI, vLLM, SGLang, Ollama, …).

Each record is one request: the multigranular prompt (prompting.py) plus the image as a base64 PNG data URL
(optionally with the ROIs outlined on a copy). Requests of a batch run concurrently on asyncio, at most
`concurrency` at a time. A call that times out, cannot connect, is rate limited (429, Retry-After honoured)
or meets a 5xx is retried with exponential backoff and jitter, up to `max_attempts`; a record whose calls
keep failing, or whose answer is empty, truncated or not JSON, fails with a StageError naming why, and the
run goes on. Finished calls are kept in the request cache, so a re-run or --resume never repeats them.
The API key is read from the environment variable named by `api_key_env`; it is sent, never stored or logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable

from medtrinity.describe.base import Reply, Usage, register_describer
from medtrinity.describe.cache import open_cache, request_key
from medtrinity.describe.prompting import (
    ANSWER_SCHEMA,
    SYSTEM_PROMPT,
    describer_label,
    description_or_error,
    previous_answer_json,
    prompt_versions,
    render_prompt,
    render_repair_prompt,
    snippet,
)
from medtrinity.errors import StageError, UserError
from medtrinity.records import Check, Description, Sample

BACKEND = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
POOL_SIZE = 8  # connections per HTTP client: httpcore's pool bookkeeping grows ~quadratically with its size
MAX_RETRY_AFTER_S = 300.0  # a longer Retry-After is cut to this, so a record never waits forever
_snippet = partial(snippet, limit=160)  # a server's error page is shown a little longer than a model's answer


@dataclass
class _Job:
    """One request to make; the messages (with the encoded image) are built only when a slot is free."""

    build: Callable[[], list[dict[str, Any]]]
    prompt_version: str


def image_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/unreadable."""
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        from datetime import datetime, timezone

        when = parsedate_to_datetime(value)
        return min(MAX_RETRY_AFTER_S, max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff (base·2^(attempt-1), at most `cap`) with jitter in [50%, 100%] of it."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _reply_from_json(data: Any) -> Reply:
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise StageError(f"the server's reply is not a chat completion: {_snippet(json.dumps(data))!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is not None and not isinstance(content, str):
        raise StageError(f"the server's answer is a {type(content).__name__}, not text")
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return Reply(content=content or "", finish_reason=finish if isinstance(finish, str) else None,
                 prompt_tokens=_token_count(data, "prompt_tokens"),
                 completion_tokens=_token_count(data, "completion_tokens"))


def _token_count(data: Any, field: str) -> int:
    """A usage count, or 0 when the server reports none or something unreadable (usage is informational)."""
    usage = data.get("usage") if isinstance(data, dict) else None
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


def _run_sync(coroutine):
    """asyncio.run, also from code that already runs inside an event loop (a notebook): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return result[0]


@register_describer(BACKEND)
class OpenAICompatDescriber:
    name = BACKEND

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        overlay: bool = False,
        cache_dir: str | Path | None = None,
        timeout: float = 120.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> None:
        if not model:
            raise UserError("the openai describer needs --model NAME (the model the server serves)")
        if concurrency < 1 or max_attempts < 1:
            raise UserError("--concurrency and the number of attempts must be at least 1")
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.concurrency = concurrency
        self.overlay = overlay
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.usage = Usage()
        self._tls = None  # one TLS context for every client (loading CA certificates is slow)
        self.structured_output: bool | None = None  # None: not known yet; False: the server refused it
        key = os.environ.get(api_key_env, "")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.cache = open_cache(cache_dir)

    def __repr__(self) -> str:  # never shows the headers (the key)
        return f"OpenAICompatDescriber(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def batch_size(self) -> int:
        """Records the pipeline should hand over at once: enough to keep every connection busy."""
        return max(32, 2 * self.concurrency)

    # ------------------------------------------------------------ public API
    def describe(self, sample: Sample) -> Description:
        result = self.describe_batch([sample])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def describe_batch(self, samples: list[Sample]) -> list[Description | BaseException]:
        """One Description per sample, or the StageError that sample failed with (in order)."""
        jobs = [_Job(partial(self._first_messages, sample), prompt_versions()) for sample in samples]
        return self._answers(jobs, describer_label(BACKEND, self.model))

    def repair_batch(self, items: list[tuple[Sample, list[Check]]]) -> list[Description | BaseException]:
        """Ask once more for each sample, naming its failed checks after the model's own first answer."""
        jobs = [_Job(partial(self._repair_messages, sample, failed), prompt_versions(repaired=True))
                for sample, failed in items]
        return self._answers(jobs, describer_label(BACKEND, self.model, repaired=True))

    # ------------------------------------------------------------ requests
    def _first_messages(self, sample: Sample) -> list[dict[str, Any]]:
        from medtrinity.sources.imaging import encode_png

        if sample.pixels is None:
            raise StageError("the openai describer needs the image pixels, but none were loaded")
        pixels = sample.pixels
        if self.overlay and sample.rois:
            from medtrinity.describe.overlay import draw_overlay

            pixels = draw_overlay(pixels, sample.rois)  # a copy; the stored image is untouched
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image_data_url(encode_png(pixels))}},
                {"type": "text", "text": render_prompt(sample, overlay=self.overlay)},
            ]},
        ]

    def _repair_messages(self, sample: Sample, failed: list[Check]) -> list[dict[str, Any]]:
        return self._first_messages(sample) + [
            {"role": "assistant", "content": previous_answer_json(sample)},
            {"role": "user", "content": render_repair_prompt(failed)},
        ]

    def _answers(self, jobs: list[_Job], label: str) -> list[Description | BaseException]:
        replies = _run_sync(self._run_jobs(jobs)) if jobs else []
        for reply in replies:
            if isinstance(reply, UserError):  # a wrong key, URL or model: no record can succeed
                raise reply
        return [reply if isinstance(reply, BaseException) else description_or_error(reply, label) for reply in replies]

    async def _run_jobs(self, jobs: list[_Job]) -> list[Reply | BaseException]:
        import httpx

        # `concurrency` slots; slot i always uses client i // POOL_SIZE, so no pool ever overfills or waits.
        slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(self.concurrency):
            slots.put_nowait(slot)
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(
                    base_url=self.base_url, headers=self._headers, limits=limits, verify=self._tls,
                    timeout=httpx.Timeout(self.timeout), follow_redirects=True))  # a proxy moving the API
                for _ in range(-(-self.concurrency // POOL_SIZE))
            ]

            inflight: dict[str, asyncio.Future] = {}  # identical requests of this batch share one call

            async def run(job: _Job) -> Reply:
                slot = await slots.get()
                try:
                    return await self._cached_call(clients[slot // POOL_SIZE], job, inflight)
                finally:
                    slots.put_nowait(slot)

            return list(await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True))

    def _key(self, job: _Job, messages: list[dict[str, Any]]) -> str:
        inputs = {"messages": messages, "max_tokens": self.max_tokens, "temperature": self.temperature}
        return request_key(BACKEND, self.model, job.prompt_version, inputs)

    async def _cached_call(self, client, job: _Job, inflight: dict[str, asyncio.Future] | None = None) -> Reply:
        messages = job.build()  # may raise StageError (no pixels): that record's result
        key = self._key(job, messages) if self.cache is not None else None
        if key is not None and (hit := self.cache.get_reply(key)) is not None:
            self.usage.cache_hits += 1
            return hit
        if key is not None and inflight is not None:
            if key in inflight:  # the same request is already on its way: wait for its answer, pay once
                self.usage.cache_hits += 1
                return await asyncio.shield(inflight[key])
            pending = inflight[key] = asyncio.get_running_loop().create_future()
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved" noise
            try:
                reply = await self._paid_call(client, job, messages, key)
            except BaseException as err:
                pending.set_exception(err)
                raise
            pending.set_result(reply)
            return reply
        return await self._paid_call(client, job, messages, key)

    async def _paid_call(self, client, job: _Job, messages: list[dict[str, Any]], key: str | None) -> Reply:
        reply = await self._call_with_retries(client, messages)
        self.usage.add_tokens(reply)
        if key is not None:
            self.cache.put_reply(key, reply, backend=BACKEND, model=self.model, prompt_version=job.prompt_version)
        return reply

    def _body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                                "temperature": self.temperature}
        if self.structured_output is not False:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "multigranular_description", "schema": ANSWER_SCHEMA, "strict": True}}
        return body

    async def _call_with_retries(self, client, messages: list[dict[str, Any]]) -> Reply:
        import httpx

        attempt, reason = 0, ""
        while attempt < self.max_attempts:
            attempt += 1
            if attempt > 1:
                self.usage.retries += 1
            body = self._body(messages)
            wait: float | None = None
            self.usage.requests += 1
            try:
                # httpx's timeout bounds each read; wait_for bounds the whole call (a server trickling bytes).
                response = await asyncio.wait_for(client.post("/chat/completions", json=body), self.timeout)
            except (httpx.TimeoutException, asyncio.TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
            except httpx.TransportError as err:
                reason = f"connection to {self.base_url} failed ({type(err).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    if "response_format" in body:
                        self.structured_output = True
                    try:
                        return _reply_from_json(response.json())
                    except ValueError:
                        raise StageError(f"the server's reply is not JSON: {_snippet(response.text)!r}") from None
                if status == 400 and "response_format" in body:
                    # Structured output is unsupported here: ask again in plain mode (a request, not a retry).
                    self.structured_output = False
                    attempt -= 1
                    continue
                if status in (401, 403):
                    raise UserError(f"{self.base_url} refused the API key (HTTP {status}); check the variable "
                                    "given by --api-key-env")
                if status == 404:
                    raise UserError(f"{self.base_url}/chat/completions or model {self.model!r} not found (HTTP 404): "
                                    f"{_snippet(response.text)}")
                if status == 429:
                    reason = "rate limited (HTTP 429)"
                    wait = retry_after_seconds(response.headers.get("retry-after"))
                elif status >= 500:
                    reason = f"server error (HTTP {status}): {_snippet(response.text)}"
                else:
                    raise StageError(f"the server refused the request (HTTP {status}): {_snippet(response.text)}")
            if attempt < self.max_attempts:
                await asyncio.sleep(wait if wait is not None else backoff_delay(attempt, self.backoff, self.max_backoff))
        raise StageError(f"model call failed after {self.max_attempts} attempts: {reason}")
