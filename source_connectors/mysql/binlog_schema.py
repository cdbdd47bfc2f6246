"""Which tables a binlog reader captures, and the schema each row event is decoded with.

A binlog row event carries values, not a schema. The schema comes from ``information_schema``
(:func:`schemas.introspect.load_table_schema`) the first time a table is seen and again after
every DDL on it, and is checked against the column names the TABLE_MAP event carries
(``binlog_row_metadata=FULL``). When the two disagree — the reader is replaying events older
than the live table, e.g. after a restart behind an ALTER — the live schema is not the one the
event was written with, so the schema is rebuilt from the TABLE_MAP event itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE

from schemas.introspect import TableNotFound, load_table_schema
from schemas.table import Column, TableSchema
from source_connectors.mysql.binlog_history import HistoryEntry, Position, SchemaHistory
from source_connectors.mysql.binlog_values import RowConverter, row_converter
from source_connectors.mysql.field_types import PLAIN_TYPE_NAMES

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


# --- a schema from a TABLE_MAP event ----------------------------------------------------------

_SIMPLE = PLAIN_TYPE_NAMES
_TEMPORAL = {
    FIELD_TYPE.TIME2: "time",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME2: "datetime",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.TIMESTAMP2: "timestamp",
    FIELD_TYPE.TIMESTAMP: "timestamp",
}
_BLOBS = {1: "tiny", 2: "", 3: "medium", 4: "long"}


def _quoted_list(values: list[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def column_from_table_map(col: Any) -> Column:
    """A :class:`Column` from one column of a TABLE_MAP event (with FULL row metadata)."""
    code, name = col.type, col.name
    binary = (col.character_set_name or "") == "binary"
    precision = scale = fsp = None
    if code in _SIMPLE:
        data_type = column_type = _SIMPLE[code]
        if col.unsigned and code not in (FIELD_TYPE.DATE, FIELD_TYPE.YEAR, FIELD_TYPE.JSON):
            column_type += " unsigned"
    elif code == FIELD_TYPE.NEWDECIMAL:
        precision, scale = col.precision, col.decimals
        data_type, column_type = "decimal", f"decimal({precision},{scale})"
        column_type += " unsigned" if col.unsigned else ""
    elif code in _TEMPORAL:
        data_type, fsp = _TEMPORAL[code], getattr(col, "fsp", 0)
        column_type = f"{data_type}({fsp})" if fsp else data_type
    elif code in (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING):
        data_type = "varbinary" if binary else "varchar"
        column_type = f"{data_type}({col.max_length})"
    elif code == FIELD_TYPE.STRING:
        data_type = "binary" if binary else "char"
        column_type = f"{data_type}({col.max_length})"
    elif code in (FIELD_TYPE.ENUM, FIELD_TYPE.SET):
        data_type = "enum" if code == FIELD_TYPE.ENUM else "set"
        members = (col.enum_values or [""])[1:] if data_type == "enum" else col.set_values or []
        column_type = f"{data_type}({_quoted_list(members)})"
    elif code == FIELD_TYPE.BIT:
        data_type, column_type = "bit", f"bit({col.bits})"
    elif code == FIELD_TYPE.BLOB:
        size = _BLOBS.get(col.length_size, "long")
        data_type = column_type = f"{size}blob" if binary else f"{size}text"
    else:
        raise ValueError(f"column {name!r} has binlog type {code}, which Sluice cannot decode")
    return Column(
        name=name,
        data_type=data_type,
        column_type=column_type,
        nullable=True,  # the TABLE_MAP null bitmap is not kept by the library; NULL is safe
        numeric_precision=precision,
        numeric_scale=scale,
        datetime_precision=fsp,
        character_set=None if binary else col.character_set_name,
    )


def schema_from_table_map(table: Any, version: int, primary_key: tuple[str, ...]) -> TableSchema:
    """The schema a row event was written with, from its TABLE_MAP; the key from the map's
    primary key metadata, else ``primary_key`` (the last one known)."""
    columns = tuple(column_from_table_map(c) for c in table.columns)
    names = {c.name for c in columns}
    mapped = tuple(c.name for c in table.columns if c.is_primary)
    key = mapped or tuple(k for k in primary_key if k in names)
    return TableSchema(table.schema, table.table, columns, key, version)


# --- the tables seen so far -------------------------------------------------------------------


@dataclass(frozen=True)
class TrackedTable:
    """A table at one schema version, with the converter its row images need."""

    schema: TableSchema
    convert: RowConverter


class SchemaTracker:
    """The current schema of every captured table the reader has met.

    ``connect`` opens a metadata connection on demand (and again after it breaks); it is used
    only at a table's first sight, after DDL and when an event disagrees with the schema held.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._conn: Any = None
        self.tables: dict[tuple[str, str], TrackedTable] = {}
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

    def _track(self, schema: TableSchema) -> TrackedTable:
        tracked = TrackedTable(schema, row_converter(schema))
        self.tables[(schema.database, schema.table)] = tracked
        return tracked

    def for_event(
        self, db: str, table: str, map_table: Any, at: Position | None = None
    ) -> TrackedTable:
        """The schema to decode a rows event of ``db.table`` (at binlog position ``at``)
        with: the one held if its columns are the event's, else the one the schema history
        says the table had at ``at``, else the live one, else one rebuilt from the event."""
        names = tuple(c.name for c in map_table.columns)
        held = self.tables.get((db, table))
        if held is not None and held.schema.column_names == names:
            return held
        version = held.schema.version + 1 if held else 1
        if self.history is not None and at is not None:
            recorded = self.history.columns_at(db, table, at)
            if recorded is not None and tuple(c["name"] for c in recorded["columns"]) == names:
                entry = HistoryEntry(db, table, "", 0, "", "", None, recorded)
                schema = entry.schema_after(version)
                assert schema is not None
                return self._track(schema)
        live = self._load(db, table, version)
        if live is not None and live.column_names == names:
            return self._track(live)
        previous_key = held.schema.primary_key if held else (live.primary_key if live else ())
        return self._track(schema_from_table_map(map_table, version, previous_key))

    def after_ddl(
        self, db: str, table: str, at: Position | None = None, gtid: str = "", ddl: str = ""
    ) -> TableSchema | None:
        """``db.table`` right after DDL (at binlog position ``at``) touched it, as a new
        version; None once it is gone. A DDL the schema history holds (read again) gets the
        schema it produced then; a new one the live schema, which is recorded."""
        held = self.tables.get((db, table))
        version = held.schema.version + 1 if held else 1
        history = self.history if at is not None else None
        if history is not None:
            assert at is not None
            entry = history.exact(db, table, at)
            if entry is not None:
                return self._replayed(db, table, entry.schema_after(version))
            following = history.next_after(db, table, at)
            if following is not None:
                # Replaying a DDL older than the recorded ones, so the live schema is not the
                # one it left: the next recorded DDL says (if it knew its "before").
                if following.before is not None:
                    entry = HistoryEntry(db, table, "", 0, "", "", None, following.before)
                    return self._replayed(db, table, entry.schema_after(version))
                history = None  # not known: the live schema, and nothing recorded
        live = self._load(db, table, version)
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
