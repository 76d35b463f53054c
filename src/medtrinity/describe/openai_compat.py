"""The `openai` describer: any OpenAI-compatible chat-completions server (OpenAI, vLLM, SGLang, llama.cpp, Ollama).

Each record is one request: the multigranular prompt (prompting.py) plus the image (image_payload.py: the
stored JPEG as is, or a PNG; resized to `max_image_side`; optionally with the ROIs outlined on a copy).
Requests of a batch run concurrently on asyncio, at most `concurrency` at a time, fewer while the server
shows it is full (concurrency.py). What a refusal means is read from the server's answer (server_errors.py):
transient failures are retried with backoff, a refusal of structured output steps down to the next output
mode (structured_output.py), a context overflow shrinks the request once, a refusal of one request
quarantines that record, and a server that cannot serve the build (or stops answering) stops it with one
line. Before a build, `preflight` checks the server, the model name, the output mode and that images reach
the model (preflight.py). Finished calls are kept in the request cache, so a re-run or --resume never
repeats them. The API key is read from the environment variable named by `api_key_env`; it is sent, never
stored or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any

from medtrinity.describe.base import Reply, Usage, register_describer
from medtrinity.describe.cache import open_cache, request_key
from medtrinity.describe.concurrency import AdaptiveLimit
from medtrinity.describe.image_payload import fitted_size, image_payload
from medtrinity.describe.prompting import (
    SYSTEM_PROMPT,
    describer_label,
    description_or_error,
    previous_answer_json,
    prompt_versions,
    render_prompt,
    render_repair_prompt,
    snippet,
)
from medtrinity.describe.server_errors import (
    ContextOverflow,
    ServerGone,
    ServerStop,
    ServerUnfit,
    classify,
    missing_key_note,
)
from medtrinity.describe.structured_output import Negotiation, response_format
from medtrinity.errors import StageError, TransientError, UserError
from medtrinity.records import Check, Description, Sample

BACKEND = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 600.0  # a local CPU server answering one request at a time needs minutes for a queue of them
POOL_SIZE = 8  # connections per HTTP client: httpcore's pool bookkeeping grows ~quadratically with its size
MAX_RETRY_AFTER_S = 300.0  # a longer Retry-After is cut to this, so a record never waits forever
STOP_AFTER_CONNECTION_FAILURES = 3  # records in a row whose every attempt found no server: it is gone
SHRUNK_MIN_SIDE = 256  # a context overflow halves the image sent, but not below this
# Requests are built (image encoded, cache key hashed) on a thread beside the event loop, before a slot is taken:
# Pillow's encoder and hashlib release the GIL, so the loop keeps answering while images are encoded, and a
# slot is held only while its request is on its way. (One thread: a second was slower on 2 cores, both
# contending for the GIL with the CPU stages.) A few are built ahead of the slots so a freed slot never waits
# for an encode; no more, so encoded images do not pile up in memory.
BUILDER_THREADS = 1
BUILT_AHEAD = 8
# No tokenizer packs more than ~5 characters of English into a token: a count below characters / 10 means the
# model never saw the text (a chat template that dropped list-form content).
MAX_CHARS_PER_TOKEN = 10
_snippet = partial(snippet, limit=160)  # a server's error page is shown a little longer than a model's answer


@dataclass
class _Job:
    """One request to make; the messages (with the encoded image) are built shortly before it is sent.
    `build(shrink)` gives the messages and, when shrinking, what was made smaller (None: nothing could be)."""

    build: Callable[[bool], tuple[list[dict[str, Any]], str | None]]
    prompt_version: str
    repaired: bool = False


@dataclass
class _Request:
    """A job's messages as built, and their cache key per output mode (each hashed once)."""

    messages: list[dict[str, Any]]
    shrunk: str | None  # what was made smaller after a context overflow
    keys: dict[str, str] = field(default_factory=dict)


@dataclass
class _Answer:
    reply: Reply
    mode: str  # the structured-output mode the answer was asked in
    shrunk: str | None  # what was made smaller after a context overflow


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/unreadable."""
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        from datetime import datetime

        when = parsedate_to_datetime(value)
        return min(MAX_RETRY_AFTER_S, max(0.0, (when - datetime.now(UTC)).total_seconds()))
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
    return Reply(
        content=content or "",
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=_token_count(data, "prompt_tokens"),
        completion_tokens=_token_count(data, "completion_tokens"),
    )


def _token_count(data: Any, field: str) -> int:
    """A usage count, or 0 when the server reports none or something unreadable (usage is informational)."""
    usage = data.get("usage") if isinstance(data, dict) else None
    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


class _Session:
    """The describer's event loop, on a thread of its own, and what lives on it for the describer's lifetime:
    the HTTP clients, the `concurrency` slots, the AIMD gate and the requests in flight. Every batch, from any
    thread, runs here, so batches submitted side by side share one bound: a shard can keep `concurrency`
    requests in flight while its other records go through the CPU stages."""

    def __init__(self, describer: OpenAICompatDescriber) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="openai-describer")
        self.thread.start()
        ready.wait()
        asyncio.run_coroutine_threadsafe(self._open(describer), self.loop).result()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    async def _open(self, describer: OpenAICompatDescriber) -> None:
        import httpx

        # The AIMD gate decides how many requests are on the wire (at most `concurrency`); each takes one of
        # `concurrency` connection slots, and slot i always uses client i // POOL_SIZE, so no pool overfills.
        self.slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(describer.concurrency):
            self.slots.put_nowait(slot)
        self.gate = AdaptiveLimit(describer.concurrency, start=describer._in_flight_limit)
        self.stop_event = asyncio.Event()
        self.building = asyncio.Semaphore(describer.concurrency + BUILT_AHEAD)  # requests built and not yet answered
        self.builders = ThreadPoolExecutor(BUILDER_THREADS, thread_name_prefix="openai-describer-build")
        self.inflight: dict[str, asyncio.Future] = {}  # identical requests in flight together share one call
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        self.clients = [
            httpx.AsyncClient(
                base_url=describer.base_url,
                headers=describer._headers,
                limits=limits,
                verify=describer._tls,
                timeout=httpx.Timeout(describer.timeout),
                follow_redirects=True,
            )  # a proxy moving the API
            for _ in range(-(-describer.concurrency // POOL_SIZE))
        ]

    def run(self, coroutine):
        """The coroutine's result, run on the session's loop; callable from any thread but the loop's own."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    @contextlib.asynccontextmanager
    async def connection(self):
        """A client with a free connection, for one request on the wire (the gate admits at most `concurrency`)."""
        slot = await self.slots.get()
        try:
            yield self.clients[slot // POOL_SIZE]
        finally:
            self.slots.put_nowait(slot)

    async def off_loop(self, function: Callable, *args):
        """`function(*args)` on a builder thread, awaited on the loop."""
        return await self.loop.run_in_executor(self.builders, partial(function, *args))

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def close_clients() -> None:
            for client in self.clients:
                await client.aclose()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_clients(), self.loop).result(timeout=5)
        self.builders.shutdown(wait=False, cancel_futures=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@register_describer(BACKEND)
class OpenAICompatDescriber:
    name = BACKEND
    # Batches from several threads at once share the session's loop and its one `concurrency` bound, so the
    # shard stream (pipeline/stream.py) keeps many groups in flight instead of one group of 32 at a time.
    concurrent_batches = True

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        overlay: bool = False,
        cache_dir: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        structured_output: str = "auto",
        max_image_side: int = 1024,
    ) -> None:
        if not model:
            raise UserError("the openai describer needs --model NAME (the model the server serves)")
        if concurrency < 1 or max_attempts < 1:
            raise UserError("--concurrency and the number of attempts must be at least 1")
        if max_image_side < 0:
            raise UserError("--max-image-side must be 0 (send full size) or a number of pixels")
        try:
            self.negotiation = Negotiation(structured_output)
        except ValueError as err:
            raise UserError(str(err)) from None
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.overlay = overlay
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_image_side = max_image_side
        self.usage = Usage()
        self._tls = None  # one TLS context for every client (loading CA certificates is slow)
        self._in_flight_limit = float(concurrency)  # AIMD state, kept from one batch to the next
        self.lowest_in_flight = concurrency  # the narrowest the in-flight limit has been
        self._connection_failures = 0  # records in a row that found no server
        self._stopped: ServerStop | None = None  # set when the build must stop; every pending request ends
        self._session_lock = threading.Lock()
        self._session_: _Session | None = None
        self._active_calls = 0  # batches running now (from any thread): a stop is reset only when none is
        key = os.environ.get(api_key_env, "")
        self._has_key = bool(key)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._cache_dir = cache_dir
        self._cache = None

    @property
    def cache(self):
        """The request cache, opened on first use: building the describer (and its preflight) creates no folder."""
        if self._cache is None and self._cache_dir is not None:
            self._cache = open_cache(self._cache_dir)
        return self._cache

    def _session(self) -> _Session:
        with self._session_lock:
            if self._session_ is None:
                import httpx

                if self._tls is None:
                    self._tls = httpx.create_ssl_context()
                self._session_ = _Session(self)
            return self._session_

    def close(self) -> None:
        """End the event loop thread and its connections (a new batch starts them again)."""
        with self._session_lock:
            session, self._session_ = self._session_, None
        if session is not None:
            session.close()

    def __del__(self) -> None:
        session = getattr(self, "_session_", None)
        if session is not None and session.loop.is_running():
            session.loop.call_soon_threadsafe(session.loop.stop)

    def __getstate__(self) -> dict[str, Any]:  # a loop thread, its clients and a lock do not travel
        state = self.__dict__.copy()
        state.update(_session_=None, _session_lock=None, _cache=None, _tls=None, _active_calls=0)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the headers (the key)
        return f"OpenAICompatDescriber(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def batch_size(self) -> int:
        """Records the pipeline should hand over at once: enough to keep every connection busy."""
        return max(32, 2 * self.concurrency)

    @property
    def structured_output(self) -> str:
        """The output mode requests are asked in now: json_schema, json_object or none."""
        return self.negotiation.mode

    # ------------------------------------------------------------ public API
    def preflight(self) -> dict[str, Any]:
        """Check, before a build touches its output folder, that this server can serve it (UserError if not);
        what was found: the output mode negotiated and what the vision check saw."""
        from medtrinity.describe.preflight import check_server

        self._stopped, self._connection_failures = None, 0
        return check_server(self)

    def describe(self, sample: Sample) -> Description:
        result = self.describe_batch([sample])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def describe_batch(self, samples: list[Sample]) -> list[Description | BaseException]:
        """One Description per sample, or the StageError that sample failed with (in order). Raises a
        ServerStop (a UserError) when the server cannot serve any record."""
        jobs = [_Job(partial(self._first_messages, sample), prompt_versions()) for sample in samples]
        return self._answers(jobs)

    def repair_batch(self, items: list[tuple[Sample, list[Check]]]) -> list[Description | BaseException]:
        """Ask once more for each sample, naming its failed checks after the model's own first answer."""
        jobs = [
            _Job(partial(self._repair_messages, sample, failed), prompt_versions(repaired=True), repaired=True)
            for sample, failed in items
        ]
        return self._answers(jobs)

    def label(self, answer: _Answer, repaired: bool) -> str:
        """The record's `describer`: backend, model, prompt version(s), output mode, and any shrinking."""
        text = f"{describer_label(BACKEND, self.model, repaired=repaired)} output={answer.mode}"
        return text + (f" shrunk={answer.shrunk}" if answer.shrunk else "")

    # ------------------------------------------------------------ requests
    def _first_messages(self, sample: Sample, shrink: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        if sample.pixels is None:
            raise StageError("the openai describer needs the image pixels, but none were loaded")
        side, shrunk = self.max_image_side, None
        if shrink:  # after a context overflow: half the image side (not below SHRUNK_MIN_SIDE), one passage
            longest = max(
                fitted_size(
                    sample.width or sample.pixels.shape[1], sample.height or sample.pixels.shape[0], self.max_image_side
                )
            )
            side = max(SHRUNK_MIN_SIDE, longest // 2) if longest > SHRUNK_MIN_SIDE else self.max_image_side
            passages = sample.knowledge[:1]
            if side == self.max_image_side and len(passages) == len(sample.knowledge):
                return [], None  # nothing to make smaller
            sample = dataclasses.replace(sample, knowledge=passages)
        image = image_payload(sample, side, self.overlay)
        if shrink:
            shrunk = f"image:{image.width}x{image.height},passages:{len(sample.knowledge)}"
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image.data_url}},
                    {"type": "text", "text": render_prompt(sample, overlay=self.overlay)},
                ],
            },
        ], shrunk

    def _repair_messages(self, sample: Sample, failed: list[Check], shrink: bool = False):
        messages, shrunk = self._first_messages(sample, shrink)
        if shrink and shrunk is None:
            return [], None
        return messages + [
            {"role": "assistant", "content": previous_answer_json(sample)},
            {"role": "user", "content": render_repair_prompt(failed)},
        ], shrunk

    def _answers(self, jobs: list[_Job]) -> list[Description | BaseException]:
        answers = self._run_batch(jobs)
        return [
            answer
            if isinstance(answer, BaseException)
            else description_or_error(answer.reply, self.label(answer, job.repaired))
            for job, answer in zip(jobs, answers, strict=True)
        ]

    def _run_batch(self, jobs: list[_Job]) -> list[_Answer | BaseException]:
        """The answers of one batch on the worker's session; a stop of the server or a user error is raised."""
        if not jobs:
            return []
        session = self._session()
        with self._session_lock:
            if self._active_calls == 0:  # a stop ends the batches of its time; a new batch starts afresh
                self._stopped = None
                session.loop.call_soon_threadsafe(session.stop_event.clear)
            self._active_calls += 1
        try:
            answers = session.run(self._run_jobs(session, jobs))
        finally:
            with self._session_lock:
                self._active_calls -= 1
        if self._stopped is not None:  # the first cause, not whichever request noticed last
            raise self._stopped
        for answer in answers:
            if isinstance(answer, UserError):
                raise answer
        return answers

    async def _run_jobs(self, session: _Session, jobs: list[_Job]) -> list[_Answer | BaseException]:
        async def run(job: _Job) -> _Answer:
            async with session.building:
                self._raise_if_stopped()
                request = await session.off_loop(self._build, job, False)  # may raise StageError: the record's result
                return await self._job_answer(session, job, request)

        try:
            return list(await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True))
        finally:
            self._in_flight_limit = session.gate.limit
            self.lowest_in_flight = min(self.lowest_in_flight, session.gate.lowest)

    def _build(self, job: _Job, shrink: bool) -> _Request | None:
        """The job's request (None when shrinking finds nothing to make smaller), with its cache key for the
        output mode of now hashed here, off the loop."""
        messages, shrunk = job.build(shrink)
        if shrink and shrunk is None:
            return None
        request = _Request(messages, shrunk)
        if self._cache_dir is not None:
            self._key(job, request, self.negotiation.mode)
        return request

    async def _job_answer(self, session: _Session, job: _Job, request: _Request) -> _Answer:
        try:
            return await self._cached_call(job, request, session.inflight)
        except ContextOverflow as overflow:
            fix = "start the server with a larger context (llama-server -c N, vLLM --max-model-len N)"
            smaller = await session.off_loop(self._build, job, True)
            if smaller is None:
                raise ContextOverflow(f"{overflow}: {fix}") from None
            self.usage.shrunk += 1
            try:
                return await self._cached_call(job, smaller, session.inflight)
            except ContextOverflow as again:
                raise ContextOverflow(f"{again}, even with the request shrunk ({smaller.shrunk}): {fix}") from None

    def _key(self, job: _Job, request: _Request, mode: str) -> str:
        if mode not in request.keys:
            inputs = {
                "messages": request.messages,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "structured_output": mode,
            }
            request.keys[mode] = request_key(BACKEND, self.model, job.prompt_version, inputs)
        return request.keys[mode]

    async def _cached_call(self, job: _Job, request: _Request, inflight: dict[str, asyncio.Future]) -> _Answer:
        mode = self.negotiation.mode
        key = self._key(job, request, mode) if self.cache is not None else None
        if key is not None and (hit := self.cache.get_reply(key)) is not None:
            self.usage.cache_hits += 1
            return _Answer(hit, mode, request.shrunk)
        if key is not None:
            if key in inflight:  # the same request is already on its way: wait for its answer, pay once
                self.usage.cache_hits += 1
                return await asyncio.shield(inflight[key])
            pending = inflight[key] = asyncio.get_running_loop().create_future()
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved" noise
            try:
                answer = await self._paid_call(job, request)
            except BaseException as err:
                pending.set_exception(err)
                raise
            else:
                pending.set_result(answer)
            finally:
                del inflight[key]  # answered (and cached): later identical requests read the cache
            return answer
        return await self._paid_call(job, request)

    async def _paid_call(self, job: _Job, request: _Request) -> _Answer:
        def cached(mode: str) -> Reply | None:  # after a step down, the answer in the new mode may be known already
            return None if self.cache is None else self.cache.get_reply(self._key(job, request, mode))

        reply, mode, from_cache = await self._call_with_retries(request.messages, cached)
        if from_cache:
            self.usage.cache_hits += 1
            return _Answer(reply, mode, request.shrunk)
        self.usage.add_tokens(reply)
        # Not cached when it fails: a fixed server is asked again.
        check_prompt_received(reply.prompt_tokens, request.messages)
        if self.cache is not None:
            self.cache.put_reply(
                self._key(job, request, mode),
                reply,
                backend=BACKEND,
                model=self.model,
                prompt_version=job.prompt_version,
            )
        return _Answer(reply, mode, request.shrunk)

    def _body(self, messages: list[dict[str, Any]], mode: str, max_tokens: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature,
        }
        fmt = response_format(mode)
        if fmt is not None:
            body["response_format"] = fmt
        return body

    # ------------------------------------------------------------ stopping
    def _stop(self, stop: ServerStop) -> ServerStop:
        if self._stopped is None:
            self._stopped = stop
        session = self._session_
        if session is not None:  # every request waiting for a slot, a retry or an answer ends at once
            session.loop.call_soon_threadsafe(session.stop_event.set)
        return self._stopped

    def _raise_if_stopped(self) -> None:
        if self._stopped is not None:
            raise self._stopped

    async def _pause(self, seconds: float) -> None:
        """Sleep before a retry, but wake at once when the build is stopping."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._session_.stop_event.wait(), seconds)

    def unfit(self, reason: str) -> ServerUnfit:
        return ServerUnfit(
            f"{self.base_url}: {reason}{missing_key_note(self.base_url, self.api_key_env, self._has_key)}"
        )

    async def _call_with_retries(
        self,
        messages: list[dict[str, Any]],
        cached: Callable[[str], Reply | None] | None = None,
    ) -> tuple[Reply, str, bool]:
        """(reply, the output mode it was asked in, whether it came from the cache after a step down)."""
        import httpx

        attempt, reason, connection_failed = 0, "", False
        looked_up = self.negotiation.mode  # the mode the caller found no cached answer in
        while attempt < self.max_attempts:
            self._raise_if_stopped()
            attempt += 1
            if attempt > 1:
                self.usage.retries += 1
            wait: float | None = None
            response, connection_failed = None, False
            async with self._session_.gate.slot() as epoch, self._session_.connection() as client:
                self._raise_if_stopped()  # the server may have stopped the build while this one waited
                mode = self.negotiation.mode
                if mode != looked_up:  # another request's refusal stepped the mode down meanwhile
                    if cached is not None and (hit := cached(mode)) is not None:
                        return hit, mode, True
                    looked_up = mode
                body = self._body(messages, mode)
                self.usage.requests += 1
                try:
                    # httpx's timeout bounds each read; wait_for bounds the whole call (a server trickling bytes).
                    response = await asyncio.wait_for(client.post("/chat/completions", json=body), self.timeout)
                except (TimeoutError, httpx.TimeoutException) as err:
                    connection_failed = isinstance(err, httpx.ConnectTimeout)
                    self._session_.gate.congested(epoch)
                    reason = f"no answer within {self.timeout:g} s"
                except httpx.TransportError as err:
                    connection_failed = True
                    reason = f"connection to {self.base_url} failed ({type(err).__name__})"
            if response is not None:
                self._connection_failures = 0
                status = response.status_code
                if status == 200:
                    self._session_.gate.answered()
                    try:
                        return _reply_from_json(response.json()), mode, False
                    except ValueError:
                        raise StageError(f"the server's reply is not JSON: {_snippet(response.text)!r}") from None
                refusal = classify(status, response.text, self.model, asked_structured=mode != "none")
                if refusal.kind == "structured_output":
                    try:
                        self.negotiation.refused(mode, refusal.reason)  # the next mode: a request, not a retry
                    except ServerUnfit as stop:  # a mode the user chose
                        raise self._stop(self.unfit(str(stop))) from None
                    attempt -= 1  # the same attempt in the next mode (whose answer may be cached: see above)
                    continue
                if refusal.kind == "context":
                    raise ContextOverflow(refusal.reason)
                if refusal.kind == "request":
                    raise StageError(refusal.reason)
                if refusal.kind == "unfit":
                    raise self._stop(self.unfit(refusal.reason))
                reason = refusal.reason
                if status == 429:
                    self._session_.gate.congested(epoch)
                    wait = retry_after_seconds(response.headers.get("retry-after"))
            if attempt < self.max_attempts:
                await self._pause(wait if wait is not None else backoff_delay(attempt, self.backoff, self.max_backoff))
        if connection_failed:
            self._connection_failures += 1
            if self._connection_failures >= STOP_AFTER_CONNECTION_FAILURES:
                raise self._stop(
                    ServerGone(
                        f"the model server at {self.base_url} stopped answering: {self._connection_failures} requests in "
                        f"a row could not connect ({reason}); start it again"
                    )
                )
        raise TransientError(f"model call failed after {self.max_attempts} attempts: {reason}")


def prompt_chars(messages: list[dict[str, Any]]) -> int:
    """Characters of text in the messages (the image not counted)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if part.get("type") == "text")
    return total


def check_prompt_received(prompt_tokens: int, messages: list[dict[str, Any]]) -> None:
    """StageError when the server counted far fewer prompt tokens than the text alone needs (0: not reported)."""
    chars = prompt_chars(messages)
    if 0 < prompt_tokens < chars // MAX_CHARS_PER_TOKEN:
        raise StageError(
            f"the server did not receive the prompt: it counted {prompt_tokens} prompt tokens for {chars} characters "
            "of text (its chat template drops list-form message content; see docs/BACKENDS.md)"
        )
