"""The `llm` alignment judge and `eval answer` against a local scripted chat server: the describer's client
(preflight, retries, cache) carries the paper's prompt, and replies are parsed, counted, never guessed."""

from __future__ import annotations

import json

from fixtures.vqa_files import write_files
from fixtures.chat_server import ChatServer, Scripted, completion, prompt_text

from medtrinity.cli import main
from medtrinity.evaluate.alignment import run_alignment
from medtrinity.evaluate.alignment_llm import parse_reply

GPT4V_REPLY = """Based on the provided information and the image, here is the scoring for the multigranular \
radiology report annotations A compared to the original report B:

1. **Modality Used for Imaging:** Report A identifies the modality correctly, consistent with report B. - Score: 2 points
2. **Specify the Organ and Anatomical Structures:** Report A names the same organ as report B. - Score: 2 points
3. **Locations of ROI (Regions of Interest):** Report A places the region correctly, but its area ratio differs \
from report B by more than 5%. - Score: 1 point
4. **Analysis of Abnormal Characteristics:** The findings agree with report B. - Score: 2 points
5. **Comparison of Lesions and Surrounding Regions:** Consistent with the image. - Score: 2 points

Final scores: [2, 2, 1, 2, 2]"""
SKIP_REPLY = "Radiology report B does not mention any abnormalities or diseases, so the evaluation is skipped.\n\nNone"
UNPARSEABLE = "I'm sorry, but I can't help with evaluating this medical image."


def test_parse_reply():
    parsed = parse_reply(GPT4V_REPLY)
    assert parsed.status == "scored" and parsed.scores == [2, 2, 1, 2, 2]
    assert parsed.reasons == [
        (
            "roi: Locations of ROI (Regions of Interest): Report A places the region correctly, "
            "but its area ratio differs from report B by more than 5%. - Score: 1 point"
        )
    ]
    assert parse_reply(SKIP_REPLY).status == "skipped"
    assert parse_reply(UNPARSEABLE).status == "unparseable"
    assert parse_reply("Scores: [2, 2, 3, 2, 2]").status == "unparseable"  # 3 is no score of the rubric


class Judge:
    """A vision server judging the reports in the order it first sees them: a scored, an unparseable and a skip
    reply. The first request gets a 503 first (retried; the others may go out while it waits)."""

    def __init__(self) -> None:
        self.replies = [GPT4V_REPLY, UNPARSEABLE, SKIP_REPLY]
        self.seen: list[str] = []  # prompts, in the order they first arrived
        self.judged: list[str] = []  # prompts answered, in order

    def __call__(self, body: dict, headers: dict) -> Scripted:
        if body["max_tokens"] < 16:  # the preflight's probes
            return Scripted(body=completion("{", "length"))
        prompt = prompt_text(body)
        if prompt not in self.seen:
            self.seen.append(prompt)
            if len(self.seen) == 1:
                return Scripted(status=503, body={"error": {"message": "Service Unavailable", "type": "server_error"}})
        self.judged.append(prompt)
        return Scripted(body=completion(self.replies[self.seen.index(prompt) % 3]))


def test_llm_judge_through_the_describer_client(mini_build, tmp_path):
    judge = Judge()
    options = {"model": "gpt-4o", "concurrency": 1, "max_attempts": 3, "backoff": 0.01}
    with ChatServer(judge, models=["gpt-4o"]) as server:
        summary = run_alignment(
            mini_build,
            judge="llm",
            sample=3,
            seed=2,
            out=tmp_path / "a",
            client_options=options | {"base_url": server.url},
        )
        assert [r.status for r in summary.records] == ["scored", "unparseable", "skipped"]
        scored = summary.records[0]
        assert scored.scores == [2, 2, 1, 2, 2] and scored.total == 9.0
        assert scored.reasons[0].startswith("roi: Locations of ROI")
        assert summary.records[1].reply == UNPARSEABLE and summary.records[1].total is None
        # the paper's prompt, with report A (the description) and report B (the human annotation), and the image
        assert "Evaluate the multigranular radiology report annotations (Report A)" in judge.judged[0]
        assert "Radiology report B (the original human annotation):\nModality:" in judge.judged[0]
        assert all(part["type"] == "image_url" for part in server.requests[-1]["messages"][1]["content"][:1])
        asked = len(judge.judged)
        again = run_alignment(
            mini_build,
            judge="llm",
            sample=3,
            seed=2,
            out=tmp_path / "b",
            client_options=options | {"base_url": server.url},
        )
        assert len(judge.judged) == asked  # every judgement came from the build's request cache
        assert [r.status for r in again.records] == ["scored", "unparseable", "skipped"]
    data = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert (data["all"]["scored"], data["all"]["unparseable"], data["all"]["skipped"]) == (1, 1, 1)
    assert data["all"]["mean_total"] == 9.0


def test_eval_answer_writes_predictions_eval_vqa_reads(tmp_path, capsys):
    from PIL import Image

    gt, _ = write_files(tmp_path)
    for entry in json.loads(gt.read_text()):
        Image.new("L", (32, 32), 100).save(tmp_path / entry["image"])

    def model(body: dict, headers: dict) -> Scripted:
        if body["max_tokens"] < 16:
            return Scripted(body=completion("The", "length"))
        question = prompt_text(body)
        return Scripted(body=completion("Yes." if question.startswith("What") else "No"))

    out = tmp_path / "pred.jsonl"
    with ChatServer(model, models=["llava-med"]) as server:
        assert (
            main(
                ["eval", "answer", "--gt", str(gt), "--base-url", server.url, "--model", "llava-med", "--out", str(out)]
            )
            == 0
        )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["question_id"] for line in lines] == list(range(1, 14))
    assert {line["text"] for line in lines} == {"Yes."} and lines[0]["prompt"] == "What is shown?"
    assert "13 questions answered by llava-med" in capsys.readouterr().out
    assert main(["eval", "vqa", "--gt", str(gt), "--pred", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # "Yes." everywhere: CLOSED GT yes (6, 8, 10, 13) hit, GT no/left (5, 7, 9, 11) are left out: 4 / 4
    assert (result["closed_accuracy"], result["closed_counted"]) == (100.0, 4)
