"""Schema history: each DDL on a captured table, at its binlog position, in a compacted Kafka
topic per server (``sluice-schema-history-<host>_<port>``).

A binlog row event carries values, and (with ``binlog_row_metadata=FULL``) column names,
binlog types, collations and NULL-ability — not the declared types or defaults, and nothing
about the DDL that came between. A reader replaying old binlog (a restart behind later
ALTERs, or a start from an old file/position/GTID) would otherwise decode with
``information_schema``'s *current* schema or the approximate one rebuilt from the TABLE_MAP,
and announce each old DDL with the schema the table has today. The history records, for
every DDL the reader meets first-hand, the table's schema right before and right after it,
so a replay decodes each row with the exact schema it was written with and passes on each
DDL with the schema it produced. A recorded schema decodes rows only if it fits their
TABLE_MAP (:func:`.binlog_table_map.mismatch`): DDL no reader met (a table dropped and
created again while no job ran) cannot make a record outlive its table.

Records are keyed ``db.table@file:pos`` (the DDL's start), so reading a DDL again (a restart)
rewrites the same key with the same value, and compaction keeps one per DDL. A record is
flushed before the batch that carries its DDL is handed over: the reader's committed position
never passes a DDL whose record is not in Kafka.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from coordinator.errors import ConnectError
from schemas.table import Column, TableSchema
from source_connectors.base import StateStores

log = logging.getLogger("sluice.source.binlog")

TOPIC_PREFIX = "sluice-schema-history-"

Position = tuple[str, int]


def history_topic(server: str) -> str:
    return TOPIC_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "_", server)[:150]


def _schema_json(schema: TableSchema | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    return {
        "columns": [c.to_json() for c in schema.columns],
        "primary_key": list(schema.primary_key),
    }


def _schema_from(db: str, table: str, data: dict[str, Any] | None, version: int) -> Any:
    if data is None:
        return None
    columns = tuple(Column.from_json(c) for c in data["columns"])
    return TableSchema(db, table, columns, tuple(data["primary_key"]), version)


@dataclass(frozen=True)
class HistoryEntry:
    """DDL on ``db.table`` at ``file:pos``: the schema right before (None: no table, or not
    known) and right after it (None: the table is gone)."""

    database: str
    table: str
    file: str
    pos: int
    gtid: str
    ddl: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def at(self) -> Position:
        return self.file, self.pos

    @property
    def key(self) -> str:
        return f"{self.database}.{self.table}@{self.file}:{self.pos}"

    def schema_after(self, version: int) -> TableSchema | None:
        result: TableSchema | None = _schema_from(self.database, self.table, self.after, version)
        return result

    def schema_before(self, version: int) -> TableSchema | None:
        result: TableSchema | None = _schema_from(self.database, self.table, self.before, version)
        return result

    @staticmethod
    def of(
        db: str,
        table: str,
        at: Position,
        gtid: str,
        ddl: str,
        before: TableSchema | None,
        after: TableSchema | None,
    ) -> HistoryEntry:
        return HistoryEntry(
            db, table, at[0], at[1], gtid, ddl, _schema_json(before), _schema_json(after)
        )


class SchemaHistory:
    """The history of one server's captured tables: loaded once when a reader starts,
    appended to (and flushed) as it meets DDL."""

    def __init__(self, stores: StateStores | None, server: str) -> None:
        self.topic = history_topic(server)
        self._store = None if stores is None else stores.open(self.topic)
        self._tables: dict[tuple[str, str], list[HistoryEntry]] = {}

    def load(self) -> SchemaHistory:
        entries = 0
        for key, value in self._store.load() if self._store is not None else ():
            try:
                self._add(HistoryEntry(**json.loads(value)))
                entries += 1
            except (TypeError, ValueError) as e:  # a record of another shape: skip it, say so
                log.warning("%s: skipping record %r: %s", self.topic, key, e)
        log.info("schema history %s: %d DDL records", self.topic, entries)
        return self

    def _add(self, entry: HistoryEntry) -> None:
        entries = self._tables.setdefault((entry.database, entry.table), [])
        i = bisect.bisect_left([e.at for e in entries], entry.at)
        if i < len(entries) and entries[i].at == entry.at:
            entries[i] = entry
        else:
            entries.insert(i, entry)

    def exact(self, db: str, table: str, at: Position) -> HistoryEntry | None:
        """The record of the DDL on ``db.table`` that starts at ``at``, if met before."""
        for entry in self._tables.get((db, table), ()):
            if entry.at == at:
                return entry
        return None

    def columns_at(self, db: str, table: str, at: Position) -> dict[str, Any] | None:
        """The schema (as recorded) ``db.table`` had at binlog position ``at``: after the last
        DDL before it, else before the first DDL after it; None when the history cannot say."""
        entries = self._tables.get((db, table), [])
        i = bisect.bisect_right([e.at for e in entries], at)
        if i > 0:
            return entries[i - 1].after
        return entries[0].before if entries else None

    def next_after(self, db: str, table: str, at: Position) -> HistoryEntry | None:
        """The first recorded DDL on ``db.table`` after ``at``."""
        entries = self._tables.get((db, table), [])
        i = bisect.bisect_right([e.at for e in entries], at)
        return entries[i] if i < len(entries) else None

    def record(self, entry: HistoryEntry) -> None:
        """Write ``entry`` and wait until Kafka has it."""
        if self.exact(entry.database, entry.table, entry.at) == entry:
            return
        if self._store is not None:
            try:
                self._store.put(entry.key.encode(), json.dumps(asdict(entry)).encode())
            except ConnectError as e:
                raise ConnectError(
                    f"binlogreader: the schema history record of {entry.ddl!r} at "
                    f"{entry.file}:{entry.pos} was not kept: {e}"
                ) from None
        self._add(entry)
