"""`medtrinity eval alignment DIR`: the paper's alignment score of descriptions against human annotations.

Records that carry a human annotation (`alignment_reference`: the source's own regions, labels, a report,
caption or QA pairs) are scored on the five attributes, 0-2 each, by the `rules` judge (no model) or the `llm`
judge (the paper's prompt). A record's total is out of 10 over the attributes that could be assessed (the sum
times 10 / (2 x assessed)); with all five assessed it is the paper's sum. Output in the report folder:
- `scores.parquet`: one row per record drawn: id, source, modality, split, status, the five scores
  (`modality_score` … `local_global_score`; null: not assessable), total, reasons, and for `llm` the judge's reply;
- `summary.json` and `summary.md`: per source and per modality the records scored, the mean total with a
  bootstrap 95 % interval (2000 resamples of the records), per-attribute means, and the lowest-scoring records
  with their reasons; the sample size, seed and judge are stated.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity.errors import UserError
from medtrinity.evaluate.alignment_reference import reference_of
from medtrinity.export.build_reader import Build
from medtrinity.export.selection import split_of
from medtrinity.records import ATTRIBUTE_NAMES, row_to_sample

BOOTSTRAP = 2000
LOWEST = 5
_COLUMNS = [
    "id",
    "source",
    "split",
    "width",
    "height",
    "modality",
    "organ",
    "disease",
    "labels",
    "label_kinds",
    "origin",
    "rois",
    "description",
    "attributes",
    "reference_text",
    "checks",
    "claims",
    "knowledge",
    "coarse_caption",
    "describer",
    "image",
]


@dataclass
class RecordScore:
    id: str
    source: str
    modality: str
    split: str
    status: str  # scored | skipped | unparseable | failed
    scores: list[int | None] = field(default_factory=lambda: [None] * 5)
    reasons: list[str] = field(default_factory=list)
    reply: str | None = None

    @property
    def total(self) -> float | None:
        assessed = [s for s in self.scores if s is not None]
        return round(10 * sum(assessed) / (2 * len(assessed)), 2) if self.status == "scored" and assessed else None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "modality": self.modality,
            "split": self.split,
            "status": self.status,
            **{f"{name}_score": score for name, score in zip(ATTRIBUTE_NAMES, self.scores)},
            "total": self.total,
            "reasons": self.reasons,
            "reply": self.reply,
        }


def bootstrap_interval(values: list[float], seed: int, resamples: int = BOOTSTRAP) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of the mean over `resamples` resamples with replacement."""
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), (resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return round(float(low), 2), round(float(high), 2)


def group_summary(records: list[RecordScore], seed: int) -> dict[str, Any]:
    scored = [r for r in records if r.status == "scored" and r.total is not None]
    totals = [r.total for r in scored]
    attributes = {}
    for k, name in enumerate(ATTRIBUTE_NAMES):
        values = [r.scores[k] for r in scored if r.scores[k] is not None]
        attributes[name] = {"mean": round(sum(values) / len(values), 3) if values else None, "assessed": len(values)}
    lowest = sorted(scored, key=lambda r: (r.total, r.id))[:LOWEST]
    return {
        "records": len(records),
        "scored": len(scored),
        "mean_total": round(sum(totals) / len(totals), 2) if totals else None,
        "ci95": bootstrap_interval(totals, seed),
        "attributes": attributes,
        "unparseable": sum(r.status == "unparseable" for r in records),
        "skipped": sum(r.status == "skipped" for r in records),
        "failed": sum(r.status == "failed" for r in records),
        "lowest": [{"id": r.id, "total": r.total, "reasons": r.reasons} for r in lowest],
    }


@dataclass
class AlignmentSummary:
    judge: str
    build: str
    eligible: int
    sample: int | None
    seed: int
    records: list[RecordScore]
    out: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        by_source: dict[str, list[RecordScore]] = {}
        by_modality: dict[str, list[RecordScore]] = {}
        for r in self.records:
            by_source.setdefault(r.source, []).append(r)
            by_modality.setdefault(r.modality, []).append(r)
        return {
            "judge": self.judge,
            "build": self.build,
            "eligible": self.eligible,
            "sample": self.sample,
            "drawn": len(self.records),
            "seed": self.seed,
            "bootstrap_resamples": BOOTSTRAP,
            "all": group_summary(self.records, self.seed),
            "by_source": {k: group_summary(v, self.seed) for k, v in sorted(by_source.items())},
            "by_modality": {k: group_summary(v, self.seed) for k, v in sorted(by_modality.items())},
        }

    def lines(self) -> list[str]:
        data = self.as_dict()
        head = data["all"]
        drawn = f"a random sample of {len(self.records)} (seed {self.seed})" if self.sample else "all of them"
        lines = [
            (
                f"alignment ({self.judge} judge) of {self.build}: {self.eligible} records carry a human "
                f"annotation; {drawn} judged"
            ),
            _row("all", head),
        ]
        lines += [_row(f"source {k}", v) for k, v in data["by_source"].items()]
        lines += [_row(f"modality {k}", v) for k, v in data["by_modality"].items()]
        if head["unparseable"] or head["skipped"] or head["failed"]:
            lines.append(
                f"  not scored: {head['unparseable']} unparseable replies, {head['skipped']} skipped by the "
                f"judge, {head['failed']} requests failed"
            )
        if self.out:
            lines.append(f"  report: {self.out}/summary.md, per-record scores in {self.out}/scores.parquet")
        return lines

    def markdown(self) -> str:
        data = self.as_dict()
        out = [
            f"# Alignment with human annotations ({self.judge} judge)",
            "",
            (
                f"Build `{self.build}`: {self.eligible} records carry a human annotation; {len(self.records)} "
                f"judged ({'random sample, seed ' + str(self.seed) if self.sample else 'all'}). Totals are out of 10 "
                f"over the attributes that could be assessed; 95 % intervals from {BOOTSTRAP} bootstrap resamples "
                f"(seed {self.seed})."
            ),
            "",
            "| group | scored | mean /10 | 95 % CI | " + " | ".join(ATTRIBUTE_NAMES) + " |",
            "|---|---|---|---|" + "---|" * len(ATTRIBUTE_NAMES),
        ]
        groups = [("all", data["all"])] + [(f"source {k}", v) for k, v in data["by_source"].items()]
        groups += [(f"modality {k}", v) for k, v in data["by_modality"].items()]
        for name, g in groups:
            ci = f"{g['ci95'][0]}–{g['ci95'][1]}" if g["ci95"] else "-"
            attrs = " | ".join(
                "-" if a["mean"] is None else f"{a['mean']:.2f} (n={a['assessed']})" for a in g["attributes"].values()
            )
            out.append(
                f"| {name} | {g['scored']} | {'-' if g['mean_total'] is None else g['mean_total']} | {ci} | {attrs} |"
            )
        out += ["", "## Lowest-scoring records", ""]
        for item in data["all"]["lowest"]:
            lost = [r for r in item["reasons"] if "not assessable" not in r]
            out.append(f"- `{item['id']}` {item['total']}/10: " + ("; ".join(lost) or "no point lost"))
        return "\n".join(out) + "\n"

    def write(self, folder: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("source", pa.string()),
                ("modality", pa.string()),
                ("split", pa.string()),
                ("status", pa.string()),
                *[(f"{name}_score", pa.int8()) for name in ATTRIBUTE_NAMES],
                ("total", pa.float64()),
                ("reasons", pa.list_(pa.string())),
                ("reply", pa.string()),
            ]
        )
        pq.write_table(pa.Table.from_pylist([r.row() for r in self.records], schema=schema), folder / "scores.parquet")
        (folder / "summary.json").write_text(json.dumps(self.as_dict(), indent=1), encoding="utf-8")
        (folder / "summary.md").write_text(self.markdown(), encoding="utf-8")
        self.out = folder


def _row(name: str, g: dict[str, Any]) -> str:
    if g["mean_total"] is None:
        return f"  {name:<28} no record scored"
    ci = f" (95% CI {g['ci95'][0]}-{g['ci95'][1]})" if g["ci95"] else ""
    attrs = ", ".join(f"{k} {v['mean']:.2f}" for k, v in g["attributes"].items() if v["mean"] is not None)
    return f"  {name:<28} {g['mean_total']:>5}/10{ci} over {g['scored']}; {attrs}"


def eligible_ids(build: Build) -> list[str]:
    """Ids, in build order, of the records that carry a human annotation."""
    ids = []
    for batch in build.batches([c for c in _COLUMNS if c != "image"]):
        for row in batch:
            if reference_of(row_to_sample(row | {"image": {"bytes": None, "path": None}})).human:
                ids.append(row["id"])
    return ids


def _drawn_rows(build: Build, ids: set[str], with_image: bool):
    columns = _COLUMNS if with_image else [c for c in _COLUMNS if c != "image"]
    for batch in build.batches(columns):
        for row in batch:
            if row["id"] in ids:
                yield row if with_image else row | {"image": {"bytes": None, "path": None}}


def run_alignment(
    folder: str | Path,
    judge: str = "rules",
    sample: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    client_options: dict | None = None,
) -> AlignmentSummary:
    build = Build(folder)
    eligible = eligible_ids(build)
    if not eligible:
        raise UserError(
            f"{folder}: no record carries a human annotation (source regions, labels or reference "
            "text); nothing to align against"
        )
    drawn = set(random.Random(seed).sample(eligible, min(sample, len(eligible)))) if sample else set(eligible)
    if judge == "rules":
        records = _judge_rules(_drawn_rows(build, drawn, with_image=False))
    else:
        records = _judge_llm(list(_drawn_rows(build, drawn, with_image=True)), Path(folder), client_options or {})
    summary = AlignmentSummary(judge, str(folder), len(eligible), sample, seed, records)
    summary.write(Path(out) if out else Path(folder) / "eval" / f"alignment-{judge}")
    return summary


def _record(sample, status: str) -> RecordScore:
    return RecordScore(sample.id, sample.source, sample.modality, split_of(sample.split), status)


def _judge_rules(rows) -> list[RecordScore]:
    from medtrinity.evaluate.alignment_rules import judge_rules

    records = []
    for row in rows:
        sample = row_to_sample(row)
        scores = judge_rules(sample)
        record = _record(sample, "scored")
        record.scores = [s.score for s in scores]
        record.reasons = [reason for s in scores for reason in s.reasons]
        records.append(record)
    return records


def _judge_llm(rows: list[dict], folder: Path, options: dict) -> list[RecordScore]:
    from medtrinity.describe.image_payload import image_payload
    from medtrinity.evaluate import alignment_llm
    from medtrinity.evaluate.chat_client import ChatClient, ChatRequest
    from medtrinity.image_codec import decode_image_bytes

    def request_messages(sample) -> list[dict]:
        ref = reference_of(sample)
        return alignment_llm.messages(sample, ref, image_payload(sample, client.max_image_side).data_url)

    def probe(sample) -> list[dict]:  # the preflight's test image, with a description and a reference of its own
        sample.description = "This is a CT image of the chest. No region of interest is marked."
        return request_messages(sample)

    client = ChatClient(probe, cache_dir=folder / "cache", **options)
    client.preflight()
    samples = []
    for row in rows:
        sample = row_to_sample(row)
        sample.pixels = decode_image_bytes(row["image"]["bytes"])
        samples.append(sample)
    replies = client.ask([ChatRequest(request_messages(s), alignment_llm.PROMPT_VERSION) for s in samples])
    records = []
    for sample, reply in zip(samples, replies, strict=True):
        sample.pixels = None
        if isinstance(reply, BaseException):
            record = _record(sample, "failed")
            record.reasons = [f"request failed: {reply}"]
        else:
            parsed = alignment_llm.parse_reply(reply.content)
            record = _record(sample, parsed.status)
            record.scores = parsed.scores or [None] * 5
            record.reasons, record.reply = parsed.reasons, reply.content
        records.append(record)
    return records
