"""The multigranular prompt (whole image → each ROI → ROI vs whole → one paragraph) and its answer.

Shared by every model backend (openai, transformers): `render_prompt` turns a Sample into the user text,
`render_repair_prompt` names a contradiction found by `verify`, and `parse_answer` reads a model's answer
back into the five attributes and the paragraph, tolerating code fences and prose around the JSON.
Templates live in `describe/prompts/`; their version is recorded in each record's `describer`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from medtrinity.describe.base import Reply
from medtrinity.errors import StageError
from medtrinity.records import ATTRIBUTE_NAMES, Attributes, Check, Description, Sample

PROMPT_VERSION = "multigranular-v1"
REPAIR_VERSION = "repair-v1"
_TEMPLATES = {PROMPT_VERSION: "multigranular_v1.j2", REPAIR_VERSION: "repair_v1.j2"}

SYSTEM_PROMPT = (
    "You are a careful medical imaging annotator. You describe exactly what an image and its measured "
    "regions show, in plain clinical English, and you answer in JSON when asked."
)
ANSWER_FIELDS: tuple[str, ...] = (*ATTRIBUTE_NAMES, "description")
# The JSON schema a server that supports structured output is asked to follow.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ANSWER_FIELDS},
    "required": list(ANSWER_FIELDS),
    "additionalProperties": False,
}
# Other names models use for the same fields (after lower-casing, '-' and ' ' → '_').
_FIELD_ALIASES = {
    "local_global_relationship": "local_global",
    "localglobal": "local_global",
    "relationship": "local_global",
    "local_analysis": "roi",
    "regions": "roi",
    "region_of_interest": "roi",
    "anatomical_structures": "structures",
    "paragraph": "description",
    "final_description": "description",
    "integrated_description": "description",
    "text": "description",
    "summary": "description",
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_SNIPPET = 80


@dataclass
class Answer:
    """What a model answered: the five attributes and the integrated paragraph."""

    attributes: Attributes
    text: str

    def to_description(self, describer: str) -> Description:
        return Description(attributes=self.attributes, text=self.text, describer=describer)


def prompt_versions(repaired: bool = False) -> str:
    """The prompt version(s) behind an answer: 'multigranular-v1', or 'multigranular-v1+repair-v1' after a repair."""
    return f"{PROMPT_VERSION}+{REPAIR_VERSION}" if repaired else PROMPT_VERSION


def describer_label(backend: str, model: str, repaired: bool = False) -> str:
    """The record's `describer`: backend, model and prompt version(s), e.g. 'openai:gpt-4o prompt=multigranular-v1'."""
    return f"{backend}:{model} prompt={prompt_versions(repaired)}"


# ---------------------------------------------------------------- rendering
@lru_cache(maxsize=None)
def _template(version: str):
    from importlib.resources import files

    import jinja2

    source = files("medtrinity.describe").joinpath("prompts", _TEMPLATES[version]).read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    return env.from_string(source)


def prompt_context(sample: Sample, overlay: bool = False) -> dict[str, Any]:
    """The values the prompt shows: metadata, coarse caption, each ROI's geometry, the retrieved passages."""
    from medtrinity.describe.overlay import outline_colour
    from medtrinity.describe.vocabulary import patient_side

    rois = [
        {
            "number": i + 1,
            "label": roi.label,
            "bbox": list(roi.bbox),
            "vertical": roi.position.vertical,
            "horizontal": roi.position.horizontal,
            "area": f"{roi.area_ratio:.1f}",
            "patient_side": patient_side(roi.position.horizontal, sample.patient_left_on_image),
            "colour": outline_colour(i)[0] if overlay else None,
        }
        for i, roi in enumerate(sample.rois)
    ]
    passages = [{"id": p.id, "title": p.title, "text": " ".join(p.text.split())} for p in sample.knowledge]
    return {
        "modality": sample.modality,
        "organ": sample.organ,
        "disease": sample.disease,
        "coarse_caption": sample.coarse_caption,
        "width": sample.width,
        "height": sample.height,
        "patient_left_on_image": sample.patient_left_on_image,
        "rois": rois,
        "passages": passages,
        "overlay": overlay,
    }


def render_prompt(sample: Sample, overlay: bool = False) -> str:
    """The user text of the first request for `sample` (the image travels next to it)."""
    return _template(PROMPT_VERSION).render(**prompt_context(sample, overlay)).strip()


def render_repair_prompt(failed: list[Check]) -> str:
    """The follow-up text that names each failed check; sent after the model's first answer."""
    return _template(REPAIR_VERSION).render(failed=failed).strip()


def previous_answer_json(sample: Sample) -> str:
    """The sample's current description as the model's own JSON answer: the assistant turn of a repair."""
    return json.dumps({**asdict(sample.attributes), "description": sample.description})


# ---------------------------------------------------------------- parsing
def snippet(text: str, limit: int = _SNIPPET) -> str:
    """`text` on one line, cut to `limit` characters: enough of an answer to show in a quarantine reason."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _json_objects(text: str):
    """Every JSON object that starts somewhere in `text`, in order of appearance."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def _field_name(key: str) -> str:
    name = re.sub(r"[\s\-]+", "_", key.strip().lower())
    return _FIELD_ALIASES.get(name, name)


def _as_text(value: Any) -> str:
    """A field as prose: strings as they are, lists joined, nested objects as 'key: value' pairs."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return " ".join(part for part in (_as_text(v) for v in value) if part)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_as_text(v)}" for k, v in value.items() if _as_text(v))
    return str(value)


def _answer_from(obj: dict) -> Answer | None:
    fields: dict[str, str] = {}
    for key, value in obj.items():
        name = _field_name(str(key))
        if name in ANSWER_FIELDS and not fields.get(name):
            fields[name] = _as_text(value)
    if not fields.get("description"):
        return None
    return Answer(attributes=Attributes(**{n: fields.get(n, "") for n in ATTRIBUTE_NAMES}), text=fields["description"])


def parse_answer(text: str | None, finish_reason: str | None = None) -> Answer:
    """The answer in a model's reply, or StageError 'answer is empty/truncated/not JSON: …'.

    Accepts a bare JSON object, one in a ```json fence, or one with prose around it; the first object with
    a non-empty description wins. Missing attributes become empty strings (verification still reads the text).
    """
    if text is None or not text.strip():
        raise StageError("answer is empty: the model returned no text")
    if finish_reason == "length":
        raise StageError(f"answer is truncated: the model hit its token limit after {snippet(text)!r}")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    objects = [obj for candidate in candidates for obj in _json_objects(candidate)]
    for obj in objects:
        answer = _answer_from(obj)
        if answer is not None:
            return answer
    if objects:
        raise StageError(f"answer is not JSON with a description: {snippet(text)!r}")
    raise StageError(f"answer is not JSON: {snippet(text)!r}")


def description_or_error(reply: Reply, label: str) -> Description | StageError:
    """The Description in a model's reply, or the StageError saying why there is none (the record's result)."""
    try:
        return parse_answer(reply.content, reply.finish_reason).to_description(label)
    except StageError as error:
        return error
