"""The measured facts of a build, gathered shard by shard, batch by batch (memory stays flat).

Only small columns are read (never the images); counters grow with the number of distinct values
(modalities, organs, check names …), not with the number of records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from medtrinity.describe.reference_audit import PREFIX as REFERENCE_CHECK
from medtrinity.describe.reference_audit import contradicted
from medtrinity.report.reason_kinds import ReasonKind, reason_kinds
from medtrinity.viewer.build_folder import BuildFolder

NONE = "(none)"
# ROI area in percent of the image: bin edges (the last bin is closed at 100).
AREA_EDGES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)
_COLUMNS = (
    "source",
    "split",
    "modality",
    "organ",
    "disease",
    "width",
    "height",
    "rois",
    "description",
    "describer",
    "checks",
    "origin",
    "reference_text",
    "knowledge",
)
BATCH_ROWS = 256


def area_bin(percent: float) -> int:
    for index in range(len(AREA_EDGES) - 2):
        if percent < AREA_EDGES[index + 1]:
            return index
    return len(AREA_EDGES) - 2


def word_count(text: str | None) -> int:
    return len((text or "").split())


@dataclass
class BuildStats:
    records: int = 0
    by_source: Counter = field(default_factory=Counter)
    by_split: Counter = field(default_factory=Counter)
    by_source_split: Counter = field(default_factory=Counter)  # (source, split)
    by_modality: Counter = field(default_factory=Counter)
    by_organ: Counter = field(default_factory=Counter)
    by_disease: Counter = field(default_factory=Counter)
    describers: Counter = field(default_factory=Counter)
    intensity_rules: Counter = field(default_factory=Counter)
    rois: int = 0
    rois_with_mask: int = 0
    rois_by_source: Counter = field(default_factory=Counter)  # "annotation" / "expert:…" -> ROIs
    records_by_roi_source: Counter = field(default_factory=Counter)  # -> records with at least one such ROI
    rois_by_kind: Counter = field(default_factory=Counter)
    rois_per_image: Counter = field(default_factory=Counter)  # ROI count -> records
    roi_area_bins: Counter = field(default_factory=Counter)  # AREA_EDGES bin index -> ROIs
    description_words: Counter = field(default_factory=Counter)  # word count -> records
    checks: dict[str, Counter] = field(default_factory=dict)  # check name -> {status: records} (the description's)
    records_with_failed_check: int = 0  # a check of the description failed
    # The audit of a source's own caption (checks named "reference:<check>", describe/reference_audit.py), per
    # (source, the dataset the source names for the image: origin.source_dataset, NONE where it names none)
    reference_checks: dict[str, Counter] = field(default_factory=dict)  # check name -> {status: records}
    references_audited: Counter = field(default_factory=Counter)
    references_contradicted: Counter = field(default_factory=Counter)
    records_with_reference_text: int = 0
    records_with_knowledge: int = 0
    width_range: tuple[int, int] | None = None
    height_range: tuple[int, int] | None = None
    data_shards: int = 0
    data_bytes: int = 0
    quarantined: int = 0
    quarantine_by_stage: Counter = field(default_factory=Counter)
    quarantine_reasons: list[ReasonKind] = field(default_factory=list)

    def add(self, row: dict) -> None:
        self.records += 1
        split = row["split"] or NONE
        self.by_source[row["source"]] += 1
        self.by_split[split] += 1
        self.by_source_split[row["source"], split] += 1
        self.by_modality[row["modality"] or NONE] += 1
        self.by_organ[row["organ"] or NONE] += 1
        self.by_disease[row["disease"] or NONE] += 1
        self.describers[row["describer"] or NONE] += 1
        self.intensity_rules[(row["origin"] or {}).get("intensity") or NONE] += 1
        rois = row["rois"] or []
        self.rois += len(rois)
        self.rois_per_image[len(rois)] += 1
        for roi in rois:
            self.rois_by_source[roi["source"]] += 1
            self.rois_by_kind[roi.get("kind") or "label"] += 1
            self.roi_area_bins[area_bin(roi["area_ratio"])] += 1
            self.rois_with_mask += bool(roi["mask"] and roi["mask"].get("counts"))
        for source in {roi["source"] for roi in rois}:
            self.records_by_roi_source[source] += 1
        self.description_words[word_count(row["description"])] += 1
        failed, audited = False, False
        for check in row["checks"] or []:
            status = check.get("status") or ("pass" if check["ok"] else "fail")
            if check["name"].startswith(REFERENCE_CHECK):
                self.reference_checks.setdefault(check["name"], Counter())[status] += 1
                audited = True
                continue
            self.checks.setdefault(check["name"], Counter())[status] += 1
            failed |= status == "fail"
        self.records_with_failed_check += failed
        if audited:
            key = (row["source"], (row["origin"] or {}).get("source_dataset") or NONE)
            self.references_audited[key] += 1
            self.references_contradicted[key] += contradicted(row["checks"])
        self.records_with_reference_text += bool(row["reference_text"])
        self.records_with_knowledge += bool(row["knowledge"])
        self.width_range = _widen(self.width_range, row["width"])
        self.height_range = _widen(self.height_range, row["height"])

    def words_median(self) -> int | None:
        if not self.records:
            return None
        middle, seen = (self.records - 1) // 2, 0
        for words in sorted(self.description_words):
            seen += self.description_words[words]
            if seen > middle:
                return words
        return None


def _widen(span: tuple[int, int] | None, value: int) -> tuple[int, int]:
    return (value, value) if span is None else (min(span[0], value), max(span[1], value))


def collect(folder: BuildFolder) -> BuildStats:
    import pyarrow.parquet as pq

    stats = BuildStats()
    for path in folder.data_shards():
        parquet = pq.ParquetFile(path)
        stats.data_shards += 1
        stats.data_bytes += path.stat().st_size
        columns = [c for c in _COLUMNS if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            for row in batch.to_pylist():
                stats.add({c: row.get(c) for c in _COLUMNS})
    stats.quarantine_reasons = reason_kinds(_quarantine_rows(folder, stats))
    return stats


def _quarantine_rows(folder: BuildFolder, stats: BuildStats):
    import pyarrow.parquet as pq

    for path in folder.quarantine_shards():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=["stage", "file", "reason"]):
            for row in batch.to_pylist():
                stats.quarantined += 1
                stats.quarantine_by_stage[row["stage"]] += 1
                yield row["stage"], row["file"], row["reason"]
