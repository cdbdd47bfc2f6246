"""Read a table's :class:`~schemas.table.TableSchema` from a live MySQL/MariaDB server.

Used by the snapshot reader at start and by the binlog reader after each DDL, so the one
description of a table that every Avro schema and sink statement derives from comes from
``information_schema`` (not from parsing ``SHOW CREATE TABLE``).
"""

from __future__ import annotations

from typing import Any

import pymysql

from schemas.errors import SchemaError
from schemas.table import Column, TableSchema


class TableNotFound(SchemaError, LookupError):
    """The table does not exist, or the user may not see it."""


_COLUMNS_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE,
       DATETIME_PRECISION, CHARACTER_SET_NAME
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
ORDER BY ORDINAL_POSITION
"""

_PRIMARY_KEY_SQL = """
SELECT COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY ORDINAL_POSITION
"""

# Unique indexes, each column in index order; NULLABLE is '' for NOT NULL columns.
_UNIQUE_KEYS_SQL = """
SELECT INDEX_NAME, COLUMN_NAME, NULLABLE
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0
ORDER BY INDEX_NAME, SEQ_IN_INDEX
"""

# MariaDB only (MySQL's CHECK_CONSTRAINTS has no TABLE_NAME, and has a real JSON type).
_CHECKS_SQL = """
SELECT CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s
"""


def _rows(conn: Any, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    # A plain cursor whatever cursorclass the connection was opened with: rows are tuples.
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _json_columns(conn: Any, database: str, table: str) -> set[str]:
    """Names of MariaDB ``JSON`` columns: LONGTEXT with a ``json_valid(`col`)`` check."""
    try:
        clauses = [_text(r[0]) for r in _rows(conn, _CHECKS_SQL, (database, table))]
    except pymysql.MySQLError:
        return set()  # MySQL 8: JSON columns already say data_type 'json'
    found = set()
    for clause in clauses:
        clause = clause.strip()
        if clause.startswith("json_valid(`") and clause.endswith("`)"):
            found.add(clause[len("json_valid(`") : -2].replace("``", "`"))
    return found


def primary_key(conn: Any, database: str, table: str) -> tuple[str, ...]:
    """The primary key's columns, else those of the first unique index on NOT NULL columns.

    The fallback is the key InnoDB itself clusters on when there is no primary key; a table
    with neither has no row identity and gets ``()``.
    """
    pk = tuple(_text(r[0]) for r in _rows(conn, _PRIMARY_KEY_SQL, (database, table)))
    if pk:
        return pk
    indexes: dict[str, list[tuple[str, bool]]] = {}
    for index, column, nullable in _rows(conn, _UNIQUE_KEYS_SQL, (database, table)):
        indexes.setdefault(_text(index), []).append((_text(column), _text(nullable or "") == ""))
    for columns in indexes.values():
        if all(not_null for _, not_null in columns):
            return tuple(name for name, _ in columns)
    return ()


def load_table_schema(conn: Any, database: str, table: str, version: int = 1) -> TableSchema:
    """The table's columns in ordinal order and its key, from ``information_schema``.

    ``data_type`` is lower-cased; MariaDB ``JSON`` columns (a LONGTEXT alias) get
    ``data_type='json'`` while ``column_type`` stays ``longtext``. Raises
    :class:`TableNotFound` (a ``LookupError``) when the table is missing or invisible.
    """
    rows = _rows(conn, _COLUMNS_SQL, (database, table))
    if not rows:
        raise TableNotFound(
            f"table {database}.{table} does not exist (or the user cannot see its columns)"
        )
    json_columns = (
        _json_columns(conn, database, table)
        if any(_text(r[1]).lower() == "longtext" for r in rows)
        else set()
    )
    columns = []
    for name, data_type, column_type, nullable, precision, scale, dt_precision, charset in rows:
        name, kind = _text(name), _text(data_type).lower()
        if kind == "longtext" and name in json_columns:
            kind = "json"
        columns.append(
            Column(
                name=name,
                data_type=kind,
                column_type=_text(column_type),
                nullable=_text(nullable) == "YES",
                numeric_precision=None if precision is None else int(precision),
                numeric_scale=None if scale is None else int(scale),
                datetime_precision=None if dt_precision is None else int(dt_precision),
                character_set=None if charset is None else _text(charset),
            )
        )
    return TableSchema(
        database=database,
        table=table,
        columns=tuple(columns),
        primary_key=primary_key(conn, database, table),
        version=version,
    )
