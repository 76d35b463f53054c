"""The `openai` describer against servers that behave as llama-cpp-python, llama-server, vLLM, SGLang, Ollama and
OpenAI do (tests/fixtures/model_servers.py): structured output negotiated, refusals classed, the preflight."""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from fixtures import model_servers
from fixtures.chat_server import ChatServer, Scripted, completion
from fixtures.image_mask import make_image_mask_dataset
from fixtures.model_servers import nodule_sample

from medtrinity.describe.base import get_describer
from medtrinity.describe.server_errors import ServerUnfit
from medtrinity.errors import StageError, UserError
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build


def describer_for(server: ChatServer, **options):
    defaults = {"model": "tiny.gguf", "base_url": server.url, "timeout": 5, "backoff": 0.01, "max_attempts": 3}
    return get_describer("openai", **{**defaults, **options})


def toy_build(tmp_path, server: ChatServer, n: int = 4, **options) -> dict:
    root = tmp_path / "toy"
    if not root.exists():
        make_image_mask_dataset(root, n)
    config = BuildConfig(
        sources=[f"{tmp_path / 'toy-recipe.yaml'}:{root}"],
        out=str(tmp_path / "out"),
        describer="openai",
        base_url=server.url,
        request_timeout=5,
        retry_backoff=0.01,
        max_attempts=3,
        **{"model": "tiny.gguf", **options},
    )
    return run_build(config, show_progress=False)


def rows(out, folder: str = "data") -> list[dict]:
    return [r for p in sorted((out / folder).glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


# ---------------------------------------------------------------- structured output
def test_llama_cpp_python_negotiates_json_object_in_the_preflight_and_writes_every_record(tmp_path):
    behaviour = model_servers.llama_cpp_python()
    with ChatServer(behaviour, models=behaviour.models) as server:
        manifest = run = toy_build(tmp_path, server)
    assert manifest["totals"] == {"seen": 4, "written": 4, "quarantined": 0}
    assert run["describer"]["structured_output"] == "json_object"
    assert run["describer"]["vision"].startswith("checked: a 64x64 test image added 64 prompt tokens")
    # one refusal (HTTP 500) in the preflight, then every request in json_object: nothing retried
    assert behaviour.log == [
        "refused json_schema",
        "probed json_object",
        "probed json_object",
        *["answered json_object"] * 4,
    ]
    assert manifest["describer_usage"]["retries"] == 0 and manifest["describer_usage"]["requests"] == 4
    assert {r["describer"] for r in rows(tmp_path / "out")} == {
        "openai:tiny.gguf prompt=multigranular-v1 output=json_object"
    }
    assert all(
        r["response_format"] == {"type": "json_object", "schema": r["response_format"]["schema"]}
        for r in server.requests[1:]
    )
    assert server.requests[-1]["response_format"]["schema"]["required"] == [
        "modality",
        "structures",
        "roi",
        "texture",
        "local_global",
        "description",
    ]


def test_a_refusal_of_json_schema_during_the_build_with_http_500_steps_down_without_retries():
    behaviour = model_servers.llama_cpp_python()
    with ChatServer(behaviour) as server:
        describer = describer_for(server, concurrency=1)
        results = describer.describe_batch([nodule_sample(0), nodule_sample(1)])
    assert [r.describer for r in results] == ["openai:tiny.gguf prompt=multigranular-v1 output=json_object"] * 2
    assert behaviour.log == ["refused json_schema", "answered json_object", "answered json_object"]
    assert (describer.usage.requests, describer.usage.retries) == (3, 0)


def test_an_explicit_mode_the_server_refuses_stops_with_one_line():
    with ChatServer(model_servers.llama_cpp_python()) as server:
        describer = describer_for(server, structured_output="json_schema", concurrency=1)
        with pytest.raises(ServerUnfit) as caught:
            describer.describe_batch([nodule_sample(0), nodule_sample(1)])
        assert len(server.requests) == 1  # the second record never went out
    message = str(caught.value)
    assert message.startswith(f"{server.url}: the server refuses structured output json_schema (1 validation error:")
    assert message.endswith("use --structured-output auto to let medtrinity find a mode it accepts")
    assert "\n" not in message


def test_mode_none_sends_no_response_format():
    with ChatServer(model_servers.llama_cpp_python()) as server:
        (result,) = describer_for(server, structured_output="none").describe_batch([nodule_sample()])
    assert "response_format" not in server.requests[0]
    assert result.describer == "openai:tiny.gguf prompt=multigranular-v1 output=none"


# ---------------------------------------------------------------- context overflow
def test_a_context_overflow_shrinks_the_request_once_and_keeps_the_output_mode():
    # 3 passages of 1,200 characters overflow a 1,500-token context; with one passage the request fits.
    behaviour = model_servers.llama_server(n_ctx=1500)
    with ChatServer(behaviour) as server:
        describer = describer_for(server)
        (result,) = describer.describe_batch([nodule_sample(0, passages=3)])
        first, second = server.requests
    assert not isinstance(result, BaseException), result
    assert behaviour.log == ["context overflow", "answered json_schema"]
    assert result.describer == (
        "openai:tiny.gguf prompt=multigranular-v1 output=json_schema shrunk=image:60x40,passages:1"
    )
    assert first["messages"][1]["content"][1]["text"].count("[kb-") == 3
    assert second["messages"][1]["content"][1]["text"].count("[kb-") == 1
    assert describer.structured_output == "json_schema"  # an overflow is not a refusal of structured output
    assert (describer.usage.shrunk, describer.usage.retries) == (1, 0)


def test_a_request_too_long_even_shrunk_is_quarantined_with_the_fix():
    behaviour = model_servers.llama_server(n_ctx=400)
    with ChatServer(behaviour) as server:
        describer = describer_for(server)
        (result,) = describer.describe_batch([nodule_sample(0, passages=3)])
    assert isinstance(result, StageError)
    tokens = behaviour.prompt_tokens(server.requests[1])
    assert str(result) == (
        f"the request is longer than the server's context ({tokens} tokens > 400), even with the request shrunk "
        "(image:60x40,passages:1): start the server with a larger context (llama-server -c N, vLLM --max-model-len N)"
    )
    assert behaviour.log == ["context overflow", "context overflow"]


def test_a_large_image_is_shrunk_when_the_context_overflows(tmp_path):
    # A server whose image tokens grow with the image (as vision encoders tiling an image do).
    behaviour = model_servers.llama_server(n_ctx=2500)
    plain = behaviour.prompt_tokens

    def tokens(body):
        url = body["messages"][1]["content"][0]["image_url"]["url"]
        return plain(body) + len(url) // 40

    behaviour.prompt_tokens = tokens
    big = nodule_sample(0)
    big.pixels = np.random.default_rng(1).integers(0, 256, (300, 400), dtype=np.uint8)
    big.width, big.height = 400, 300
    with ChatServer(behaviour) as server:
        (result,) = describer_for(server, max_image_side=0).describe_batch([big])
        first, second = (tokens(r) for r in server.requests)
    assert not isinstance(result, BaseException), result
    assert result.describer.endswith("shrunk=image:256x192,passages:0")
    assert first > 2500 >= second


@pytest.mark.parametrize(
    "behaviour, expected",
    [
        (model_servers.vllm(n_ctx=700), "the request is longer than the server's context ({} tokens > 700)"),
        (model_servers.sglang(n_ctx=700), "the request is longer than the server's context ({} tokens > 700)"),
        (
            model_servers.llama_cpp_python(n_ctx=700),
            "the request is longer than the server's context ({} tokens > 700)",
        ),
    ],
)
def test_each_servers_overflow_message_is_read(behaviour, expected):
    model = (behaviour.models or ["m"])[0]
    with ChatServer(behaviour) as server:
        (result,) = describer_for(server, model=model, structured_output="none").describe_batch([nodule_sample()])
    asked = behaviour.prompt_tokens(server.requests[0])
    if behaviour.name != "sglang":
        asked += server.requests[0]["max_tokens"]  # "you requested N tokens" counts the completion too
    assert str(result).startswith(expected.format(asked) + ": start the server with a larger context")
    assert len(server.requests) == 1  # nothing to shrink (no passages, a small image): no second request


# ---------------------------------------------------------------- refusals that stop the build
@pytest.mark.parametrize(
    "behaviour, model, cause, fix",
    [
        (
            model_servers.llama_server(vision="no-projector"),
            "tiny.gguf",
            (
                "the server has no vision projector loaded, so it cannot read images (image input is not supported - hint: "
                "if this is unexpected, you may need to provide the mmproj)"
            ),
            "start llama-server with --mmproj PATH",
        ),
        (
            model_servers.llama_cpp_python(vision="template-rejects-lists"),
            "tiny.gguf",
            (
                "the server's chat template fails on a message with an image (list content) (can only concatenate str "
                '(not "list") to str)'
            ),
            "start the server with a chat format for vision models",
        ),
        (
            model_servers.ollama(vision="no-projector"),
            "llava:13b",
            "the model does not take images (this model is missing data required for image input)",
            "serve a vision-language model",
        ),
        (
            model_servers.vllm(vision="no-projector"),
            "Qwen/Qwen2.5-VL-7B-Instruct",
            "the model does not take images (Qwen2ForCausalLM is not a multimodal model)",
            "serve a vision-language model",
        ),
        (
            model_servers.vllm(),
            "Qwen2.5-VL",
            (
                "the server does not serve model 'Qwen2.5-VL' or has no /chat/completions "
                "(HTTP 404: The model `Qwen2.5-VL` does not exist.)"
            ),
            "pass the name it serves with --model",
        ),
        (
            model_servers.ollama(),
            "llava:7b",
            (
                "the server does not serve model 'llava:7b' or has no /chat/completions "
                '(HTTP 404: model "llava:7b" not found, try pulling it first)'
            ),
            "pass the name it serves with --model",
        ),
    ],
)
def test_a_server_that_cannot_serve_the_build_stops_it_at_the_first_refusal(behaviour, model, cause, fix):
    with ChatServer(behaviour) as server:
        describer = describer_for(server, model=model, concurrency=1, structured_output="none")
        with pytest.raises(ServerUnfit) as caught:
            describer.describe_batch([nodule_sample(i) for i in range(5)])
        assert len(server.requests) == 1  # no retry, no second record
    message = str(caught.value)
    assert message.startswith(f"{server.url}: {cause}")
    assert fix in message and "\n" not in message


def test_every_refusal_of_one_request_quarantines_only_that_record_without_retries():
    def script(body, headers):
        if "nodule1" in str(body["messages"]):
            return Scripted(
                status=400,
                body={
                    "error": {
                        "message": "Your request was rejected as a result of our safety system.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "content_policy_violation",
                    }
                },
            )
        return Scripted(body=completion(model_servers.model_answer(body)))

    samples = [nodule_sample(i) for i in range(3)]
    for i, s in enumerate(samples):
        s.rois[0].label = f"nodule{i}"
    with ChatServer(script) as server:
        describer = describer_for(server, model="gpt-4o")
        results = describer.describe_batch(samples)
        assert len(server.requests) == 3
    assert str(results[1]) == (
        "the server refused the request (HTTP 400): Your request was rejected as a result of our safety system."
    )
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    assert describer.structured_output == "json_schema" and describer.usage.retries == 0


def test_a_server_that_drops_list_content_gives_records_quarantined_as_not_received():
    behaviour = model_servers.llama_server(vision="drops-list-content")
    with ChatServer(behaviour) as server:
        describer = describer_for(server, cache_dir=None)
        (result,) = describer.describe_batch([nodule_sample()])
        chars = sum(
            len(m["content"]) if isinstance(m["content"], str) else len(m["content"][1]["text"])
            for m in server.requests[0]["messages"]
        )
    tokens = behaviour.prompt_tokens(server.requests[0])
    assert tokens < chars // 10
    assert str(result) == (
        f"the server did not receive the prompt: it counted {tokens} prompt tokens for {chars} "
        "characters of text (its chat template drops list-form message content; see "
        "docs/BACKENDS.md)"
    )


# ---------------------------------------------------------------- the preflight
def preflight(behaviour, model: str = "tiny.gguf", **options) -> tuple[dict | UserError, ChatServer]:
    with ChatServer(behaviour, models=getattr(behaviour, "models", None)) as server:
        describer = describer_for(server, model=model, **options)
        try:
            return describer.preflight(), server
        except UserError as err:
            return err, server


def test_the_preflight_refuses_a_server_that_ignores_the_image():
    found, server = preflight(model_servers.llama_server(vision="text-parts-only"))
    assert isinstance(found, UserError)
    text_tokens = model_servers.llama_server().prompt_tokens(server.requests[0])
    assert str(found) == (
        f"{server.url}: the model does not receive images — its prompt stayed at {text_tokens} tokens when a 64x64 "
        "test image was added (llama-server: start it with --mmproj; llama-cpp-python: --clip_model_path with a "
        "vision --chat_format; see docs/BACKENDS.md)"
    )


def test_the_preflight_refuses_a_server_that_reads_the_image_as_text():
    found, server = preflight(model_servers.llama_server(vision="stringifies-image", n_ctx=100_000))
    assert isinstance(found, UserError)
    assert str(found).startswith(f"{server.url}: the server reads the image as text — a 64x64 test image added ")
    small, server = preflight(model_servers.llama_server(vision="stringifies-image", n_ctx=3072))
    assert str(small).startswith(
        f"{server.url}: a 64x64 test image overflows the server's context (the request is "
        "longer than the server's context ("
    )
    assert "reads the image as text" in str(small)


def test_the_preflight_refuses_a_server_that_drops_list_content():
    found, server = preflight(model_servers.llama_server(vision="drops-list-content"))
    assert isinstance(found, UserError)
    assert str(found).startswith(f"{server.url}: the server did not receive the prompt: it counted ")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "vision, expected",
    [
        ("no-projector", "start llama-server with --mmproj PATH"),
        ("template-rejects-lists", "start the server with a chat format for vision models"),
    ],
)
def test_the_preflight_names_the_fix_for_a_server_without_vision(vision, expected):
    found, _ = preflight(
        model_servers.llama_server(vision=vision)
        if vision == "no-projector"
        else model_servers.llama_cpp_python(vision=vision)
    )
    assert isinstance(found, ServerUnfit) and expected in str(found)


def test_the_model_name_is_checked_against_the_models_the_server_lists():
    found, server = preflight(model_servers.llama_server(), model="tiny")
    assert str(found) == (
        f"the model server at {server.url} does not serve model 'tiny' (it lists tiny.gguf) — did you mean tiny.gguf?"
    )
    assert server.requests == []  # refused before any completion
    found, _ = preflight(model_servers.vllm(), model="Qwen/Qwen2.5-VL-7B-Instruc")
    assert str(found).endswith("did you mean Qwen/Qwen2.5-VL-7B-Instruct?")
    found, _ = preflight(model_servers.ollama("llava:latest"), model="llava")  # Ollama's own default tag
    assert found["structured_output"] == "json_schema"


def test_a_server_without_a_models_endpoint_is_tolerated():
    behaviour = model_servers.llama_server()
    with ChatServer(behaviour, models=None) as server:
        info = describer_for(server, model="anything").preflight()
        assert server.gets == ["/v1/models"]
    assert info == {
        "backend": "openai",
        "model": "anything",
        "base_url": server.url,
        "structured_output": "json_schema",
        "vision": info["vision"],
    }
    assert info["vision"].startswith("checked: a 64x64 test image added 64 prompt tokens")


def test_a_server_that_is_not_running_is_refused_at_once_and_nothing_is_created(tmp_path):
    with ChatServer(model_servers.llama_server()) as server:
        url = server.url
    make_image_mask_dataset(tmp_path / "toy", 2)
    config = BuildConfig(
        sources=[f"{tmp_path / 'toy-recipe.yaml'}:{tmp_path / 'toy'}"],
        out=str(tmp_path / "out"),
        describer="openai",
        base_url=url,
        model="tiny.gguf",
    )
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        run_build(config, show_progress=False)
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach the model server at {url} (ConnectError): start it, or check --base-url"
    assert not (tmp_path / "out").exists()


def test_an_unset_api_key_is_named_for_a_remote_server(monkeypatch):
    monkeypatch.delenv("MEDTRINITY_UNSET_KEY", raising=False)
    describer = get_describer(
        "openai", model="gpt-4o", base_url="http://models.invalid/v1", api_key_env="MEDTRINITY_UNSET_KEY", timeout=5
    )
    with pytest.raises(UserError) as caught:
        describer.preflight()
    assert str(caught.value) == (
        "cannot reach the model server at http://models.invalid/v1 (ConnectError): start it, or check --base-url "
        "(MEDTRINITY_UNSET_KEY is not set: export it, or name your variable with --api-key-env)"
    )


def test_a_refused_key_is_one_line_in_the_preflight(monkeypatch):
    monkeypatch.setenv("MEDTRINITY_TEST_KEY", "sk-right")
    script = model_servers.openai("sk-right")
    with ChatServer(script, models=script.models, models_key="sk-right") as server:
        monkeypatch.setenv("MEDTRINITY_TEST_KEY", "sk-wrong")
        describer = describer_for(server, model="gpt-4o", api_key_env="MEDTRINITY_TEST_KEY")
        with pytest.raises(ServerUnfit) as caught:
            describer.preflight()
        assert str(caught.value) == (
            f"{server.url}: the server refused the API key (HTTP 401): You didn't provide an API key."
        )
        monkeypatch.setenv("MEDTRINITY_TEST_KEY", "sk-right")
        info = describer_for(server, model="gpt-4o", api_key_env="MEDTRINITY_TEST_KEY").preflight()
    assert info["structured_output"] == "json_schema"


def test_a_fresh_worker_that_steps_down_finds_the_answers_already_cached_in_the_new_mode(tmp_path):
    behaviour = model_servers.llama_cpp_python()
    samples = [nodule_sample(0), nodule_sample(1)]
    samples[1].rois[0].label = "mass"  # two different requests
    with ChatServer(behaviour) as server:
        first = describer_for(server, cache_dir=tmp_path / "cache", concurrency=1)
        first.describe_batch(samples)
        again = describer_for(server, cache_dir=tmp_path / "cache", concurrency=1)  # another process, say
        results = again.describe_batch(samples)
    assert behaviour.log == [
        "refused json_schema",
        "answered json_object",
        "answered json_object",
        "refused json_schema",
    ]  # one refusal teaches the mode; both answers come from the cache
    assert (again.usage.requests, again.usage.cache_hits) == (1, 2)
    assert [r.describer for r in results] == ["openai:tiny.gguf prompt=multigranular-v1 output=json_object"] * 2


def test_the_settings_come_from_the_flags_and_reach_the_describer(tmp_path):
    from pydantic import ValidationError

    from medtrinity.cli import make_parser
    from medtrinity.pipeline.stages import describer_options

    args = make_parser().parse_args(
        ["build", "--source", "x:y", "--out", "o", "--structured-output", "json_object", "--max-image-side", "0"]
    )
    assert (args.structured_output, args.max_image_side) == ("json_object", 0)
    config = BuildConfig(
        sources=["x:y"],
        out=str(tmp_path / "o"),
        describer="openai",
        model="m",
        structured_output="json_object",
        max_image_side=0,
    )
    options = describer_options(config)
    assert (options["structured_output"], options["max_image_side"]) == ("json_object", 0)
    assert (
        BuildConfig(sources=["x:y"], out="o").structured_output,
        BuildConfig(sources=["x:y"], out="o").max_image_side,
    ) == ("auto", 1024)
    with pytest.raises(ValidationError):
        BuildConfig(sources=["x:y"], out="o", structured_output="xml")
    with pytest.raises(ValidationError):
        BuildConfig(sources=["x:y"], out="o", max_image_side=-1)
