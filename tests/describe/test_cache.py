"""The request cache: keys change with every input, answers survive reopening, several processes can write."""

from __future__ import annotations

import subprocess
import sys

from medtrinity.describe.base import Reply
from medtrinity.describe.cache import CACHE_FILE, RequestCache, open_cache, request_key

INPUTS = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "describe"},
            ],
        }
    ],
    "max_tokens": 512,
}


def test_the_key_depends_on_backend_model_prompt_version_and_every_input():
    key = request_key("openai", "m", "v1", INPUTS)
    assert key == request_key("openai", "m", "v1", dict(reversed(list(INPUTS.items()))))  # order-free
    other_image = {
        **INPUTS,
        "messages": [
            {
                **INPUTS["messages"][0],
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAB"}},
                    {"type": "text", "text": "describe"},
                ],
            }
        ],
    }
    variants = [
        request_key("transformers", "m", "v1", INPUTS),
        request_key("openai", "m2", "v1", INPUTS),
        request_key("openai", "m", "v2", INPUTS),
        request_key("openai", "m", "v1", {**INPUTS, "max_tokens": 513}),
        request_key("openai", "m", "v1", other_image),
    ]
    assert len({key, *variants}) == 6 and len(key) == 64


def test_answers_and_usage_survive_reopening(tmp_path):
    cache = RequestCache(tmp_path / "cache")
    key = request_key("openai", "m", "v1", INPUTS)
    assert cache.get(key) is None
    cache.put(
        key,
        backend="openai",
        model="m",
        prompt_version="v1",
        answer='{"description": "x"}',
        finish_reason="stop",
        prompt_tokens=120,
        completion_tokens=30,
    )
    cache.close()
    reopened = RequestCache(tmp_path / "cache")
    hit = reopened.get(key)
    assert (hit.answer, hit.finish_reason, hit.prompt_tokens, hit.completion_tokens) == (
        '{"description": "x"}',
        "stop",
        120,
        30,
    )
    assert len(reopened) == 1 and (tmp_path / "cache" / CACHE_FILE).is_file()
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_reply_put_is_the_reply_got_back_and_no_folder_means_no_cache(tmp_path):
    cache = open_cache(tmp_path / "cache")
    key = request_key("transformers", "m", "v1", INPUTS)
    assert cache.get_reply(key) is None
    reply = Reply('{"description": "y"}', "length", prompt_tokens=7, completion_tokens=3)
    cache.put_reply(key, reply, backend="transformers", model="m", prompt_version="v1")
    assert cache.get_reply(key) == reply and cache.get(key).answer == '{"description": "y"}'
    assert open_cache(None) is None


_WRITER = """
import sys
from medtrinity.describe.cache import RequestCache, request_key
folder, worker = sys.argv[1], int(sys.argv[2])
cache = RequestCache(folder)
for i in range(60):
    key = request_key("openai", "m", "v1", {"worker": worker, "i": i})
    cache.put(key, backend="openai", model="m", prompt_version="v1", answer=f"{worker}-{i}", finish_reason="stop")
"""


def test_several_processes_write_at_once_without_losing_an_answer(tmp_path):
    folder = str(tmp_path / "cache")
    RequestCache(folder).close()
    workers = [subprocess.Popen([sys.executable, "-c", _WRITER, folder, str(w)]) for w in range(3)]
    assert [p.wait(60) for p in workers] == [0, 0, 0]
    cache = RequestCache(folder)
    assert len(cache) == 180
    assert cache.get(request_key("openai", "m", "v1", {"worker": 2, "i": 59})).answer == "2-59"
