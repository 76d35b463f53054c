"""The describer's OpenAI-compatible client, asked for plain-text answers to messages an evaluation builds.

`eval alignment --judge llm` and `eval answer` reuse everything the `openai` describer does per request —
concurrency with back-off when the server is full, retries with Retry-After, the request cache, the shrink
after a context overflow, the preflight (server reachable, model listed, images reach the model) and the
one-line stop when the server cannot serve — and only change what is sent: their own messages, in plain-text
mode (no JSON schema), and their replies come back as text, not as descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medtrinity.describe.base import Reply
from medtrinity.describe.openai_compat import OpenAICompatDescriber, _Job
from medtrinity.records import Sample


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    prompt_version: str  # part of the cache key: a changed prompt is a new request


class ChatClient(OpenAICompatDescriber):
    """Send prepared chat requests; one Reply (or the exception that request ended with) per request."""

    def __init__(self, probe_messages, **options) -> None:
        super().__init__(structured_output="none", **options)
        self._probe_messages = probe_messages  # Sample -> messages: the preflight's request in this command's form

    def _first_messages(self, sample: Sample, shrink: bool = False):
        """Only the preflight calls this (with its test image): the request this command sends, for that image."""
        return self._probe_messages(sample), None

    def ask(self, requests: list[ChatRequest]) -> list[Reply | BaseException]:
        # nothing to shrink after a context overflow: the request is refused with the server's reason
        jobs = [
            _Job(lambda shrink, r=request: (r.messages, None) if not shrink else ([], None), request.prompt_version)
            for request in requests
        ]
        answers = self._run_batch(jobs)  # the describer's batch, without turning replies into descriptions
        return [answer if isinstance(answer, BaseException) else answer.reply for answer in answers]
