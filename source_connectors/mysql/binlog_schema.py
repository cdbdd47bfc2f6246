"""Which tables a binlog reader captures, and the schema each row event is decoded with.

A binlog row event carries values, not a schema. The schema comes from ``information_schema``
(:func:`schemas.introspect.load_table_schema`) the first time a table is seen and again after
every DDL on it, or from the schema history (:mod:`.binlog_history`), and is used only if it
fits the TABLE_MAP event of the rows (:func:`.binlog_table_map.mismatch`: names, count,
binlog types and their lengths, charset, NULL-ability, key — ``binlog_row_metadata=FULL``).
When none fits — the reader is replaying events older than the live table (after
``ALTER TABLE … MODIFY``), or the table was dropped and created again since the history's
last record — the schema is rebuilt from the TABLE_MAP event itself.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schemas.introspect import TableNotFound, load_table_schema
from schemas.table import TableSchema
from source_connectors.mysql.binlog_history import HistoryEntry, Position, SchemaHistory
from source_connectors.mysql.binlog_table_map import mismatch, schema_from_table_map

log = logging.getLogger("sluice.source.binlog")

# --- DDL statements ----------------------------------------------------------------------------

_IDENT = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_NAME = rf"({_IDENT})(?:\s*\.\s*({_IDENT}))?"
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_HEADS = {
    "ALTER": re.compile(
        rf"ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.I
    ),
    "CREATE": re.compile(
        rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}",
        re.I,
    ),
    "DROP": re.compile(r"DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?", re.I),
    "RENAME": re.compile(r"RENAME\s+TABLES?\s+", re.I),
    "TRUNCATE": re.compile(rf"TRUNCATE\s+(?:TABLE\s+)?{_NAME}", re.I),
}
# ALTER TABLE a RENAME [TO|AS] b (not RENAME COLUMN/INDEX/KEY): b is a table too.
_ALTER_RENAME = re.compile(rf"\bRENAME\s+(?:(?:TO|AS)\s+)?(?!(?:COLUMN|INDEX|KEY)\b){_NAME}", re.I)
_LIST_ITEM = re.compile(rf"\s*{_NAME}(?:\s+(?:WAIT\s+\d+|NOWAIT))?\s*(?:,|\bTO\b|$)", re.I)


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


def _qualify(first: str, second: str | None, default_db: str) -> tuple[str, str]:
    return (_unquote(first), _unquote(second)) if second else (default_db, _unquote(first))


def ddl_tables(query: str, default_db: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``(kind, [(db, table), ...])`` for a statement that changes tables (ALTER, CREATE,
    DROP, RENAME, TRUNCATE TABLE); ``None`` for anything else. Unqualified names are in
    ``default_db`` (the QueryEvent's current database)."""
    text = _COMMENT.sub(" ", query).strip()
    for kind, head in _HEADS.items():
        m = head.match(text)
        if m is None:
            continue
        if kind in ("ALTER", "CREATE", "TRUNCATE"):
            names = [_qualify(m.group(1), m.group(2), default_db)]
            renamed = _ALTER_RENAME.search(text, m.end()) if kind == "ALTER" else None
            if renamed is not None:
                names.append(_qualify(renamed.group(1), renamed.group(2), default_db))
            return kind, names
        names = []
        rest = text[m.end() :]
        while rest:
            item = _LIST_ITEM.match(rest)
            if item is None:
                break
            names.append(_qualify(item.group(1), item.group(2), default_db))
            rest = rest[item.end() :]
        return kind, names
    return None


# --- which tables ------------------------------------------------------------------------------


class TableFilter:
    """``table`` names (``db.table`` or bare, in the default database), ``tableRegex`` and
    ``excludeTable`` patterns (matched against the whole ``db.table``). Decisions are cached:
    the binlog asks about the same few tables millions of times."""

    def __init__(
        self, names: Iterable[str], default_db: str, regex: str | None, exclude: Iterable[str]
    ) -> None:
        self.names: set[tuple[str, str]] = set()
        for name in names:
            db, sep, table = name.partition(".")
            self.names.add((db, table) if sep else (default_db, name))
        self.regex = re.compile(regex) if regex else None
        self.exclude = [re.compile(p) for p in exclude]
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, db: str, table: str) -> bool:
        key = (db, table)
        hit = self._cache.get(key)
        if hit is None:
            full = f"{db}.{table}"
            hit = (
                key in self.names or bool(self.regex and self.regex.fullmatch(full))
            ) and not any(p.fullmatch(full) for p in self.exclude)
            self._cache[key] = hit
        return hit

    @property
    def explicit_only(self) -> bool:
        """Only listed names, no pattern: the binlog library can pre-filter by name."""
        return self.regex is None


# --- the tables seen so far -------------------------------------------------------------------


@dataclass(frozen=True)
class TrackedTable:
    """A table at one schema version."""

    schema: TableSchema


class SchemaTracker:
    """The current schema of every captured table the reader has met.

    ``connect`` opens a metadata connection on demand (and again after it breaks); it is used
    only at a table's first sight, after DDL and when an event disagrees with the schema held.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._conn: Any = None
        self.tables: dict[tuple[str, str], TrackedTable] = {}
        # The TABLE_MAP last found to fit each held schema: most events repeat it.
        self._fits: dict[tuple[str, str], tuple[Any, TrackedTable]] = {}
        self.history: SchemaHistory | None = None
        """Set when the reader runs with Kafka (:mod:`.binlog_history`)."""

    def _load(self, db: str, table: str, version: int) -> TableSchema | None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            return load_table_schema(self._conn, db, table, version=version)
        except TableNotFound:
            return None
        except Exception:
            self.close()  # a broken connection: the next call opens a fresh one
            raise

    def _track(self, schema: TableSchema, map_table: Any = None) -> TrackedTable:
        """Hold ``schema`` as the table's current one (checked against ``map_table``)."""
        tracked = TrackedTable(schema)
        key = (schema.database, schema.table)
        self.tables[key] = tracked
        if map_table is not None:
            self._fits[key] = (map_table, tracked)
        return tracked

    def for_event(
        self,
        db: str,
        table: str,
        map_table: Any,
        at: Position | None = None,
        nullable: tuple[bool, ...] | None = None,
    ) -> TrackedTable:
        """The schema to decode a rows event of ``db.table`` (at binlog position ``at``)
        with: the first that fits the event's TABLE_MAP (``map_table``, and its null bitmap
        ``nullable`` when known) — column names, count, binlog types, key
        (:func:`.binlog_table_map.mismatch`) — of the one held, the one the schema history
        says the table had at ``at``, and the live one; else one rebuilt from the TABLE_MAP.
        A schema that only has the right names is not enough: after ``ALTER TABLE … MODIFY``
        or a table dropped and created again, rows written before it have other types."""
        key = (db, table)
        held = self.tables.get(key)
        checked = self._fits.get(key)
        if checked is not None and checked[0] is map_table and checked[1] is held:
            assert held is not None
            return held  # the same TABLE_MAP as the last event's: checked already
        if held is not None and mismatch(held.schema, map_table, nullable) is None:
            self._fits[key] = (map_table, held)
            return held
        version = held.schema.version + 1 if held else 1
        if self.history is not None and at is not None:
            recorded = self.history.columns_at(db, table, at)
            if recorded is not None:
                schema = HistoryEntry(db, table, "", 0, "", "", None, recorded).schema_after(
                    version
                )
                if schema is not None and mismatch(schema, map_table, nullable) is None:
                    return self._track(schema, map_table)
        live = self._load(db, table, version)
        why = "the table is gone" if live is None else mismatch(live, map_table, nullable)
        if why is None:
            assert live is not None
            return self._track(live, map_table)
        log.info(
            "rows of %s.%s at %s:%s were written with another schema than the table has now "
            "(%s): decoding them with the binlog's column types",
            db, table, *(at or ("?", "?")), why,
        )  # fmt: skip
        previous_key = held.schema.primary_key if held else (live.primary_key if live else ())
        return self._track(
            schema_from_table_map(map_table, version, previous_key, nullable), map_table
        )

    def after_ddl(
        self,
        db: str,
        table: str,
        at: Position | None = None,
        gtid: str = "",
        ddl: str = "",
        gone: bool = False,
    ) -> TableSchema | None:
        """``db.table`` right after DDL (at binlog position ``at``) touched it, as a new
        version; None once it is gone. A DDL the schema history holds (read again) gets the
        schema it produced then; a new one the live schema, which is recorded. ``gone``: the
        DDL removed this name (DROP TABLE, a rename away), so there is no schema after it,
        whatever table of that name exists now — a table created again is another table."""
        held = self.tables.get((db, table))
        version = held.schema.version + 1 if held else 1
        history = self.history if at is not None else None
        if history is not None:
            assert at is not None
            entry = history.exact(db, table, at)
            if entry is not None:
                return self._replayed(db, table, None if gone else entry.schema_after(version))
            following = None if gone else history.next_after(db, table, at)
            if following is not None:
                # Replaying a DDL older than the recorded ones, so the live schema is not the
                # one it left: the next recorded DDL says (if it knew its "before").
                if following.before is not None:
                    entry = HistoryEntry(db, table, "", 0, "", "", None, following.before)
                    return self._replayed(db, table, entry.schema_after(version))
                history = None  # not known: the live schema, and nothing recorded
        live = None if gone else self._load(db, table, version)
        if history is not None:
            assert at is not None
            before = held.schema if held else None
            history.record(HistoryEntry.of(db, table, at, gtid, ddl, before, live))
        if live is None:
            self.tables.pop((db, table), None)
            return None
        return self._track(live).schema

    def _replayed(self, db: str, table: str, schema: TableSchema | None) -> TableSchema | None:
        if schema is None:
            self.tables.pop((db, table), None)
            return None
        return self._track(schema).schema

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.close()
            self._conn = None
