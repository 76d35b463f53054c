"""The Describer protocol and the registry of describer backends, looked up by name.

Backend modules are imported only when asked for (a name -> module table), so `import medtrinity` stays
light and a new backend (openai, transformers) is one new file plus one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from medtrinity.errors import UserError
from medtrinity.records import Description, Sample

# name -> module that registers it when imported
BACKEND_MODULES: dict[str, str] = {
    "grounded": "medtrinity.describe.grounded",
    "openai": "medtrinity.describe.openai_compat",
    "transformers": "medtrinity.describe.transformers_local",
}

_REGISTRY: dict[str, Callable[..., Any]] = {}


@runtime_checkable
class Describer(Protocol):
    name: str

    def describe(self, sample: Sample) -> Description:
        """Write the five attributes and the paragraph; raise StageError with a readable reason if it cannot."""
        ...


def register_describer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class (or factory) decorator: `get_describer(name, **options)` calls it with the options."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = factory
        return factory

    return decorate


def describer_names() -> list[str]:
    """Every describer a user can ask for: the registered ones and those whose module is known."""
    return sorted(set(BACKEND_MODULES) | set(_REGISTRY))


def _load_backend(name: str) -> None:
    module = BACKEND_MODULES.get(name)
    if module is None or name in _REGISTRY:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name == module:  # the backend file is not there (yet)
            raise UserError(f"describer {name!r} is not available in this installation") from error
        raise UserError(f"describer {name!r} needs the missing package {error.name!r}") from error


def get_describer(name: str, **options: Any) -> Describer:
    if name not in describer_names():
        raise UserError(f"unknown describer {name!r}; known describers: {', '.join(describer_names())}")
    _load_backend(name)
    if name not in _REGISTRY:
        raise UserError(f"describer module for {name!r} did not register it")
    try:
        return _REGISTRY[name](**options)
    except TypeError as error:
        raise UserError(f"bad options for describer {name!r}: {error}") from error


@dataclass
class Usage:
    """What a model backend spent: calls made, calls answered from the cache, retries, tokens, and requests
    made smaller after the server's context overflowed."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    shrunk: int = 0

    def add_tokens(self, reply: Reply) -> None:
        """Count the tokens of a reply the model was paid for (not of one served from the cache)."""
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Reply:
    """One finished model answer (from the model or the request cache)."""

    content: str
    finish_reason: str | None  # "stop", or "length" when the answer hit the token limit
    prompt_tokens: int = 0
    completion_tokens: int = 0
