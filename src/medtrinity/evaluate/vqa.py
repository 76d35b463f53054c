"""`medtrinity eval vqa`: a model's answers to VQA test questions, scored as the field's scorers score them.

Protocols (numbers in percent):
- `llava-med`: LLaVA-Med v1.0.0's `llava/eval/run_eval.py`, rule for rule. Items are paired in file order and
  the question ids must be the same list in the same order (it asserts so). Both texts are lower-cased and
  normalised (`vqa_normalise`). OPEN: recall of the answer's words (normalised once more inside its metric).
  CLOSED: a prediction that contains "yes" or "no" anywhere (also inside "normal", "not", "know") scores 1
  when the GT answer is a substring of it — and is left out of the count when it is not; a prediction with
  neither scores 0. So a wrong yes/no answer lowers nothing: the published numbers are computed this way, and
  `closed_counted` says how many CLOSED items the accuracy is over. Items whose answer_type is neither OPEN
  nor CLOSED are not scored.
- `medtrinity`: MedTrinity-25M's `llava/eval/run_eval_nocandi.py`: items paired by id (ids without a partner
  are dropped, and counted here), a missing answer_type is OPEN, OPEN is word recall as above without the
  outer normalisation, CLOSED is correct when the lower-cased GT is a substring of the lower-cased prediction.
- `exact`: the normalised prediction equals the normalised GT (LLaVA-Med's normalisation), paired by id; a
  question without a prediction is wrong. `open_recall` is then the exact-match rate on OPEN questions.
`overall` is the mean of the open and closed numbers, as the MedTrinity and LLaVA-Med tables report it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from medtrinity.errors import UserError
from medtrinity.evaluate.vqa_files import Prediction, Question
from medtrinity.evaluate.vqa_normalise import (
    exact_match_ratio,
    f1_precision_recall,
    normalize_word,
)

PROTOCOLS = ("llava-med", "medtrinity", "exact")
OPEN, CLOSED = "OPEN", "CLOSED"


@dataclass
class ItemScore:
    question: Question
    prediction: str | None
    kind: str | None  # OPEN, CLOSED, or None: not scored
    recall: float | None = None  # OPEN: word recall (exact: 1.0 / 0.0)
    precision: float | None = None
    f1: float | None = None
    exact_match: float | None = None
    hit: int | None = None  # CLOSED: 1, 0, or None where the protocol leaves the item out


@dataclass
class VqaResult:
    protocol: str
    items: list[ItemScore]
    unpaired_gt: int = 0
    unpaired_pred: int = 0
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            **aggregate(self.items),
            "unpaired_gt": self.unpaired_gt,
            "unpaired_pred": self.unpaired_pred,
            "by": self.groups,
        }


def _mean(values: list[float]) -> float | None:
    return 100 * sum(values) / len(values) if values else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def aggregate(items: list[ItemScore]) -> dict[str, Any]:
    """The protocol's numbers over `items`, in percent (4 decimals); None where no item is of the kind."""
    opens = [i for i in items if i.kind == OPEN]
    closed = [i for i in items if i.kind == CLOSED]
    counted = [i.hit for i in closed if i.hit is not None]
    open_recall = _mean([i.recall for i in opens])
    closed_accuracy = _mean(counted) if counted else (0.0 if closed else None)  # its "else 0.0"
    both = [v for v in (open_recall, closed_accuracy) if v is not None]
    out = {
        "open_recall": _rounded(open_recall),
        "closed_accuracy": _rounded(closed_accuracy),
        "overall": _rounded(sum(both) / len(both)) if both else None,
        "n_open": len(opens),
        "n_closed": len(closed),
        "closed_counted": len(counted),
    }
    if any(i.f1 is not None for i in opens):
        out |= {
            "open_precision": _rounded(_mean([i.precision for i in opens])),
            "open_f1": _rounded(_mean([i.f1 for i in opens])),
            "open_exact_match": _rounded(_mean([i.exact_match for i in opens])),
        }
    return out


def _pairs_in_order(questions: list[Question], predictions: list[Prediction]) -> list[tuple[Question, Prediction]]:
    gt_ids, pred_ids = [q.id for q in questions], [p.question_id for p in predictions]
    if gt_ids != pred_ids:
        if len(gt_ids) != len(pred_ids):
            raise UserError(
                f"llava-med pairs GT and predictions in file order, and the files differ: {len(gt_ids)} "
                f"questions, {len(pred_ids)} predictions (use --protocol medtrinity to pair by id)"
            )
        at = next(i for i, (a, b) in enumerate(zip(gt_ids, pred_ids)) if a != b)
        raise UserError(
            f"llava-med pairs GT and predictions in file order, and they differ at item {at + 1}: GT id "
            f"{gt_ids[at]!r}, prediction question_id {pred_ids[at]!r} (use --protocol medtrinity to pair by id)"
        )
    return list(zip(questions, predictions))


def _pairs_by_id(questions: list[Question], predictions: list[Prediction]):
    by_id = {p.question_id: p for p in predictions}
    gt_ids = {q.id for q in questions}
    pairs = [(q, by_id.get(q.id)) for q in questions]
    return pairs, sum(1 for _, p in pairs if p is None), sum(1 for p in predictions if p.question_id not in gt_ids)


def score_llava_med(question: Question, prediction: str) -> ItemScore:
    gt = normalize_word(question.answer.lower())
    pred = normalize_word(prediction.lower())
    if question.answer_type == OPEN:
        f1, precision, recall = f1_precision_recall(pred, gt)
        return ItemScore(question, prediction, OPEN, recall, precision, f1, exact_match_ratio(pred, gt))
    if question.answer_type == CLOSED:
        if "yes" in pred or "no" in pred:
            return ItemScore(question, prediction, CLOSED, hit=1 if gt in pred else None)
        return ItemScore(question, prediction, CLOSED, hit=0)
    return ItemScore(question, prediction, None)


def score_medtrinity(question: Question, prediction: str) -> ItemScore:
    gt, pred = question.answer.lower(), prediction.lower()
    kind = question.answer_type or OPEN
    if kind == OPEN:
        f1, precision, recall = f1_precision_recall(pred, gt)
        return ItemScore(question, prediction, OPEN, recall, precision, f1, exact_match_ratio(pred, gt))
    if kind == CLOSED:
        return ItemScore(question, prediction, CLOSED, hit=1 if gt in pred else 0)
    return ItemScore(question, prediction, None)


def score_exact(question: Question, prediction: str | None) -> ItemScore:
    same = prediction is not None and normalize_word(prediction.lower()) == normalize_word(question.answer.lower())
    if question.answer_type == CLOSED:
        return ItemScore(question, prediction, CLOSED, hit=int(same))
    return ItemScore(question, prediction, OPEN, recall=float(same))


def evaluate_vqa(questions: list[Question], predictions: list[Prediction], protocol: str) -> VqaResult:
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown --protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    if protocol == "llava-med":
        result = VqaResult(protocol, [score_llava_med(q, p.text) for q, p in _pairs_in_order(questions, predictions)])
    else:
        pairs, missing, extra = _pairs_by_id(questions, predictions)
        if protocol == "medtrinity":
            items = [score_medtrinity(q, p.text) for q, p in pairs if p is not None]
        else:
            items = [score_exact(q, p.text if p else None) for q, p in pairs]
        result = VqaResult(protocol, items, unpaired_gt=missing, unpaired_pred=extra)
    result.groups = _by_group(result.items)
    return result


def _by_group(items: list[ItemScore]) -> dict[str, dict[str, dict[str, Any]]]:
    grouped: dict[str, dict[str, list[ItemScore]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        for key, value in item.question.groups.items():
            grouped[key][value].append(item)
    return {
        key: {value: aggregate(members) for value, members in sorted(values.items())}
        for key, values in sorted(grouped.items())
    }


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_lines(result: VqaResult, gt_format: str) -> list[str]:
    """The table a person reads."""
    main = aggregate(result.items)
    lines = [
        f"VQA ({gt_format} GT, protocol {result.protocol}; numbers in percent)",
        f"  open recall      {_cell(main['open_recall'])}  over {main['n_open']} OPEN questions",
        (
            f"  closed accuracy  {_cell(main['closed_accuracy'])}  over {main['closed_counted']} of "
            f"{main['n_closed']} CLOSED questions"
        ),
        f"  overall          {_cell(main['overall'])}",
    ]
    if result.protocol == "llava-med" and main["closed_counted"] < main["n_closed"]:
        lines.append(
            f"  ({main['n_closed'] - main['closed_counted']} CLOSED predictions name yes/no without the "
            "GT answer: LLaVA-Med's scorer leaves them out of the accuracy)"
        )
    if result.unpaired_gt or result.unpaired_pred:
        lines.append(
            f"  unpaired: {result.unpaired_gt} questions without a prediction, {result.unpaired_pred} "
            "predictions of no question"
        )
    for key, values in result.groups.items():
        lines.append(f"  by {key}:")
        for value, stats in values.items():
            lines.append(
                f"    {value:<20} open {_cell(stats['open_recall']):>6} (n={stats['n_open']})  closed "
                f"{_cell(stats['closed_accuracy']):>6} (n={stats['closed_counted']}/{stats['n_closed']})"
            )
    return lines
