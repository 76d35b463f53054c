"""Records quarantined for a transient reason (the model server unreachable, 5xx after every retry) are
retried by `--resume --retry-transient`; records refused for their content stay quarantined."""

from __future__ import annotations

import pytest
from fixtures import model_servers
from fixtures.build import read_rows
from fixtures.chat_server import ChatServer, Scripted, prompt_text
from fixtures.image_mask import lesion_box, make_image_mask_dataset

from medtrinity.cli import main
from medtrinity.describe.server_errors import ServerGone
from medtrinity.pipeline.config import BuildConfig
from medtrinity.pipeline.runner import run_build

N_IMAGES = 12
# llama-server's answer to an image its vision encoder cannot load: this record's content, every time.
UNREADABLE = Scripted(
    status=400,
    body={"error": {"code": 400, "message": "Failed to load image or audio file", "type": "invalid_request_error"}},
)
# llama-server while the model is (re)loading: a transient refusal.
LOADING = Scripted(status=503, body={"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})


def box_text(case: int) -> str:
    return "box [{}, {}, {}, {}]".format(*lesion_box(case))


def is_build_request(body: dict) -> bool:
    return body["max_tokens"] >= 16  # the preflight's probes ask for a token or two


class Server:
    """llama-server answering like a vision model, except for the cases whose image it cannot load."""

    def __init__(self, unreadable: tuple[int, ...]) -> None:
        self.behaviour = model_servers.llama_server()
        self.unreadable = [box_text(case) for case in unreadable]
        self.loading: list[str] = []  # boxes of the cases answered "Loading model" for now
        self.build_requests: list[dict] = []
        self.on_build_request = None  # called with the request count before answering

    def __call__(self, body: dict, headers: dict) -> Scripted:
        if is_build_request(body):
            self.build_requests.append(body)
            if self.on_build_request is not None:
                self.on_build_request(len(self.build_requests))
            text = prompt_text(body)
            if any(box in text for box in self.unreadable):
                return UNREADABLE
            if any(box in text for box in self.loading):
                return LOADING
        return self.behaviour(body, headers)


def settings(recipe, root, out, url) -> dict:
    # one request at a time, so that which records meet the dead server is certain
    return {
        "sources": [f"{recipe}:{root}"],
        "out": str(out),
        "describer": "openai",
        "model": "tiny.gguf",
        "base_url": url,
        "shard_size": 4,
        "concurrency": 1,
        "request_timeout": 5,
        "retry_backoff": 0.01,
        "max_attempts": 2,
    }


def uninterrupted(recipe, root, out, unreadable) -> tuple[dict, list[dict], list[dict]]:
    with ChatServer(Server(unreadable), models=["tiny.gguf"]) as server:
        manifest = run_build(BuildConfig(**settings(recipe, root, out, server.url)), show_progress=False)
    return manifest, read_rows(out), read_rows(out, "quarantine")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_a_server_dying_mid_build_then_resume_with_retry_transient_gives_the_uninterrupted_records(tmp_path):
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, N_IMAGES)
    unreadable = (1, 10)
    manifest, rows, quarantine = uninterrupted(recipe, root, tmp_path / "reference", unreadable)
    assert manifest["totals"] == {"seen": 12, "written": 10, "quarantined": 2}
    assert [(q["reason"], q["transient"]) for q in quarantine] == [
        ("the server refused the request (HTTP 400): Failed to load image or audio file", False)
    ] * 2

    script = Server(unreadable)
    first = ChatServer(script, models=["tiny.gguf"])

    def die_at_the_sixth(count: int) -> None:
        if count == 6:  # the server process dies while answering item 5 (the second of shard 1)
            first.stop()

    script.on_build_request = die_at_the_sixth
    out = tmp_path / "out"
    config = settings(recipe, root, out, first.url)
    with first, pytest.raises(ServerGone) as caught:
        run_build(BuildConfig(**config), show_progress=False)
    # Items 6 and 7 (the rest of shard 1) could not connect and were quarantined as transient; item 8's failure
    # made three records in a row, so the build stopped in shard 2, which stays unfinished.
    assert str(caught.value).endswith(
        "The build stopped at shard 2: finished shards are kept; rerun with --resume once the server is fixed"
    )
    assert sorted(p.name for p in (out / "_progress").glob("part-*.json")) == ["part-00000.json", "part-00001.json"]
    interrupted = [q for q in read_rows(out, "quarantine") if q["transient"]]
    assert [q["reason"] for q in interrupted] == [
        f"model call failed after 2 attempts: connection to {first.url} failed (ConnectError)"
    ] * 2
    assert len(read_rows(out)) + len(read_rows(out, "quarantine")) == 8  # shards 0 and 1

    again_script = Server(unreadable)
    with ChatServer(again_script, models=["tiny.gguf"], port=port_of(first.url)):
        resumed = run_build(BuildConfig(**config, resume=True, retry_transient=True), show_progress=False)
    # the two transient records of shard 1, then shard 2; nothing finished is asked again
    assert len(again_script.build_requests) == 2 + 4
    assert resumed["describer_usage"]["cache_hits"] == 0  # the records kept in shard 1 were not made again
    assert resumed["totals"] == manifest["totals"] and resumed["sources"] == manifest["sources"]
    assert resumed["quarantined_transient"] == 0
    assert read_rows(out) == rows  # ids, descriptions, images, ROIs: every column, in order
    assert read_rows(out, "quarantine") == quarantine  # the unreadable images stay quarantined


def test_plain_resume_keeps_transient_records_and_retry_transient_redoes_only_them(tmp_path, capsys):
    root = tmp_path / "toy"
    recipe = make_image_mask_dataset(root, N_IMAGES)
    unreadable = (3,)
    _, rows, quarantine = uninterrupted(recipe, root, tmp_path / "reference", unreadable)

    script = Server(unreadable)
    script.loading = [box_text(5), box_text(8)]  # these two meet a server reloading its model, on every attempt
    with ChatServer(script, models=["tiny.gguf"]) as server:
        config = tmp_path / "build.yaml"
        config.write_text(
            "\n".join(
                f"{k}: {v}" if not isinstance(v, list) else f"{k}:\n  - {v[0]}"
                for k, v in settings(recipe, root, "out", server.url).items()
            )
            + "\n"
        )
        assert main(["build", str(config)]) == 0
        printed = " ".join(capsys.readouterr().out.split())  # as rich wrapped it to the terminal's width
        assert "2 quarantined for transient reasons: rerun with --resume --retry-transient" in printed
        assert "2 × describe: model call failed after 2 attempts: server error (HTTP 503): Loading model" in printed
        out = tmp_path / "out"
        assert (
            sorted(q["reason"] for q in read_rows(out, "quarantine") if q["transient"])
            == ["model call failed after 2 attempts: server error (HTTP 503): Loading model"] * 2
        )
        asked = len(script.build_requests)

        script.loading = []  # the model is loaded now
        assert main(["build", str(config), "--resume"]) == 0  # a plain resume: finished shards are kept as they are
        assert len(script.build_requests) == asked
        assert "2 quarantined for transient reasons" in capsys.readouterr().out

        assert main(["build", str(config), "--retry-transient"]) == 2
        assert capsys.readouterr().err == (
            f"medtrinity: error: config {config}: --retry-transient retries the "
            "quarantined records of an earlier build: give it with --resume\n"
        )

        assert main(["build", str(config), "--resume", "--retry-transient"]) == 0
        assert len(script.build_requests) == asked + 2  # only the two transient records
        assert "transient" not in capsys.readouterr().out
    assert read_rows(out) == rows
    assert read_rows(out, "quarantine") == quarantine
