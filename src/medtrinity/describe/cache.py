"""The request cache: a finished model call is never made twice (re-run, --resume, several workers).

One SQLite file in the build's `cache/` folder. The key is a SHA-256 over the backend, the model, the prompt
version and every input of the request (messages with the image bytes, sampling settings), so any change to
what the model would see is a new key. WAL mode and a busy timeout let several worker processes read and
write at once; each put is its own short transaction, so a killed run loses at most the calls in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtrinity.describe.base import Reply

CACHE_FILE = "requests.sqlite"
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    answer TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CachedAnswer:
    answer: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


def request_key(backend: str, model: str, prompt_version: str, inputs: Any) -> str:
    """SHA-256 of everything that decides the answer; `inputs` is any JSON-able value (bytes as base64 text)."""
    blob = json.dumps(
        {"backend": backend, "model": model, "prompt_version": prompt_version, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def open_cache(folder: str | Path | None) -> RequestCache | None:
    """The request cache in `folder`, or None (every call is made) when no folder is given."""
    return None if folder is None else RequestCache(folder)


class RequestCache:
    """Thread-safe within a process (one connection, one lock); process-safe through SQLite's WAL."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer, finish_reason, prompt_tokens, completion_tokens FROM answers WHERE key = ?", (key,)
            ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(
        self,
        key: str,
        *,
        backend: str,
        model: str,
        prompt_version: str,
        answer: str,
        finish_reason: str | None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    backend,
                    model,
                    prompt_version,
                    answer,
                    finish_reason,
                    int(prompt_tokens),
                    int(completion_tokens),
                    time.time(),
                ),
            )

    def get_reply(self, key: str) -> Reply | None:
        """The cached answer as the Reply a backend works with, or None."""
        hit = self.get(key)
        return None if hit is None else Reply(hit.answer, hit.finish_reason, hit.prompt_tokens, hit.completion_tokens)

    def put_reply(self, key: str, reply: Reply, *, backend: str, model: str, prompt_version: str) -> None:
        self.put(
            key,
            backend=backend,
            model=model,
            prompt_version=prompt_version,
            answer=reply.content,
            finish_reason=reply.finish_reason,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
        )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
