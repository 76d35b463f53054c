"""`export llava`: LLaVA / LLaVA-Med training JSON, one file per split, images beside it.

Each file is a list of `{"id", "image": "images/<record id>.png|jpg", "conversations": [{"from": "human",
"value": "<image>\\n…"}, {"from": "gpt", "value": "…"}, …]}`. The images are the stored bytes, never re-encoded
or drawn on. Kinds (`--kind`):
- caption: one of the caption instructions (phrasebank) -> the record's description (pretraining);
- qa: the record's QA pairs (qa.py) as one multi-turn conversation; the entry's "qa" list says, turn by turn,
  each answer's type, content type, origin and the record fields it came from (trainers ignore the key);
- grounded: turns that name an ROI label and answer with its boxes, and turns that give a box and answer
  with its label, boxes in `--box-format` (boxes.py);
- all: the three, as separate entries of the same image (ids "<record id>-caption", "-qa", "-grounded").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from medtrinity.export.boxes import box_text, ref_text
from medtrinity.export.json_list import JsonListFile
from medtrinity.export.phrasebank import pick
from medtrinity.export.qa import CLOSED, ROI_KINDS, ClosedBalance, QAContext, QAPair, label_phrase, qa_pairs
from medtrinity.export.selection import split_of
from medtrinity.records import Sample, image_extension, row_to_sample

IMAGE_TOKEN = "<image>"
GROUNDED_KINDS = (*ROI_KINDS, "label")  # ROIs named in grounding turns; expert "region"s claim no name
MAX_GROUNDED_LABELS = 4
MAX_REGION_TURNS = 4


def _clean(text: str) -> str:
    """Text with no image token of its own: a conversation holds exactly one, at its start."""
    return text.replace(IMAGE_TOKEN, "image")


def conversation(turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    """(question, answer) turns as LLaVA's conversation list, the image token opening the first question."""
    messages = []
    for i, (question, answer) in enumerate(turns):
        prefix = f"{IMAGE_TOKEN}\n" if i == 0 else ""
        messages += [{"from": "human", "value": prefix + _clean(question)}, {"from": "gpt", "value": _clean(answer)}]
    return messages


class Writer:
    def __init__(self, folder: Path, options, catalog, build) -> None:
        self.folder = folder
        (folder / "images").mkdir()
        self.kinds = ("caption", "qa", "grounded") if options.kind == "all" else (options.kind,)
        self.box_format = options.box_format
        self.include_expert = options.include_expert
        self.context = QAContext(catalog.finding_labels, options.include_expert)
        self.balance = ClosedBalance()
        self.files: dict[str, JsonListFile] = {}
        self.records: Counter = Counter()
        self.conversations: Counter = Counter()
        self.answers: Counter = Counter()
        self.without = 0

    # ---------------------------------------------------------------- the three kinds
    def caption(self, sample: Sample) -> dict[str, Any] | None:
        if not sample.description.strip():
            return None
        return {"conversations": conversation([(pick("caption", sample.id), sample.description)])}

    def qa(self, sample: Sample) -> dict[str, Any] | None:
        pairs: list[QAPair] = qa_pairs(sample, self.context, self.balance)
        if not pairs:
            return None
        for pair in pairs:
            self.answers[pair.answer if pair.answer_type == CLOSED and pair.origin == "generated" else "open"] += 1
        return {
            "conversations": conversation([(p.question, p.answer) for p in pairs]),
            "qa": [{k: v for k, v in p.as_dict().items() if k not in ("question", "answer")} for p in pairs],
        }

    def grounded(self, sample: Sample) -> dict[str, Any] | None:
        rois = [
            (i, roi)
            for i, roi in enumerate(sample.rois)
            if roi.kind in GROUNDED_KINDS and (roi.source == "annotation" or self.include_expert)
        ]
        if not rois:
            return None

        def box(roi) -> str:
            return box_text(roi.bbox, sample.width, sample.height, self.box_format)

        by_label: dict[str, list] = {}
        for _, roi in rois:
            by_label.setdefault(roi.label, []).append(roi)
        turns = []
        for label, group in list(by_label.items())[:MAX_GROUNDED_LABELS]:
            name = label_phrase(label)
            joiner = "" if self.box_format == "qwen" else ", "
            boxes = joiner.join(box(roi) for roi in group)
            answer = ref_text(name, self.box_format) + ("" if self.box_format == "qwen" else ": ") + boxes
            turns.append((pick("locate", sample.id, label, label=name), answer))
        for index, roi in rois[:MAX_REGION_TURNS]:
            turns.append((pick("region", sample.id, str(index), box=box(roi)), label_phrase(roi.label)))
        return {"conversations": conversation(turns)}

    # ---------------------------------------------------------------- writing
    def add(self, row: dict[str, Any]) -> None:
        sample = row_to_sample(row)
        entries = [(kind, entry) for kind in self.kinds if (entry := getattr(self, kind)(sample)) is not None]
        if not entries:
            self.without += 1
            return
        data = row["image"]["bytes"]
        image = f"images/{sample.id}.{image_extension(data)}"
        (self.folder / image).write_bytes(data)
        split = split_of(sample.split)
        if split not in self.files:
            self.files[split] = JsonListFile(self.folder / f"{split}.json")
        for kind, entry in entries:
            entry_id = f"{sample.id}-{kind}" if len(self.kinds) > 1 else sample.id
            self.files[split].append({"id": entry_id, "image": image, **entry})
            self.conversations[kind] += 1
        self.records[split] += 1

    def close(self) -> tuple[dict[str, int], dict[str, Any]]:
        for file in self.files.values():
            file.close()
        details: dict[str, Any] = {"conversations": dict(self.conversations)}
        if "qa" in self.kinds:
            details["closed_answers"] = {"Yes": self.answers["Yes"], "No": self.answers["No"]}
        if self.without:
            details["records_without_a_conversation"] = self.without
        return dict(self.records), details
