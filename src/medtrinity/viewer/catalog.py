"""DuckDB queries over a build's Parquet shards: gallery pages, facet counts, one record.

Nothing is copied to disk or imported by the user. On open, the small columns every filter and card needs
(id, source, split, modality, organ, disease, describer, ROI sources, failed checks, and where the row is)
are read once from the shards into an in-memory DuckDB table — a few seconds for a million records — and
shards that appear later (a build still running) are added on the next request. Descriptions and images
stay in the Parquet files: a search scans the description column once per new query text (the hits are
kept), and a record is read from its shard's row group, which a page's thumbnails share (the last few row
groups are kept). Pages are in build order — shard, then row — and are cut by keyset (`after` the last shown
record), never by OFFSET, so page 10 000 costs what page 1 does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtrinity.describe.reference_audit import PREFIX as REFERENCE_CHECK
from medtrinity.errors import UserError
from medtrinity.viewer.build_folder import BuildFolder
from medtrinity.viewer.filters import ANY_FAILED, CONTRADICTED, FACETS, NONE, NOT_CONTRADICTED, Filters

# The audit of a source's own caption (describe/reference_audit.py): contradicted when one of its checks failed,
# NULL where the record carries no audited caption.
_REFERENCE_CHECKS = f"list_filter(checks, lambda c: starts_with(c.name, '{REFERENCE_CHECK}'))"
_REFERENCE_CAPTION = (
    f"CASE WHEN len({_REFERENCE_CHECKS}) = 0 THEN NULL "
    f"WHEN len(list_filter({_REFERENCE_CHECKS}, lambda c: NOT c.ok)) > 0 THEN '{CONTRADICTED}' "
    f"ELSE '{NOT_CONTRADICTED}' END"
)
# The small columns of each record, as the index holds them. origin.source_dataset through JSON: a build written
# before that field existed has no such key, and reads as NULL.
_INDEX_COLUMNS = f"""
    id, source, split, modality, organ, disease, describer,
    len(rois)::INTEGER AS n_rois,
    list_distinct(list_transform(rois, lambda r: r.source)) AS roi_sources,
    list_distinct(list_transform(list_filter(checks, lambda c: NOT c.ok), lambda c: c.name)) AS failed_checks,
    json_extract_string(to_json(origin), '$.source_dataset') AS source_dataset,
    {_REFERENCE_CAPTION} AS reference_caption,
    parse_filename(filename) AS shard, file_row_number AS shard_row
"""
_INDEX_TABLE = """CREATE TABLE records (
    id VARCHAR, source VARCHAR, split VARCHAR, modality VARCHAR, organ VARCHAR, disease VARCHAR, describer VARCHAR,
    n_rois INTEGER, roi_sources VARCHAR[], failed_checks VARCHAR[], source_dataset VARCHAR, reference_caption VARCHAR,
    shard VARCHAR, shard_row BIGINT)"""
_CARD_COLUMNS = (
    "id, source, split, modality, organ, disease, n_rois, failed_checks, reference_caption, shard, shard_row"
)
FACET_VALUES_SHOWN = 60  # values listed per facet, most frequent first (the rest are counted)
SEARCHES_KEPT = 16  # hit lists of recent search texts


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Position:
    """Where a record is in build order: its shard's file name and its row there (the keyset cursor)."""

    shard: str
    row: int

    def token(self) -> str:
        return f"{self.shard.removesuffix('.parquet')}:{self.row}"

    @classmethod
    def parse(cls, token: str) -> Position:
        name, sep, row = token.rpartition(":")
        if not sep or not name.startswith("part-") or not row.isdigit():
            raise UserError(f"page cursor '{token}' is not SHARD:ROW (e.g. part-00000:47)")
        return cls(f"{name}.parquet", int(row))


@dataclass
class Page:
    records: list[dict[str, Any]]
    matching: int  # records matching the filters, all pages together
    next_after: str | None  # cursor of the next page, None on the last
    prev_before: str | None  # cursor of the previous page, None on the first


class Catalog:
    def __init__(self, folder: BuildFolder, row_groups_kept: int = 8) -> None:
        import duckdb

        self.folder = folder
        self._db = duckdb.connect(":memory:", config={"threads": 4})
        self._lock = threading.Lock()  # index refresh and search tables: one writer at a time
        self._row_groups: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._row_groups_kept = row_groups_kept
        self._indexed: dict[str, int] = {}  # shard file name -> mtime_ns when indexed
        self._searches: OrderedDict[str, str] = OrderedDict()  # search text -> table of its hits
        self._search_serial = 0
        self._db.execute(_INDEX_TABLE)
        self.refresh()

    # ------------------------------------------------------------------ index
    def refresh(self) -> None:
        """Index shards that appeared (or were rewritten) since the last call; forget removed ones."""
        current = {p.name: p.stat().st_mtime_ns for p in self.folder.data_shards()}
        if current == self._indexed:
            return
        with self._lock:
            changed = sorted(name for name, mtime in current.items() if self._indexed.get(name) != mtime)
            gone = sorted(set(self._indexed) - set(current))
            cursor = self._db.cursor()
            try:
                for name in gone + changed:
                    cursor.execute("DELETE FROM records WHERE shard = ?", [name])
                if changed:
                    files = [str(self.folder.root / "data" / name) for name in changed]
                    cursor.execute(
                        f"INSERT INTO records SELECT {_INDEX_COLUMNS} FROM read_parquet(?, filename=true, "
                        "file_row_number=true, union_by_name=true)",
                        [files],
                    )
                for table in self._searches.values():  # hits were found in the old shards
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
                self._searches.clear()
            finally:
                cursor.close()
            self._indexed = current

    def _text_match(self, filters: Filters) -> str | None:
        """`id IN (hits)` for the search text, the hits found once per text (over the description column)."""
        if not filters.q:
            return None
        with self._lock:
            table = self._searches.get(filters.q)
            if table is None:
                shards = [str(p) for p in self.folder.data_shards() if p.name in self._indexed]
                self._search_serial += 1
                table = f"search_{self._search_serial}"
                condition, words = filters.text_condition()
                cursor = self._db.cursor()
                try:
                    if shards:
                        cursor.execute(
                            f"CREATE OR REPLACE TABLE {table} AS SELECT id FROM "
                            f"read_parquet(?, union_by_name=true) WHERE {condition}",
                            [shards, *words],
                        )
                    else:
                        cursor.execute(f"CREATE OR REPLACE TABLE {table} (id VARCHAR)")
                    self._searches[filters.q] = table
                    while len(self._searches) > SEARCHES_KEPT:
                        cursor.execute(f"DROP TABLE IF EXISTS {self._searches.popitem(last=False)[1]}")
                finally:
                    cursor.close()
            self._searches.move_to_end(filters.q)
            return f"id IN (SELECT id FROM {table})"

    def _where(self, filters: Filters, without: str | None = None) -> tuple[str, list]:
        self.refresh()
        return filters.where(without=without, text_match=self._text_match(filters))

    def _query(self, sql: str, args: list | None = None) -> list[tuple]:
        cursor = self._db.cursor()  # one connection per call: DuckDB cursors are not shared between threads
        try:
            return cursor.execute(sql, args or []).fetchall()
        finally:
            cursor.close()

    def _dicts(self, sql: str, args: list | None = None) -> list[dict[str, Any]]:
        cursor = self._db.cursor()
        try:
            result = cursor.execute(sql, args or [])
            names = [d[0] for d in result.description]
            return [dict(zip(names, row)) for row in result.fetchall()]
        finally:
            cursor.close()

    # ------------------------------------------------------------------ gallery
    def count(self, filters: Filters) -> int:
        where, args = self._where(filters)
        return self._query(f"SELECT count(*) FROM records WHERE {where}", args)[0][0]

    def page(self, filters: Filters, size: int = 48, after: str | None = None, before: str | None = None) -> Page:
        where, args = self._where(filters)
        order = "ASC"
        if after:
            cursor = Position.parse(after)
            where += " AND (shard > ? OR (shard = ? AND shard_row > ?))"
            args += [cursor.shard, cursor.shard, cursor.row]
        elif before:
            cursor = Position.parse(before)
            where += " AND (shard < ? OR (shard = ? AND shard_row < ?))"
            args += [cursor.shard, cursor.shard, cursor.row]
            order = "DESC"
        rows = self._dicts(
            f"SELECT {_CARD_COLUMNS} FROM records WHERE {where} "
            f"ORDER BY shard {order}, shard_row {order} LIMIT {size + 1}",
            args,
        )
        more = len(rows) > size
        rows = rows[:size]
        if before:
            rows.reverse()
        for row in rows:
            row["cursor"] = Position(row.pop("shard"), row.pop("shard_row")).token()
        has_next = more if not before else True
        has_prev = (more if before else after is not None) and bool(rows)
        return Page(
            records=rows,
            matching=self.count(filters),
            next_after=rows[-1]["cursor"] if rows and has_next else None,
            prev_before=rows[0]["cursor"] if rows and has_prev else None,
        )

    def facets(self, filters: Filters) -> dict[str, dict[str, Any]]:
        """Per facet: its values with the number of records each would give, under the other filters."""
        out: dict[str, dict[str, Any]] = {}
        for facet in FACETS:
            where, args = self._where(filters, without=facet.key)
            if facet.listed:
                sql = (
                    f"SELECT v, count(*) AS n FROM (SELECT unnest({facet.column}) AS v FROM records "
                    f"WHERE {where}) GROUP BY v ORDER BY n DESC, v"
                )
            else:
                sql = (
                    f"SELECT coalesce({facet.column}, {_sql_text(NONE)}) AS v, count(*) AS n FROM records "
                    f"WHERE {where} GROUP BY v ORDER BY n DESC, v"
                )
            values = self._query(sql, args)
            if facet.only_when_set and all(v == NONE for v, _ in values):
                values = []  # e.g. no record carries an audited caption: the facet says nothing
            if facet.key == "failed":
                anyfailed = self._query(f"SELECT count(*) FROM records WHERE {where} AND len(failed_checks) > 0", args)
                values = [(ANY_FAILED, anyfailed[0][0])] + values if anyfailed[0][0] else values
            out[facet.key] = {
                "title": facet.title,
                "values": [{"value": v, "count": n} for v, n in values[:FACET_VALUES_SHOWN]],
                "more": max(0, len(values) - FACET_VALUES_SHOWN),
                "selected": filters.values.get(facet.key),
            }
        return out

    def caption_audit(self) -> list[dict[str, Any]]:
        """Per source and the dataset it names for its images: the records whose own caption was audited and
        how many of those captions their record contradicts."""
        self.refresh()
        rows = self._dicts(
            f"SELECT source, coalesce(source_dataset, {_sql_text(NONE)}) AS dataset, count(*) AS audited, "
            f"count(*) FILTER (WHERE reference_caption = '{CONTRADICTED}') AS contradicted FROM records "
            "WHERE reference_caption IS NOT NULL GROUP BY source, dataset ORDER BY source, lower(dataset), dataset"
        )
        for row in rows:
            row["rate"] = row["contradicted"] / row["audited"]
        return rows

    # ------------------------------------------------------------------ one record
    def locate(self, record_id: str) -> Position | None:
        self.refresh()
        rows = self._query("SELECT shard, shard_row FROM records WHERE id = ? LIMIT 1", [record_id])
        return Position(rows[0][0], rows[0][1]) if rows else None

    def neighbours(self, position: Position, filters: Filters) -> tuple[str | None, str | None]:
        """Ids of the records before and after `position` in build order, among those the filters keep."""
        where, args = self._where(filters)
        before = self._query(
            f"SELECT id FROM records WHERE {where} AND (shard < ? OR (shard = ? AND shard_row < ?)) "
            "ORDER BY shard DESC, shard_row DESC LIMIT 1",
            args + [position.shard, position.shard, position.row],
        )
        after = self._query(
            f"SELECT id FROM records WHERE {where} AND (shard > ? OR (shard = ? AND shard_row > ?)) "
            "ORDER BY shard, shard_row LIMIT 1",
            args + [position.shard, position.shard, position.row],
        )
        return (before[0][0] if before else None), (after[0][0] if after else None)

    def record(self, position: Position) -> dict[str, Any]:
        """The full row at `position`, image bytes included (read from its row group, which is kept)."""
        table, offset = self._row_group(position)
        return table.slice(offset, 1).to_pylist()[0]

    def _row_group(self, position: Position):
        import pyarrow.parquet as pq

        path = self.folder.root / "data" / position.shard
        if Path(position.shard).name != position.shard:
            raise UserError(f"no shard named {position.shard}")
        parquet = pq.ParquetFile(path)
        start = 0
        for index in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(index).num_rows
            if position.row < start + rows:
                key = (position.shard, index)
                with self._lock:
                    table = self._row_groups.get(key)
                    if table is not None:
                        self._row_groups.move_to_end(key)
                        return table, position.row - start
                table = parquet.read_row_group(index)
                with self._lock:
                    self._row_groups[key] = table
                    while len(self._row_groups) > self._row_groups_kept:
                        self._row_groups.popitem(last=False)
                return table, position.row - start
            start += rows
        raise UserError(f"{position.shard} has no row {position.row}")

    # ------------------------------------------------------------------ quarantine
    def _quarantine(self, sql: str, args: list | None = None, dicts: bool = False):
        """`sql` over the quarantine shards (named `quarantine` in it); no rows while there are none."""
        shards = [str(p) for p in self.folder.quarantine_shards()]
        if not shards:
            return []
        source = "(SELECT id, source, file, stage, reason FROM read_parquet(?, union_by_name=true)) AS quarantine"
        run = self._dicts if dicts else self._query
        return run(sql.replace("FROM quarantine", f"FROM {source}"), [shards, *(args or [])])

    def quarantine_by_stage(self) -> list[tuple[str, int]]:
        return self._quarantine("SELECT stage, count(*) AS n FROM quarantine GROUP BY stage ORDER BY n DESC, stage")

    def quarantine_reasons(self) -> list[tuple[str, str, str]]:
        """Every quarantined (stage, file, reason), for grouping into kinds."""
        return self._quarantine("SELECT stage, file, reason FROM quarantine")

    def quarantine_rows(self, stage: str | None, size: int, after: str | None) -> list[dict[str, Any]]:
        where, args = "TRUE", []
        if stage:
            where += " AND stage = ?"
            args.append(stage)
        if after:
            where += " AND id > ?"
            args.append(after)
        return self._quarantine(
            f"SELECT id, source, file, stage, reason FROM quarantine WHERE {where} ORDER BY id LIMIT {size}",
            args,
            dicts=True,
        )
