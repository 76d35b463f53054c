"""Reading the user's YAML files (recipes, build configs) with one-line errors that say what to fix.

pydantic's own wording ("Extra inputs are not permitted", "Value error, …", "Input should be a valid
dictionary") never reaches the user: `validation_error` rewrites the first problem in this project's words,
with a suggestion for a misspelled key (`unknown option 'treshold' — did you mean 'threshold'?`).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medtrinity.errors import UserError


def read_yaml_mapping(path: Path, what: str, needs: str) -> dict[str, Any]:
    """The mapping in a YAML file; `what` names the file's role ("recipe"), `needs` its required keys."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is not valid UTF-8 YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must be a YAML mapping with {needs}")
    return data


WEIGHT_KEYS = ("checkpoint", "model")  # experts' options that name a file of weights


def path_beside(value: Any, folder: Path) -> Any:
    """A relative path written in a YAML file means a path beside that file (`~` expanded); absolute paths,
    empty values and non-strings are returned as they are."""
    import os

    if not isinstance(value, str) or not value:
        return value
    expanded = os.path.expanduser(value)
    return expanded if os.path.isabs(expanded) else str(folder / expanded)


def suggestion(word: str, known: list[str], noun: str = "key") -> str:
    """' — did you mean 'x'?' for a near miss, else the known names when there are few, else ''."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f" — did you mean '{close[0]}'?"
    if known and len(known) <= 15:
        return f"; known {noun}s: {', '.join(known)}"
    return ""


def unknown_name(noun: str, word: str, known: list[str]) -> str:
    """`unknown option 'treshold' — did you mean 'threshold'?`"""
    return f"unknown {noun} '{word}'{suggestion(word, sorted(known), noun)}"


# pydantic marks which member of a union failed with a tag in the location ("str", "dict[str,str]",
# "function-after[...]"); those are not keys the user wrote.
_UNION_TAG = re.compile(
    r"^(str|int|float|bool|none|bytes|any|list\[.*\]|dict\[.*\]|tuple\[.*\]|set\[.*\]|literal\[.*\]|"
    r"[a-z-]+\[.*\]|constrained-\w+|\[key\])$"
)


def _clean_loc(loc: tuple) -> tuple:
    return tuple(p for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p)))


def _loc_text(parts: tuple) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _schema_node(schema: dict, parts: tuple) -> dict | None:
    """The JSON-schema node a location points at (following $ref, anyOf, items, additionalProperties)."""
    defs = schema.get("$defs", {})

    def resolve(node: dict) -> list[dict]:
        if "$ref" in node:
            return resolve(defs.get(node["$ref"].rsplit("/", 1)[-1], {}))
        members = node.get("anyOf") or node.get("allOf") or node.get("oneOf")
        return [n for m in members for n in resolve(m)] if members else [node]

    nodes = resolve(schema)
    for part in parts:
        found = []
        for node in nodes:
            if isinstance(part, int) and isinstance(node.get("items"), dict):
                found += resolve(node["items"])
            elif isinstance(part, str) and part in node.get("properties", {}):
                found += resolve(node["properties"][part])
            elif isinstance(node.get("additionalProperties"), dict):
                found += resolve(node["additionalProperties"])
        if not found:
            return None
        nodes = found
    with_keys = [n for n in nodes if "properties" in n]
    return with_keys[0] if with_keys else (nodes[0] if nodes else None)


def _phrase(error: dict) -> str:
    """What is wrong with one value, in plain words (without the location)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f" (got {_short(error.get('input'))})"
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return "must be a whole number" + got
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "must be a number" + got
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false" + got
    if kind in ("string_type", "string_unicode"):
        return "must be text" + got
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        return "must be a list" + got
    if kind in ("dict_type", "mapping_type", "model_type", "model_attributes_type", "dataclass_type"):
        return "must be a mapping (key: value)" + got
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the allowed values')}" + got
    if kind == "none_required":
        return "must be empty (null)" + got
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        key, words = bounds[kind]
        return f"must be {words} {ctx.get(key)}" + got
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"])
    message = str(error["msg"])  # anything else: pydantic's sentence without its "Input should be" preamble
    return re.sub(r"^(Input should be|Value error,|Assertion failed,)\s*", "must be ", message).strip() + got


def _join(phrases: list[str]) -> str:
    phrases = list(dict.fromkeys(phrases))
    if len(phrases) > 1 and all(p.startswith("must be ") for p in phrases):
        # a union (text or a mapping): "must be text or a mapping (got 3)"
        cores = [re.sub(r" \(got .*\)$", "", p[len("must be ") :]) for p in phrases]
        tail = re.search(r" \(got .*\)$", phrases[0])
        return "must be " + " or ".join(dict.fromkeys(cores)) + (tail.group(0) if tail else "")
    return "; ".join(phrases)


def validation_error(
    err: ValidationError, where: str, model: type | None = None, prefix: str = "", noun: str = "key"
) -> UserError:
    """The first problem pydantic found, as one line in this project's words: `where: what is wrong`.

    `model` (the pydantic class validated) lets a misspelled key get a suggestion; `prefix` is the location
    of that model in the user's file ("options"), `noun` what its keys are called ("option").
    """
    errors = err.errors(include_url=False)
    # A misspelled key explains the "required" error of the key it was meant to be: name it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = _clean_loc(first["loc"])
    schema: dict = {}
    if model is not None:
        try:
            schema = model.model_json_schema()
        except Exception:  # a type without a JSON schema: no suggestion, the message stays right
            schema = {}
    full = _loc_text(((prefix,) if prefix else ()) + loc)
    if first["type"] == "extra_forbidden":
        key, parent = str(loc[-1]) if loc else "?", loc[:-1]
        node = _schema_node(schema, parent) if schema else None
        known = sorted((node or {}).get("properties", {}))
        if not parent:
            return UserError(f"{where}: {unknown_name(noun, key, known)}")
        inside = _loc_text(((prefix,) if prefix else ()) + parent)
        return UserError(f"{where}: {inside}: {unknown_name('key', key, known)}")
    if first["type"] == "missing":
        example = ""
        node = _schema_node(schema, loc[:-1]) if schema and loc else None
        examples = ((node or {}).get("properties", {}).get(str(loc[-1]), {}) or {}).get("examples") if loc else None
        if examples:
            example = f" (e.g. {loc[-1]}: {examples[0]})"
        return UserError(f"{where}: {full or 'a value'} is required{example}")
    same = [e for e in errors if _clean_loc(e["loc"]) == loc and e["type"] not in ("missing", "extra_forbidden")]
    text = _join([_phrase(e) for e in same])
    if not full:
        return UserError(f"{where}: {text}")
    separator = " " if text.startswith(("must ", "needs ", "takes ")) else ": "
    return UserError(f"{where}: {full}{separator}{text}")
