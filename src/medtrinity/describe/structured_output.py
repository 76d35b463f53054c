"""Structured output, negotiated per server: json_schema, then json_object with the schema, then plain text.

Servers differ: OpenAI, vLLM, SGLang, llama-server and recent Ollama take `response_format: json_schema`;
llama-cpp-python refuses it (HTTP 500, "Input should be 'text' or 'json_object'") but constrains
`{"type": "json_object", "schema": …}` with a grammar. In `auto` the client starts with the strictest mode and
steps down each time the server refuses one (learned from the preflight probe or from a refusal during the
build); the prompt asks for the same JSON in every mode, so plain text still parses. A mode the user chose
explicitly is never changed: its refusal stops the build.
"""

from __future__ import annotations

import threading
from typing import Any

from medtrinity.describe.prompting import ANSWER_SCHEMA
from medtrinity.describe.server_errors import ServerUnfit

MODES = ("json_schema", "json_object", "none")  # strictest first
CHOICES = ("auto", *MODES)
SCHEMA_NAME = "multigranular_description"


def response_format(mode: str) -> dict[str, Any] | None:
    """The `response_format` field a request in `mode` carries (None: the field is left out)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": ANSWER_SCHEMA, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object", "schema": ANSWER_SCHEMA}  # llama.cpp servers constrain to the schema
    return None


class Negotiation:
    """The output mode requests use now; shared by every request of one client (thread-safe)."""

    def __init__(self, choice: str = "auto") -> None:
        if choice not in CHOICES:
            raise ValueError(f"structured output must be one of {', '.join(CHOICES)}, got {choice!r}")
        self.choice = choice
        self.mode = MODES[0] if choice == "auto" else choice
        self._lock = threading.Lock()

    def refused(self, mode: str, message: str) -> str:
        """The server refused `mode` (its message given): the mode to ask in next. An explicit choice stops."""
        if self.choice != "auto":
            raise ServerUnfit(
                f"the server refuses structured output {mode} ({message}): use --structured-output "
                "auto to let medtrinity find a mode it accepts"
            )
        with self._lock:
            if self.mode == mode and mode != MODES[-1]:  # another request may have stepped down already
                self.mode = MODES[MODES.index(mode) + 1]
            return self.mode
