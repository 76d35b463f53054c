"""SLAKE 1.0 (Liu et al., ISBI 2021), as published: PATH is the `Slake1.0` folder with
`imgs/xmlab<N>/source.jpg`, `mask.png`, `detection.json` (a list of `{organ: [x, y, w, h]}`),
`question.json`, and the QA files `train.json`, `validate.json`, `test.json` (img_id, img_name, question,
answer, q_lang, location, modality, answer_type, content_type, qid, …) at the root.

One record per image the QA files name. Modality and location come from those entries; ROIs are the
detection.json boxes (an image without one goes to the expert); the English QA pairs (q_lang "en") are
the reference text. What the physicians' answers say of the image's condition becomes its labels: the
answer to "What diseases are included in the picture?" (and its variants) names its findings (the
record's disease), and "Is this image normal?" answered Yes (or "abnormal?" No) with no disease named
labels it normal. Any other answer ("Which organ is abnormal?", "Is the lung healthy?") stays in the
reference text only. Split: the QA file naming the image; an image named by several keeps the most
held-out one (test, then validate → "val", then train), so no evaluation image is counted as training.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from medtrinity.errors import StageError, UserError
from medtrinity.records import Region
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.qa_text import problem_item, qa_entries_by_image, qa_reference_text

QA_FILES = {"test.json": "test", "validate.json": "val", "train.json": "train"}  # precedence: most held-out first
MODALITY_NAMES = {"ct": "CT", "mri": "MRI", "x-ray": "X-Ray", "xray": "X-Ray"}
DISEASE_QUESTION = re.compile(
    r"^\s*(?:what|which)\s+(?:diseases?|abnormalit(?:y|ies))\s+(?:are|is)\s+"
    r"(?:included|shown|contained|present|seen|visible)\b",
    re.IGNORECASE,
)
NORMALITY_QUESTION = re.compile(
    r"^\s*(?:is|does)\s+this\s+(?:image|picture)\s+(?:look\s+)?(normal|abnormal)\W*$", re.IGNORECASE
)
NO_DISEASE = {"none", "no", "normal", "nothing", "healthy"}
# SLAKE's `location` values -> organ names (others: lower case, "_" as a space).
ORGAN_NAMES = {
    "brain": "brain",
    "brain_tissue": "brain",
    "brain_face": "head",
    "neck": "neck",
    "lung": "lung",
    "chest_lung": "lung",
    "chest_heart": "heart",
    "chest_mediastinal": "mediastinum",
    "abdomen": "abdomen",
    "pelvic cavity": "pelvis",
}


@dataclass
class DetectionBoxes:
    """SLAKE's detection.json: a list of `{organ: [x, y, w, h]}` in pixels of source.jpg."""

    path: str  # relative to the source root

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        full = Path(root) / self.path
        if not full.is_file():
            return []  # no boxes for this image: the expert looks for regions
        try:
            entries = json.loads(full.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise StageError(f"{self.path}: not valid JSON ({err})") from None
        if not isinstance(entries, list):
            raise StageError(f"{self.path}: expected a list of {{organ: [x, y, w, h]}}, got {type(entries).__name__}")
        return [self._region(label, box, shape) for entry in entries for label, box in self._pairs(entry)]

    def _pairs(self, entry: Any) -> list[tuple[str, Any]]:
        if not isinstance(entry, dict) or not entry:
            raise StageError(f"{self.path}: entry {entry!r} is not an {{organ: [x, y, w, h]}} object")
        return list(entry.items())

    def _region(self, label: str, box: Any, shape: tuple[int, int]) -> Region:
        height, width = shape
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise StageError(f"{self.path}: box of {label} is {box!r}, not [x, y, w, h]")
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise StageError(f"{self.path}: box of {label} {box} has no area")
        if x < 0 or y < 0 or x + w > width or y + h > height:
            raise StageError(f"{self.path}: box of {label} {box} lies outside the {width}x{height} image")
        return Region(label=label.strip().lower(), bbox=(x, y, x + w, y + h))


def organ_name(location: str) -> str | None:
    key = location.strip().lower()
    return ORGAN_NAMES.get(key, key.replace("_", " ")) if key else None


def _image_number(img_name: str) -> tuple[int, str]:
    found = re.search(r"xmlab(\d+)", img_name)
    return (int(found.group(1)) if found else -1, img_name)


@register_layout("slake")
class SlakeLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, root

    def check(self) -> None:
        expected = "imgs/ and train.json, validate.json, test.json"
        if not (self.root / "imgs").is_dir():
            raise UserError(
                f"{self.recipe.name} expects {expected} under {self.root} (the Slake1.0 folder): imgs/ is missing"
            )
        if not any((self.root / name).is_file() for name in QA_FILES):
            raise UserError(
                f"{self.recipe.name} expects {expected} under {self.root} (the Slake1.0 folder): train.json is missing"
            )

    def items(self) -> Iterator[SourceItem]:
        r = self.recipe
        entries: dict[str, list[dict]] = {}
        split_of: dict[str, str] = {}
        problems: list[SourceItem] = []
        for name, split in QA_FILES.items():
            if not (self.root / name).is_file():
                continue
            try:
                data = json.loads((self.root / name).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                problems.append(
                    problem_item(
                        source=r.name, root=str(self.root), file=name, problem=f"{name}: not valid JSON ({err})"
                    )
                )
                continue
            by_image, unnamed = qa_entries_by_image(data, name, "img_name", source=r.name, root=str(self.root))
            problems += unnamed
            for img_name, found in by_image.items():
                entries.setdefault(img_name, []).extend(found)
                split_of.setdefault(img_name, split)
        for img_name in sorted(entries, key=_image_number):
            yield self._item(img_name, entries[img_name], split_of[img_name])
        yield from problems

    def _item(self, img_name: str, qa: list[dict], split: str) -> SourceItem:
        r = self.recipe
        file = f"imgs/{img_name}"
        modalities = {MODALITY_NAMES.get(str(e.get("modality", "")).strip().lower()) for e in qa}
        if len(modalities) != 1 or None in modalities:
            stated = sorted({str(e.get("modality")) for e in qa})
            return problem_item(
                source=r.name,
                root=str(self.root),
                file=file,
                split=split,
                problem=f"{file}: the QA files give modality {', '.join(stated)}; expected one of CT, MRI, X-Ray",
            )
        locations = Counter(str(e.get("location", "")) for e in qa if e.get("location"))
        english = sorted(
            (e for e in qa if e.get("q_lang") == "en"), key=lambda e: (e.get("qid") is None, e.get("qid") or 0)
        )
        folder = img_name.rsplit("/", 1)[0]
        findings, normal = stated_condition(english)
        return SourceItem(
            source=r.name,
            root=str(self.root),
            file=file,
            modality=modalities.pop(),
            organ=organ_name(locations.most_common(1)[0][0]) if locations else r.organ,
            split=split,
            disease=", ".join(findings) or None,
            labels=findings or (["normal"] if normal else []),
            label_kinds={f: "finding" for f in findings} or ({"normal": "normal"} if normal else {}),
            reference_text=qa_reference_text((e.get("question", ""), e.get("answer", "")) for e in english),
            annotations=[DetectionBoxes(f"imgs/{folder}/detection.json")],
            expert=r.expert or "auto",
        )


def stated_condition(english: list[dict]) -> tuple[list[str], bool]:
    """(the findings the disease questions' answers name, lower case and in order; whether the answers say the
    image is normal). Normal only when no disease is named and no answer says otherwise."""
    findings: list[str] = []
    normal_answers: set[bool] = set()
    for entry in english:
        question, answer = str(entry.get("question", "")), str(entry.get("answer", "")).strip()
        if DISEASE_QUESTION.match(question):
            for part in re.split(r",|\band\b|;", answer):
                name = " ".join(part.lower().split())
                if name in NO_DISEASE:
                    normal_answers.add(True)
                elif name and name not in findings:
                    findings.append(name)
        elif (asked := NORMALITY_QUESTION.match(question)) and answer.lower() in ("yes", "no"):
            normal_answers.add((asked.group(1).lower() == "normal") == (answer.lower() == "yes"))
    return findings, not findings and normal_answers == {True}
