"""The `llm` alignment judge: the paper's judge prompt (seed Figure 2, `prompts/alignment_judge_v1.j2`) with
both texts and the image, through the describer's OpenAI-compatible client (`chat_client`).

Report A is the record's description; report B is the human annotation in words (`report_b`): the source's
modality and organ, its labels by kind, its own regions (label, position words, percent of the image) and its
reference text (report, caption or QA pairs). The reply is read for the last list of five scores 0-2
("Final scores: [2, 2, 2, 1, 1]"); a reply that skips the record as the prompt allows ("None": the reference
states no abnormality) is counted as skipped; any other reply is counted as unparseable and kept for
reading, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from medtrinity.evaluate.alignment_reference import Reference
from medtrinity.records import ATTRIBUTE_NAMES, Sample

PROMPT_VERSION = "alignment-judge-v1"
SYSTEM_PROMPT = "You are an expert radiologist who grades medical image annotations against the original reports."
_SCORES = re.compile(r"\[\s*([0-2])\s*,\s*([0-2])\s*,\s*([0-2])\s*,\s*([0-2])\s*,\s*([0-2])\s*\]")
_SKIP = re.compile(r"(?:^|[\s\"'*:])None[.\"'*]*\s*$|\breturn(?:ing)?\s+\"?None\b", re.MULTILINE)
_SECTION = re.compile(r"(?m)^\s*(?:#+\s*)?(?:\*\*)?\s*([1-5])[.)]")
REASON_WORDS = 80


@dataclass
class JudgeReply:
    status: str  # scored | skipped | unparseable
    scores: list[int] | None = None
    reasons: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "prompts"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template("alignment_judge_v1.j2")


def report_b(sample: Sample, ref: Reference) -> str:
    lines = [f"Modality: {sample.modality}."]
    if sample.organ:
        lines.append(f"Organ: {sample.organ}.")
    kinds: dict[str, list[str]] = {}
    for label in sample.labels:
        kinds.setdefault(sample.label_kinds.get(label) or "label", []).append(label)
    if sample.disease:
        lines.append(f"Finding: {sample.disease}.")
    for kind, labels in kinds.items():
        lines.append(f"Labels ({kind}): {', '.join(labels)}.")
    for i in ref.annotated_rois:
        roi = sample.rois[i]
        lines.append(
            f'Region "{roi.label}": horizontal {roi.position.horizontal}, vertical '
            f"{roi.position.vertical}, area ratio {roi.area_ratio:.1f}% of the image."
        )
    if sample.reference_text and ref.text_kind:
        lines.append(
            ("Questions and answers about the image:\n" if ref.text_kind == "qa" else "Report:\n")
            + sample.reference_text.strip()
        )
    return "\n".join(lines)


def judge_prompt(sample: Sample, ref: Reference) -> str:
    return _template().render(report_a=sample.description.strip(), report_b=report_b(sample, ref))


def messages(sample: Sample, ref: Reference, image_url: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_url}},
                {"type": "text", "text": judge_prompt(sample, ref)},
            ],
        },
    ]


def _section_reasons(reply: str, scores: list[int]) -> list[str]:
    starts = [(int(m.group(1)), m.start()) for m in _SECTION.finditer(reply)]
    reasons = []
    for k, (number, start) in enumerate(starts):
        if scores[number - 1] == 2:
            continue
        end = starts[k + 1][1] if k + 1 < len(starts) else len(reply)
        words = " ".join(reply[start:end].replace("*", "").split()).split()
        text = " ".join(words[1 : REASON_WORDS + 1])
        reasons.append(f"{ATTRIBUTE_NAMES[number - 1]}: {text}")
    return list(dict.fromkeys(reasons))


def parse_reply(reply: str) -> JudgeReply:
    found = _SCORES.findall(reply)
    if found:
        scores = [int(v) for v in found[-1]]
        reasons = _section_reasons(reply, scores)
        lost = [name for name, score in zip(ATTRIBUTE_NAMES, scores) if score < 2]
        named = {r.split(":", 1)[0] for r in reasons}
        reasons += [
            f"{name}: {2 - s} point(s) deducted; the judge gave no reason of its own"
            for name, s in zip(ATTRIBUTE_NAMES, scores)
            if name in lost and name not in named
        ]
        return JudgeReply("scored", scores, reasons)
    if _SKIP.search(reply):
        return JudgeReply("skipped", None, ["the judge skipped the record: the reference states no abnormality"])
    return JudgeReply("unparseable", None, [])
