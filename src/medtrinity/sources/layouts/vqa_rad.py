"""VQA-RAD (Lau et al., Scientific Data 2018), as published on OSF: `VQA_RAD Dataset Public.json` (a list
of {qid, image_name, image_organ, question, answer, answer_type, question_type, phrase_type, …}) and
`VQA_RAD Image Folder/<image_name>`.

One record per image. Organ from image_organ (HEAD → head, CHEST → chest, ABD → abdomen). Split: an
image with any question whose phrase_type starts with "test" is test, else train. The QA pairs are the
reference text. The source has no ROIs (expert auto).

Modality rule (the dataset has no modality field; it is read from what the QA settles):
- an open answer that names exactly one modality ("What modality is used?" — "CT") states it;
- "yes" to a question naming exactly one modality ("Is this an MRI?" — "Yes") states it;
- "no" states nothing ("Is this a CT?" — "No" leaves every other modality open).
An image whose QA states two different modalities, or none, is quarantined with that reason, unless
the recipe sets `options.default_modality` (then the images with none take it; guessing from the organ
would not be honest: head images are CT and MRI alike).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from medtrinity.errors import UserError
from medtrinity.records import MODALITIES
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, layout_options
from medtrinity.sources.qa_text import problem_item, qa_entries_by_image, qa_reference_text

QA_FILE = "VQA_RAD Dataset Public.json"
IMAGE_FOLDER = "VQA_RAD Image Folder"
ORGAN_NAMES = {"HEAD": "head", "CHEST": "chest", "ABD": "abdomen"}
MODALITY_TERMS = {
    "CT": re.compile(r"\bct\b|computed tomograph|\bcat scan"),
    "MRI": re.compile(r"\bmri\b|\bmr\b|magnetic resonance|\bt1\b|\bt2\b|\bflair\b|diffusion[- ]weighted|\bdwi\b"),
    "X-Ray": re.compile(r"\bx[- ]?rays?\b|radiograph|\bcxr\b|plain film|mammogra"),
    "Ultrasound": re.compile(r"ultrasound|sonogra"),
}
YES_NO = {"yes", "no"}


def modality_terms(text: str) -> set[str]:
    lowered = text.lower()
    return {name for name, pattern in MODALITY_TERMS.items() if pattern.search(lowered)}


def stated_modality(question: str, answer: str) -> str | None:
    """The modality one QA pair settles, or None (see the module's rule)."""
    answer_text = " ".join(str(answer).split()).lower()
    if answer_text == "yes":
        named = modality_terms(str(question))
        return named.pop() if len(named) == 1 else None
    if answer_text in YES_NO:
        return None
    named = modality_terms(answer_text)
    return named.pop() if len(named) == 1 else None


class VqaRadOptions(LayoutOptions):
    default_modality: str | None = None  # the modality of images whose QA never states one


@register_layout("vqa-rad")
class VqaRadLayout:
    Options = VqaRadOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root
        self.default_modality = layout_options(self, recipe).default_modality
        if self.default_modality is not None and self.default_modality not in MODALITIES:
            raise UserError(f"recipe {recipe.name}: options.default_modality must be one of {', '.join(MODALITIES)}")

    def check(self) -> None:
        for name in (QA_FILE, IMAGE_FOLDER + "/"):
            if not (self.root / name).exists():
                raise UserError(
                    f"{self.recipe.name} expects '{QA_FILE}' and '{IMAGE_FOLDER}/' under {self.root}: '{name}' is missing"
                )

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        try:
            data = json.loads((self.root / QA_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{self.root / QA_FILE} is not valid JSON: {err}") from None
        by_image, problems = qa_entries_by_image(data, QA_FILE, "image_name", source=r.name, root=str(self.root))
        for name in sorted(by_image):
            yield self._item(name, by_image[name])
        yield from problems

    def _item(self, name: str, qa: list[dict[str, Any]]) -> SourceItem:
        r = self.recipe
        file = f"{IMAGE_FOLDER}/{name}"
        qa = sorted(
            qa, key=lambda e: (not isinstance(e.get("qid"), int), e.get("qid") if isinstance(e.get("qid"), int) else 0)
        )
        split = "test" if any(str(e.get("phrase_type", "")).startswith("test") for e in qa) else "train"
        stated = {m for e in qa if (m := stated_modality(str(e.get("question", "")), str(e.get("answer", ""))))}
        if len(stated) > 1:
            return problem_item(
                source=r.name,
                root=str(self.root),
                file=file,
                split=split,
                problem=f"{file}: the QA state different modalities ({', '.join(sorted(stated))})",
            )
        modality = stated.pop() if stated else self.default_modality
        if modality is None:
            return problem_item(
                source=r.name,
                root=str(self.root),
                file=file,
                split=split,
                problem=f"{file}: modality not stated by the QA (set options.default_modality to accept such images)",
            )
        organs = Counter(str(e.get("image_organ", "")).strip().upper() for e in qa if e.get("image_organ"))
        organ_code = organs.most_common(1)[0][0] if organs else ""
        return SourceItem(
            source=r.name,
            root=str(self.root),
            file=file,
            modality=modality,
            organ=ORGAN_NAMES.get(organ_code, organ_code.lower() or r.organ),
            split=split,
            reference_text=qa_reference_text((e.get("question", ""), e.get("answer", "")) for e in qa),
            expert=r.expert or "auto",
        )
