"""The files a VQA evaluation reads: test questions with their answers (GT), and a model's predictions.

GT, in any of these forms:
- LLaVA-Med's test JSON: a list of `{id, image, conversations: [question, answer], answer_type}` (its typo key
  `conversatons` accepted), as its `run_eval.py` reads it;
- SLAKE 1.0 as published: the `Slake1.0` folder (its `test.json`) or that file; English questions only
  (q_lang "en"), as LLaVA-Med's SLAKE test set has them;
- VQA-RAD as published: its folder or `VQA_RAD Dataset Public.json`; the questions whose phrase_type starts
  with "test" (test_freeform, test_para), the split the vqa-rad recipe uses;
- either of the last two as RECIPE:PATH (`slake:/data/Slake1.0`, `vqa-rad:/data/VQA_RAD`).
Predictions: JSON Lines `{question_id, text}` (LLaVA-Med's answer file; other keys ignored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtrinity.errors import UserError

IMAGE_PREFIX = "<image>"


@dataclass
class Question:
    id: Any  # as the file gives it (int or str): pairing compares ids as given
    question: str
    answer: str
    answer_type: str | None  # as the file gives it; SLAKE / VQA-RAD values are stripped and upper-cased
    image: str | None = None  # path of the image, absolute where the file's folder is known
    groups: dict[str, str] = field(default_factory=dict)  # content_type, modality, organ … where the GT has them


@dataclass
class Prediction:
    question_id: Any
    text: str


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err})") from None


def load_gt(spec: str, images: str | Path | None = None) -> tuple[str, list[Question]]:
    """(format name, questions in file order) of a GT file, folder or RECIPE:PATH."""
    recipe, sep, rest = spec.partition(":")
    if sep and recipe in ("slake", "vqa-rad") and not Path(spec).exists():
        return recipe, (slake_questions if recipe == "slake" else vqa_rad_questions)(Path(rest))
    path = Path(spec)
    if path.is_dir():
        from medtrinity.sources.layouts.vqa_rad import QA_FILE

        if (path / QA_FILE).is_file():
            return "vqa-rad", vqa_rad_questions(path)
        if (path / "test.json").is_file():
            return "slake", slake_questions(path)
        raise UserError(f"{path}: no SLAKE test.json or '{QA_FILE}' in this folder; give the GT JSON file")
    if not path.is_file():
        raise UserError(f"--gt {spec}: no such file or folder")
    data = _read_json(path)
    if not isinstance(data, list) or not data or not all(isinstance(e, dict) for e in data):
        raise UserError(f"{path}: expected a JSON list of questions")
    first = data[0]
    if "conversations" in first or "conversatons" in first:
        return "llava-med", llava_med_questions(data, path, Path(images) if images else path.parent)
    if "phrase_type" in first:
        return "vqa-rad", vqa_rad_questions(path.parent, data)
    if "q_lang" in first or "img_name" in first:
        return "slake", slake_questions(path.parent, data)
    raise UserError(
        f"{path}: not a LLaVA-Med, SLAKE or VQA-RAD test file (its entries have none of "
        "'conversations', 'img_name', 'phrase_type')"
    )


def llava_med_questions(data: list[dict], path: Path, image_root: Path) -> list[Question]:
    questions = []
    for index, entry in enumerate(data):
        turns = entry.get("conversations", entry.get("conversatons"))
        if not isinstance(turns, list) or len(turns) < 2 or "id" not in entry:
            raise UserError(f"{path} entry {index}: needs an id and conversations with a question and an answer")
        question = str(turns[0].get("value", "")).replace(IMAGE_PREFIX, "").strip()
        image = entry.get("image")
        groups = {key: str(entry[key]) for key in ("content_type", "modality", "question_type") if entry.get(key)}
        questions.append(
            Question(
                entry["id"],
                question,
                str(turns[1].get("value", "")),
                entry.get("answer_type"),
                str(image_root / image) if image else None,
                groups,
            )
        )
    return questions


def slake_questions(root: Path, data: list[dict] | None = None) -> list[Question]:
    from medtrinity.sources.layouts.slake import MODALITY_NAMES

    if data is None:
        if not (root / "test.json").is_file():
            raise UserError(f"{root}: SLAKE's test.json is missing (give the Slake1.0 folder)")
        data = _read_json(root / "test.json")
    questions = []
    for entry in data:
        if entry.get("q_lang", "en") != "en":
            continue
        modality = MODALITY_NAMES.get(str(entry.get("modality", "")).strip().lower(), entry.get("modality"))
        groups = {"content_type": str(entry.get("content_type") or ""), "modality": str(modality or "")}
        questions.append(
            Question(
                entry.get("qid"),
                str(entry.get("question", "")),
                str(entry.get("answer", "")),
                _answer_type(entry.get("answer_type")),
                str(root / "imgs" / entry["img_name"]) if entry.get("img_name") else None,
                {k: v for k, v in groups.items() if v},
            )
        )
    return questions


def vqa_rad_questions(root: Path, data: list[dict] | None = None) -> list[Question]:
    from medtrinity.sources.layouts.vqa_rad import IMAGE_FOLDER, ORGAN_NAMES, QA_FILE

    if data is None:
        if not (root / QA_FILE).is_file():
            raise UserError(f"{root}: '{QA_FILE}' is missing (give the VQA-RAD folder)")
        data = _read_json(root / QA_FILE)
    questions = []
    for entry in data:
        if not str(entry.get("phrase_type", "")).startswith("test"):
            continue
        organ = str(entry.get("image_organ", "")).strip().upper()
        groups = {
            "content_type": str(entry.get("question_type") or "").strip(),
            "organ": ORGAN_NAMES.get(organ, organ.lower()),
        }
        name = entry.get("image_name")
        questions.append(
            Question(
                entry.get("qid"),
                str(entry.get("question", "")),
                str(entry.get("answer", "")),
                _answer_type(entry.get("answer_type")),
                str(root / IMAGE_FOLDER / name) if name else None,
                {k: v for k, v in groups.items() if v},
            )
        )
    return questions


def _answer_type(value: Any) -> str | None:
    return str(value).strip().upper() if value is not None else None


def load_predictions(path: str | Path) -> list[Prediction]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UserError(f"cannot read --pred {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise UserError(f"--pred {path} is not UTF-8 JSON Lines") from None
    predictions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise UserError(
                f'--pred {path} line {number}: not JSON (expected {{"question_id": …, "text": …}})'
            ) from None
        if not isinstance(entry, dict) or "question_id" not in entry or not isinstance(entry.get("text"), str):
            raise UserError(f"--pred {path} line {number}: needs question_id and text")
        predictions.append(Prediction(entry["question_id"], entry["text"]))
    if not predictions:
        raise UserError(f"--pred {path} holds no prediction")
    return predictions
