"""`eval vqa`: LLaVA-Med v1.0.0's and MedTrinity's scorers reproduced, on hand-made GT and prediction files.

The expected numbers are worked out by hand from the scorers' rules (see each case's comment), not by running
this code: a case that exercises a quirk names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.slake import make_slake
from fixtures.vqa_files import write_files
from fixtures.vqa_rad import make_vqa_rad

from medtrinity.cli import main
from medtrinity.errors import UserError
from medtrinity.evaluate.vqa import evaluate_vqa
from medtrinity.evaluate.vqa_files import load_gt, load_predictions
from medtrinity.evaluate.vqa_normalise import f1_precision_recall, normalize_word


# (id, answer_type, GT answer, prediction as LLaVA-Med-style models write them)
def run(tmp_path: Path, protocol: str, typo: bool = False) -> dict:
    gt, pred = write_files(tmp_path, typo=typo)
    _, questions = load_gt(str(gt))
    return evaluate_vqa(questions, load_predictions(pred), protocol).as_dict()


def test_normalisation_follows_llava_med():
    assert normalize_word("it's 3.5 cm, (left)") == "it's 3.5 cm left"  # ", " and " (" deleted, ")" to a space
    assert normalize_word("right-sided") == "right sided"
    assert normalize_word("the one dont") == "1 don't"
    assert normalize_word("1,000 mm") == "1000 mm"  # a digit,digit group deletes every punctuation mark
    assert normalize_word("." * 40 + "x") == "." * 8 + "x"  # at most 32 periods go (its re.UNICODE count)
    assert f1_precision_recall("lesion is in left lung", "left lung") == (2 * 0.4 / 1.4, 0.4, 1.0)


def test_llava_med_protocol_numbers(tmp_path):
    result = run(tmp_path, "llava-med")
    # open: (1 + 1 + 0 + 0.75 + 1) / 5; closed: hits 5, 7, 8, 13 and zeros 9, 10 -> 4 / 6 (6 and 11 left out)
    assert result["open_recall"] == 75.0
    assert result["closed_accuracy"] == 66.6667
    assert (result["n_open"], result["n_closed"], result["closed_counted"]) == (5, 8, 6)
    assert result["overall"] == 70.8333
    assert result["protocol"] == "llava-med"


def test_medtrinity_protocol_numbers(tmp_path):
    result = run(tmp_path, "medtrinity")
    # closed: GT substring of the prediction: 5, 7 ("normal"), 8, 9 ("left"), 13 -> 5 / 8
    assert (result["open_recall"], result["closed_accuracy"], result["overall"]) == (75.0, 62.5, 68.75)
    assert result["closed_counted"] == 8


def test_exact_protocol_numbers(tmp_path):
    result = run(tmp_path, "exact")
    assert (result["open_recall"], result["closed_accuracy"]) == (20.0, 12.5)  # 12 of 5 open, 13 of 8 closed


def test_typo_key_is_read(tmp_path):
    assert run(tmp_path, "llava-med", typo=True)["open_recall"] == 75.0


def test_llava_med_refuses_differing_ids(tmp_path):
    gt, pred = write_files(tmp_path)
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    _, questions = load_gt(str(gt))
    with pytest.raises(UserError, match="item 1: GT id 1, prediction question_id 2"):
        evaluate_vqa(questions, load_predictions(pred), "llava-med")
    # the medtrinity protocol pairs by id, so the order does not matter there
    assert evaluate_vqa(questions, load_predictions(pred), "medtrinity").as_dict()["closed_accuracy"] == 62.5


def test_medtrinity_reads_missing_answer_type_as_open(tmp_path):
    gt, pred = write_files(tmp_path, cases=[(1, "OPEN", "liver", "liver"), (2, "CLOSED", "yes", "yes")])
    data = json.loads(gt.read_text())
    del data[1]["answer_type"]
    gt.write_text(json.dumps(data))
    _, questions = load_gt(str(gt))
    result = evaluate_vqa(questions, load_predictions(pred), "medtrinity").as_dict()
    assert (result["n_open"], result["n_closed"]) == (2, 0)


def test_published_slake_and_vqa_rad(tmp_path):
    slake = make_slake(tmp_path / "Slake1.0")
    fmt, questions = load_gt(str(slake))
    assert fmt == "slake" and [q.id for q in questions] == [31, 30]  # English test questions only, in file order
    assert questions[0].groups == {"content_type": "Abnormality", "modality": "X-Ray"}
    assert questions[0].image == str(slake / "imgs" / "xmlab3" / "source.jpg")
    pred = tmp_path / "slake.jsonl"
    pred.write_text('{"question_id": 31, "text": "The liver."}\n{"question_id": 30, "text": "It is a chest x-ray"}\n')
    result = evaluate_vqa(questions, load_predictions(pred), "llava-med").as_dict()
    # "x-ray" -> "x ray": recall of the GT's 2 words is 1
    assert result["open_recall"] == 100.0 and result["by"]["content_type"]["Modality"]["open_recall"] == 100.0

    vqa_rad = make_vqa_rad(tmp_path / "VQA_RAD")
    fmt, questions = load_gt(f"vqa-rad:{vqa_rad}")
    assert fmt == "vqa-rad" and [(q.id, q.answer_type) for q in questions] == [(3, "CLOSED"), (4, "OPEN")]


def test_cli_json(tmp_path, capsys):
    gt, pred = write_files(tmp_path)
    assert main(["eval", "vqa", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("open_recall", "closed_accuracy", "n_open", "n_closed", "protocol")} == {
        "open_recall": 75.0,
        "closed_accuracy": 66.6667,
        "n_open": 5,
        "n_closed": 8,
        "protocol": "llava-med",
    }
    assert main(["eval", "vqa", "--gt", str(gt), "--pred", str(pred), "--protocol", "medtrinity"]) == 0
    assert "closed accuracy  62.50" in capsys.readouterr().out
