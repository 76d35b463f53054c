"""The `openai` describer against the real llama-cpp-python server (slow: run with MEDTRINITY_SLOW=1).

The server runs a tiny llama GGUF and a tiny LLaVA projector written by tests/fixtures/tiny_gguf.py, with the
llava-1-5 chat format, as a user would start it for a LLaVA model. It refuses `json_schema` with HTTP 500 (a
validation error): the build must negotiate `json_object`, and every record must be written or quarantined for
what its answer says (a random model's text is rarely valid JSON), none lost to retries of that 500.

The server needs `llama-cpp-python[server]` and `gguf` (building llama-cpp-python takes ~12 minutes), so it may
live in a virtualenv of its own: MEDTRINITY_LLAMA_PYTHON names that Python (default: this one). See
docs/BACKENDS.md, "Running the llama-cpp-python slow test".
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SERVER_START_S = 120.0
CONTENT_REASONS = (
    "answer is empty",
    "answer is truncated",
    "answer is not JSON",
    "description contradicts",
    "description still contradicts",
)


def _server_python() -> str:
    """The Python that runs llama-cpp-python's server, or a skip saying what is missing."""
    if os.environ.get("MEDTRINITY_SLOW") != "1":
        pytest.skip("slow test (starts llama-cpp-python's server): set MEDTRINITY_SLOW=1")
    python = os.environ.get("MEDTRINITY_LLAMA_PYTHON") or sys.executable
    found = subprocess.run(
        [python, "-c", "import llama_cpp.server.app, gguf; print(llama_cpp.__version__)"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        pytest.skip(
            f"{python} cannot import llama_cpp.server and gguf: pip install 'llama-cpp-python[server]' gguf "
            "there, or point MEDTRINITY_LLAMA_PYTHON at a Python that has them"
        )
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory):
    """(base_url, model name) of a running llama-cpp-python server with the tiny model and projector."""
    import httpx

    python = _server_python()
    folder = tmp_path_factory.mktemp("llama-cpp")
    written = subprocess.run([python, str(FIXTURES / "tiny_gguf.py"), str(folder)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    model, mmproj = written.stdout.split()
    port = _free_port()
    log = folder / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                python,
                "-m",
                "llama_cpp.server",
                "--model",
                model,
                "--clip_model_path",
                mmproj,
                "--chat_format",
                "llava-1-5",
                "--n_ctx",
                "8192",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama-cpp-python's server exited ({server.returncode}):\n{_log_tail(log)}")
            try:
                listed = httpx.get(f"{base_url}/models", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(f"llama-cpp-python's server did not answer in {SERVER_START_S:g} s:\n{_log_tail(log)}")
                time.sleep(0.5)
        # the name the server lists (the model path, unless --model_alias): what a user passes as --model
        yield base_url, listed["data"][0]["id"], log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _rows(out: Path, folder: str) -> list[dict]:
    return [r for p in sorted((out / folder).glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_a_build_on_llama_cpp_python_negotiates_json_object_and_loses_no_record_to_retries(llama_cpp_server, tmp_path):
    from fixtures.kvasir_seg import make_kvasir_seg
    from fixtures.tiny_gguf import IMAGE_TOKENS

    from medtrinity.pipeline.config import BuildConfig
    from medtrinity.pipeline.runner import run_build

    base_url, model, log = llama_cpp_server
    source = make_kvasir_seg(tmp_path / "kvasir")
    config = BuildConfig(
        sources=[f"kvasir-seg:{source}"],
        out=str(tmp_path / "out"),
        describer="openai",
        base_url=base_url,
        model=model,
        concurrency=2,
        max_tokens=48,
        request_timeout=120,
        max_attempts=3,
        retry_backoff=0.1,
        on_contradiction="quarantine",
    )
    manifest = run_build(config, show_progress=False)
    out = tmp_path / "out"
    written, quarantined = _rows(out, "data"), _rows(out, "quarantine")

    # the preflight's json_schema probe got the 500, and json_object was used from then on
    assert manifest["describer"]["structured_output"] == "json_object"
    # the projector's 16 image tokens reached the model (a 64x64 test image is resized to the encoder's 32x32),
    # plus one: the text after the image is tokenized as a chunk of its own, which SentencePiece starts with "▁"
    vision = manifest["describer"]["vision"]
    assert vision.startswith(f"checked: a 64x64 test image added {IMAGE_TOKENS + 1} prompt tokens"), vision
    server_log = log.read_text(errors="replace")
    assert "Input should be 'text' or 'json_object'" in server_log
    # the server's own access log: one 500 (the json_schema probe), then 2 probes and 5 records, all answered
    statuses = re.findall(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})', server_log)
    assert statuses == ["500"] + ["200"] * 7, statuses

    totals = manifest["totals"]
    assert totals["seen"] == 5 and totals["seen"] == totals["written"] + totals["quarantined"]
    assert len(written) + len(quarantined) == 5
    # one request per record, none retried; nothing quarantined for a reason a retry could pass
    usage = manifest["describer_usage"]
    assert (usage["requests"], usage["retries"]) == (5, 0), usage
    assert manifest["quarantined_transient"] == 0
    label = f"openai:{model} prompt=multigranular-v1 output=json_object"
    assert all(r["describer"] == label for r in written)
    for row in quarantined:
        assert row["transient"] is False, row
        assert row["reason"].startswith(CONTENT_REASONS), row["reason"]
        assert "HTTP 500" not in row["reason"] and "attempts" not in row["reason"]
        if row["reason"].startswith("answer is truncated"):  # the grammar held the answer to the schema's form
            assert re.search(r"after '\{\s*\"modality\":", row["reason"]), row["reason"]
    assert usage["prompt_tokens"] > 5 * 1000  # every prompt arrived whole (the tokenizer: ~1 token a character)
