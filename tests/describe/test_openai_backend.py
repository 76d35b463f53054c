"""The `openai` describer against a real chat-completions server on 127.0.0.1, scripted per request."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fixtures.chat_server import (
    ChatServer,
    Scripted,
    completion,
    prompt_text,
    prompt_tokens,
)
from fixtures.image_mask import lesion_box, make_image_mask_dataset
from PIL import Image

from medtrinity.describe.base import get_describer
from medtrinity.errors import StageError, UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build
from medtrinity.records import ROI, Origin, Position, Sample

KEY_VAR, KEY = "MEDTRINITY_TEST_API_KEY", "sk-test-do-not-leak-4711"
_FACTS = re.compile(r'position "([\w-]+) ([\w-]+)", covering ([\d.]+)%')


def answer_json(text: str, side_sentence: str | None = None) -> str:
    """A good answer built from the ROI facts in the prompt, or one that puts the mass on a given side."""
    vertical, horizontal, area = _FACTS.search(text).groups()
    where = side_sentence or f"in the {vertical} {horizontal} region of the image, covering {area}% of the image"
    return json.dumps(
        {
            "modality": "This is an ultrasound image of the breast.",
            "structures": "Breast tissue with one marked mass.",
            "roi": f"The mass lies {where}.",
            "texture": "The mass is hypoechoic and homogeneous with a sharp margin.",
            "local_global": "The mass is surrounded by breast tissue that appears undisturbed.",
            "description": f"This ultrasound image of the breast shows one region of interest: a hypoechoic mass {where}.",
        }
    )


def case_of(text: str) -> int:
    for i in range(8):
        if "box [{}]".format(", ".join(map(str, lesion_box(i)))) in text:
            return i
    raise AssertionError("no known lesion box in the prompt")


class BuildScript:
    """Case i of the toy dataset: 0 wrong side then repaired, 1 wrong side twice, 2 good (in a fence),
    3 slow once, 4 429 + Retry-After once, 5 500 once, 6 not JSON, 7 truncated."""

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}
        self.answered_tokens: list[int] = []  # prompt tokens of the answers the client received

    def __call__(self, body: dict, headers: dict) -> Scripted:
        text = prompt_text(body)
        if is_probe(body):  # the preflight's test requests: the server is fine
            return Scripted(body=completion("{", finish_reason="length", completion_tokens=1))
        case = case_of(text)
        answer = self.answer(body, text, case)
        if answer.status == 200 and not answer.delay:
            self.answered_tokens.append(prompt_tokens(body))
        return answer

    def answer(self, body: dict, text: str, case: int) -> Scripted:
        self.calls[case] = n = self.calls.get(case, 0) + 1
        repair = any(m["role"] == "assistant" for m in body["messages"])
        wrong = answer_json(text, "on the right side of the image")
        if case == 0:
            return Scripted(body=completion(answer_json(text) if repair else wrong))
        if case == 1:
            return Scripted(body=completion(wrong))
        if case == 2:
            return Scripted(body=completion("Here is the JSON:\n```json\n" + answer_json(text) + "\n```\nDone."))
        if case == 3 and n == 1:
            return Scripted(body=completion(answer_json(text)), delay=1.0)
        if case == 4 and n == 1:
            return Scripted(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"})
        if case == 5 and n == 1:
            return Scripted(status=500, body={"error": {"message": "boom"}})
        if case == 6:
            return Scripted(body=completion("Sure, the image shows a mass somewhere near the middle."))
        if case == 7:
            return Scripted(body=completion('{"modality": "This is an ultrasound', finish_reason="length"))
        return Scripted(body=completion(answer_json(text)))


def is_probe(body: dict) -> bool:
    """A preflight request: the real prompt for a test image with no region, asking for one token."""
    return body["max_tokens"] == 1 and "none were localised" in prompt_text(body)


def read(out: Path, folder: str) -> list[dict]:
    return [r for p in sorted((out / folder).glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_build_against_a_scripted_server_ends_every_record_and_the_rerun_is_served_from_the_cache(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_VAR, KEY)
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, 8)
    out = tmp_path / "out"
    script = BuildScript()
    with ChatServer(script) as server:

        def build(**extra) -> dict:
            config = BuildConfig(
                sources=[f"{recipe}:{root}"],
                out=str(out),
                describer="openai",
                model="test-model",
                base_url=server.url,
                api_key_env=KEY_VAR,
                concurrency=4,
                request_timeout=0.3,
                retry_backoff=0.05,
                max_attempts=4,
                **extra,
            )
            return run_build(config, show_progress=False)

        def build_requests() -> list[dict]:
            return [r for r in server.requests if not is_probe(r)]

        manifest = build()
        first_requests = len(build_requests())

        assert manifest["totals"] == {"seen": 8, "written": 5, "quarantined": 3}
        # the preflight: two probes (without and with the test image) before the build's requests
        assert [is_probe(r) for r in server.requests[:2]] == [True, True] and len(server.requests) == 15
        assert manifest["describer"]["structured_output"] == "json_schema"
        assert (
            manifest["describer"]["vision"]
            == f"checked: a 64x64 test image added 64 prompt tokens ({prompt_tokens(server.requests[0])} -> {prompt_tokens(server.requests[1])})"
        )
        # 8 first calls, 3 retries (slow, 429, 500), 2 repair calls
        assert first_requests == 13 and sum(script.calls.values()) == 13
        assert len(script.answered_tokens) == 10
        assert manifest["describer_usage"] == {
            "requests": 13,
            "cache_hits": 0,
            "retries": 3,
            "prompt_tokens": sum(script.answered_tokens),
            "completion_tokens": 200,
            "shrunk": 0,
        }
        assert all(h["authorization"] == f"Bearer {KEY}" for h in server.headers)
        assert all(r["response_format"]["type"] == "json_schema" for r in server.requests)
        # every first request carries the image as a PNG data URL: the exact stored pixels (no overlay)
        first = next(r for r in build_requests() if case_of(prompt_text(r)) == 2)
        url = first["messages"][1]["content"][0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        np.testing.assert_array_equal(sent, np.asarray(Image.open(root / "images" / "case002.png")))

        rows = {r["origin"]["file"]: r for r in read(out, "data")}
        assert sorted(rows) == [f"images/case{i:03d}.png" for i in (0, 2, 3, 4, 5)]
        for row in rows.values():
            assert all(c["ok"] for c in row["checks"]), row["checks"]
            assert row["attributes"]["texture"] == "The mass is hypoechoic and homogeneous with a sharp margin."
        assert rows["images/case000.png"]["describer"] == (
            "openai:test-model prompt=multigranular-v1+repair-v1 output=json_schema"
        )
        assert rows["images/case002.png"]["describer"] == "openai:test-model prompt=multigranular-v1 output=json_schema"
        assert "right side" not in rows["images/case000.png"]["description"]

        bad = {q["file"]: (q["stage"], q["reason"]) for q in read(out, "quarantine")}
        assert sorted(bad) == ["images/case001.png", "images/case006.png", "images/case007.png"]
        stage, reason = bad["images/case001.png"]
        assert stage == "verify"
        assert reason.startswith(
            "description still contradicts the record after one repair: side: "
            "text puts it on the image's right but mass is at "
        )
        assert bad["images/case006.png"] == (
            "describe",
            "answer is not JSON: 'Sure, the image shows a mass somewhere near the middle.'",
        )
        assert bad["images/case007.png"][0] == "describe"
        assert bad["images/case007.png"][1].startswith("answer is truncated: the model hit its token limit")

        # the repair request names the contradiction after the model's own wrong answer
        repair = next(r for r in build_requests() if case_of(prompt_text(r)) == 0 and len(r["messages"]) == 4)
        assert "on the right side of the image" in repair["messages"][2]["content"]
        assert "- side: text puts it on the image's right but mass is at top left" in repair["messages"][3]["content"]

        # the key is sent, never stored
        stored = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
        assert KEY.encode() not in stored

        rerun = build(overwrite=True)
        assert len(build_requests()) == first_requests  # not one request more (only the preflight's two)
        assert len(server.requests) == 15 + 2
        assert rerun["totals"] == manifest["totals"]
        assert rerun["describer_usage"] == {
            "requests": 0,
            "cache_hits": 10,
            "retries": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "shrunk": 0,
        }
        assert {q["file"]: (q["stage"], q["reason"]) for q in read(out, "quarantine")} == bad


# ---------------------------------------------------------------- the client on its own
def tiny_sample(i: int = 0) -> Sample:
    pixels = np.full((20, 30), 100, np.uint8)
    pixels[2:8, 3:10] = 30
    roi = ROI(bbox=[3, 2, 10, 8], label="nodule", source="annotation", position=Position("left", "top"), area_ratio=7.0)
    return Sample(
        id=f"s{i}",
        source="t",
        origin=Origin(file=f"f{i}.png"),
        modality="CT",
        organ="lung",
        width=30,
        height=20,
        pixels=pixels,
        rois=[roi],
    )


GOOD = json.dumps(
    {
        "modality": "CT",
        "structures": "lung",
        "roi": "a nodule",
        "texture": "dark",
        "local_global": "small",
        "description": "A CT image with one nodule.",
    }
)


def client(server: ChatServer, **kw):
    options = dict(model="m", base_url=server.url, api_key_env=KEY_VAR, timeout=0.5, backoff=0.01, max_attempts=3)
    return get_describer("openai", **{**options, **kw})


def test_a_call_that_keeps_failing_is_a_stage_error_after_the_last_attempt():
    with ChatServer(lambda body, headers: Scripted(status=503, body="overloaded")) as server:
        describer = client(server)
        (result,) = describer.describe_batch([tiny_sample()])
    assert isinstance(result, StageError)
    assert str(result) == "model call failed after 3 attempts: server error (HTTP 503): overloaded"
    assert (describer.usage.requests, describer.usage.retries) == (3, 2)


def test_an_unreachable_server_is_a_connection_failure_per_record():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    describer = get_describer("openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", backoff=0.01, max_attempts=2)
    results = describer.describe_batch([tiny_sample(0), tiny_sample(1)])
    assert [str(r) for r in results] == [
        f"model call failed after 2 attempts: connection to http://127.0.0.1:{port}/v1 failed (ConnectError)"
    ] * 2


def test_a_server_without_structured_output_steps_down_to_plain_mode_and_the_records_say_so():
    # Issue 17: json_schema, then json_object with the schema, then plain text (was: straight to plain text).
    def script(body, headers):
        if "response_format" in body:
            kind = body["response_format"]["type"]
            return Scripted(status=400, body={"error": {"message": f"response_format {kind} unsupported"}})
        return Scripted(body=completion(GOOD))

    with ChatServer(script) as server:
        describer = client(server)
        first = describer.describe(tiny_sample(0))
        second = describer.describe(tiny_sample(1))
        kinds = [r.get("response_format", {}).get("type") for r in server.requests]
    assert kinds == ["json_schema", "json_object", None, None]
    assert first.text == second.text == "A CT image with one nodule."
    assert first.describer == "openai:m prompt=multigranular-v1 output=none"
    assert describer.structured_output == "none" and describer.usage.retries == 0


def test_a_refused_key_stops_the_run_with_a_user_error_that_does_not_show_the_key(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    with ChatServer(lambda body, headers: Scripted(status=401, body={"error": "bad key"})) as server:
        with pytest.raises(UserError, match="refused the API key") as caught:
            client(server).describe_batch([tiny_sample()])
    assert KEY not in str(caught.value) and KEY not in repr(client(server))


def test_the_overlay_outlines_the_roi_on_the_copy_sent_and_leaves_the_sample_alone(tmp_path):
    with ChatServer(lambda body, headers: Scripted(body=completion(GOOD))) as server:
        sample = tiny_sample()
        before = sample.pixels.copy()
        client(server, overlay=True).describe(sample)
        content = server.requests[0]["messages"][1]["content"]
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(content[0]["image_url"]["url"].split(",", 1)[1]))))
    np.testing.assert_array_equal(sample.pixels, before)
    assert sent.shape == (20, 30, 3)
    assert tuple(sent[2, 5]) == (255, 0, 0) and tuple(sent[7, 9]) == (255, 0, 0)  # box edge
    assert tuple(sent[4, 6]) == (30, 30, 30) and tuple(sent[15, 20]) == (100, 100, 100)  # inside, outside
    assert "outlined in red" in content[1]["text"]


def test_requests_run_concurrently_up_to_the_bound_and_results_keep_their_order():
    import time

    def script(body, headers):
        label = re.search(r'ROI 1: "([^"]+)"', prompt_text(body)).group(1)
        return Scripted(body=completion(GOOD.replace("one nodule", label)), delay=0.2)

    samples = [tiny_sample(i) for i in range(9)]
    for i, sample in enumerate(samples):
        sample.rois[0].label = f"nodule{i}"
    with ChatServer(script) as server:
        describer = client(server, concurrency=3, timeout=5)
        started = time.monotonic()
        results = describer.describe_batch(samples)
        elapsed = time.monotonic() - started
    assert [r.text for r in results] == [f"A CT image with nodule{i}." for i in range(9)]
    assert 0.6 <= elapsed < 1.5  # three waves of three, not nine in a row (1.8 s) nor all at once (0.2 s)


def test_repair_is_quarantine_for_the_deterministic_describer_and_keep_keeps_failed_checks():
    from medtrinity.pipeline.stages import VerifyStage

    grounded = get_describer("grounded")
    wrong = tiny_sample()
    wrong.description = "A CT image with one nodule on the right side of the image."
    stage = VerifyStage("repair", grounded)
    assert not hasattr(stage, "process_batch")
    with pytest.raises(
        StageError, match="^description contradicts the record: side: text puts it on the image's right"
    ):
        stage(wrong)
    kept = VerifyStage("keep", grounded)(wrong)
    assert [c.name for c in kept.checks if not c.ok] == ["side"]


def test_replies_with_odd_types_become_readable_reasons_or_are_ignored():
    from medtrinity.describe.openai_compat import _reply_from_json
    from medtrinity.errors import StageError

    with pytest.raises(StageError, match="the server's answer is a int, not text"):
        _reply_from_json({"choices": [{"message": {"content": 5}}]})
    with pytest.raises(StageError, match="the server's answer is a dict, not text"):
        _reply_from_json({"choices": [{"message": {"content": {"a": 1}}}]})
    reply = _reply_from_json(
        {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], "usage": ["not", "a", "mapping"]}
    )
    assert (reply.content, reply.prompt_tokens, reply.completion_tokens) == ("{}", 0, 0)
    reply = _reply_from_json({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "ten"}})
    assert reply.prompt_tokens == 0


def test_a_redirect_is_followed_to_the_answer():
    calls = []

    def script(body, headers):
        calls.append(1)
        if len(calls) == 1:
            return Scripted(status=307, body="", headers={"Location": "/v2/chat/completions"})
        return Scripted(body=completion(GOOD))

    with ChatServer(script) as server:
        (result,) = client(server).describe_batch([tiny_sample()])
    assert not isinstance(result, BaseException), result
    assert result.text == "A CT image with one nodule." and len(calls) == 2


def test_identical_requests_in_flight_together_are_paid_once(tmp_path):
    with ChatServer(lambda body, headers: Scripted(body=completion(GOOD), delay=0.2)) as server:
        describer = client(server, concurrency=8, cache_dir=str(tmp_path / "cache"))
        sample = tiny_sample()
        results = describer.describe_batch([sample, sample, sample, sample])
    assert all(r.text == "A CT image with one nodule." for r in results)
    assert len(server.requests) == 1
    assert (describer.usage.requests, describer.usage.cache_hits) == (1, 3)


def test_the_shard_stream_sends_openai_batches_side_by_side_under_one_bound():
    """Without this the stream hands the describe stage one group of 32 at a time, whatever --concurrency is."""
    from medtrinity.pipeline.stages import DescribeStage, VerifyStage
    from medtrinity.pipeline.stream import is_concurrent

    options = dict(model="m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_VAR, concurrency=128)
    describe = DescribeStage("openai", options)
    assert is_concurrent(describe)
    assert is_concurrent(VerifyStage("repair", describe.describer))
    assert not is_concurrent(DescribeStage("grounded"))
