"""MySQL / MariaDB declarations ⇄ neutral types (:mod:`schemas.types`).

The MySQL family's half of the type model: its readers describe columns with
:func:`logical_type`, and its sink declares a column another family described with
:func:`mysql_declaration`. Values need no conversion: PyMySQL's forms are the neutral ones
(zero dates as ``str``, TIME as ``timedelta``, BIT as big-endian ``bytes``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from schemas import types as t
from schemas.types import LogicalType

if TYPE_CHECKING:
    from schemas.table import Column, TableSchema

INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_STRINGS = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
_BYTES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_DECIMALS = frozenset({"decimal", "numeric", "dec", "fixed"})
_DOUBLES = frozenset({"double", "real", "double precision"})
_TEXT_LENGTHS = {"tinytext": 255, "tinyblob": 255, "text": 65535, "blob": 65535}
_TEXT_LENGTHS |= {"mediumtext": 2**24 - 1, "mediumblob": 2**24 - 1}
_ARGS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def _args(column_type: str) -> tuple[int | None, int | None]:
    m = _ARGS.search(column_type)
    if m is None:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)


def logical_type(col: Column) -> LogicalType:
    """The neutral type of a MySQL column (``unsupported`` for one Sluice cannot carry)."""
    kind = col.data_type.lower()
    first, second = _args(col.column_type)
    if kind in INT_BITS:
        return t.int_type(INT_BITS[kind], signed=not col.unsigned)
    if kind == "year":  # 0 or 1901..2155
        return t.int_type(16, signed=False)
    if kind in _DECIMALS:
        precision = col.numeric_precision if col.numeric_precision is not None else first
        scale = col.numeric_scale if col.numeric_scale is not None else second
        return t.decimal_type(precision or 10, scale or 0)  # DECIMAL alone is DECIMAL(10,0)
    if kind == "float":
        return t.simple(t.FLOAT32)
    if kind in _DOUBLES:
        return t.simple(t.FLOAT64)
    if kind in _STRINGS:
        return LogicalType(t.STRING, length=first or _TEXT_LENGTHS.get(kind))
    if kind in _BYTES:
        return LogicalType(t.BYTES, length=first or _TEXT_LENGTHS.get(kind))
    if kind == "json":
        return t.simple(t.JSON)
    if kind == "uuid":  # MariaDB 10.7+
        return t.simple(t.UUID)
    if kind in ("inet4", "inet6"):  # MariaDB: text PyMySQL reads and writes as str
        return t.simple(t.OPAQUE)
    if kind in ("enum", "set"):
        return LogicalType(kind, symbols=tuple(sql_list_members(col.column_type)))
    if kind == "bit":
        return LogicalType(t.BIT, bits=first or 1)
    fsp = col.datetime_precision if col.datetime_precision is not None else first
    if kind == "date":
        return t.simple(t.DATE)
    if kind == "datetime":
        return LogicalType(t.TIMESTAMP, fsp=fsp or 0)
    if kind == "timestamp":  # read with session time_zone '+00:00': an instant in UTC
        return LogicalType(t.TIMESTAMP_TZ, fsp=fsp or 0)
    if kind == "time":
        return LogicalType(t.TIME, fsp=fsp or 0)
    return t.simple(t.UNSUPPORTED)  # GEOMETRY and its kin


def sql_list_members(column_type: str) -> list[str]:
    """Members of ``enum('a','b''c')`` / ``set(...)`` as declared: ``['a', "b'c"]``."""
    body = column_type[column_type.find("(") + 1 : column_type.rfind(")")]
    members: list[str] = []
    i, n = 0, len(body)
    while i < n:
        if body[i] != "'":
            i += 1
            continue
        i, chars = i + 1, []
        while i < n:
            if body[i] == "'" and i + 1 < n and body[i + 1] == "'":
                chars.append("'")
                i += 2
            elif body[i] == "'":
                break
            else:
                chars.append(body[i])
                i += 1
        members.append("".join(chars))
        i += 1
    return members


def _sized(suffix: str, max_bytes: int | None) -> str:
    """The smallest TEXT/BLOB that holds ``max_bytes`` (``None``: unbounded)."""
    if max_bytes is not None and max_bytes <= 65535:
        return suffix
    if max_bytes is not None and max_bytes < 2**24:
        return "medium" + suffix
    return "long" + suffix


_INT_NAMES = {8: "tinyint", 16: "smallint", 24: "mediumint", 32: "int", 64: "bigint"}


def mysql_declaration(lt: LogicalType) -> str:
    """A MySQL column declaration that holds every value of ``lt`` exactly (no NULL clause).

    For a column another family described: ``uuid`` → ``char(36)``, an unbounded string →
    ``longtext``, an array or interval → its text in ``longtext``.
    """
    data_type, rest = _declare(lt)
    return data_type + rest


def _declare(lt: LogicalType) -> tuple[str, str]:
    """:func:`mysql_declaration` as (DATA_TYPE, what follows it in COLUMN_TYPE)."""
    k = lt.kind
    if k == t.INT:
        assert lt.bits is not None
        return _INT_NAMES[lt.bits], "" if lt.signed else " unsigned"
    if k == t.DECIMAL:
        if (lt.precision or 0) <= 65 and (lt.scale or 0) <= 30:
            return "decimal", f"({lt.precision},{lt.scale})"
        return "longtext", ""  # beyond MySQL's DECIMAL(65,30): kept as text
    if k == t.FLOAT32:
        return "float", ""
    if k == t.FLOAT64:
        return "double", ""
    if k == t.BOOLEAN:
        return "tinyint", "(1)"
    if k == t.STRING:  # a row's VARCHARs share 65,535 bytes: longer ones become TEXT
        if lt.length is not None and lt.length <= 255:
            return "varchar", f"({lt.length})"
        return _sized("text", None if lt.length is None else 4 * lt.length), ""  # utf8mb4
    if k == t.BYTES:
        if lt.length is not None and lt.length <= 255:
            return "varbinary", f"({lt.length})"
        return _sized("blob", lt.length), ""
    fraction = f"({lt.fsp})" if lt.fsp else ""
    if k == t.DATE:
        return "date", ""
    if k == t.TIME:
        return "time", fraction
    if k in (t.TIMESTAMP, t.TIMESTAMP_TZ):  # with a zone: an instant in UTC (DATETIME's range)
        return "datetime", fraction
    if k == t.UUID:
        return "char", "(36)"
    if k == t.JSON:
        return "longtext", ""
    if k in (t.ENUM, t.SET):
        members = ",".join("'" + s.replace("'", "''") + "'" for s in lt.symbols or ())
        return k, f"({members})"
    if k == t.BIT:
        return ("bit", f"({lt.bits})") if (lt.bits or 0) <= 64 else ("longblob", "")
    return "longtext", ""  # numeric, interval, array, opaque: the source's text


_CHARACTER_TYPES = frozenset(
    {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
)


def as_mysql(col: Column) -> Column:
    """``col`` as a MySQL column: itself when MySQL declared it, else the column
    :func:`mysql_declaration` declares (its neutral type kept), for DDL on a MySQL target."""
    from schemas.table import MYSQL, Column

    if col.dialect == MYSQL:
        return col
    lt = col.logical
    data_type, rest = _declare(lt)
    decimal = data_type == "decimal"
    return Column(
        name=col.name,
        data_type=data_type,
        column_type=data_type + rest,
        nullable=col.nullable,
        numeric_precision=lt.precision if decimal else None,
        numeric_scale=lt.scale if decimal else None,
        datetime_precision=lt.fsp if lt.kind in t.TEMPORAL else None,
        character_set="utf8mb4" if data_type in _CHARACTER_TYPES else None,
        logical=lt,
    )


def as_mysql_table(table: TableSchema) -> TableSchema:
    """A table with every column :func:`as_mysql`."""
    if all(c.dialect == "mysql" for c in table.columns):
        return table
    return replace(table, columns=tuple(as_mysql(c) for c in table.columns))
