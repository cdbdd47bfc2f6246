"""PostgreSQL declarations ⇄ neutral types (:mod:`schemas.types`), and values both ways.

The PostgreSQL family's half of the type model. Its readers describe a column from the
catalog (:func:`column_from_catalog`) and read it with :func:`select_expr`; values arrive in
the neutral forms through the loaders :func:`neutral_loaders` registers on a connection.
Its sink declares a column another family described with :func:`pg_declaration` and binds
values with :func:`to_pg`.

========================================  ==============================  ==================
PostgreSQL                                neutral                         value
========================================  ==============================  ==================
smallint, integer, bigint                 int16, int32, int64             int
numeric(p,s) / numeric                    decimal(p,s) / numeric          Decimal (NaN too)
real, double precision                    float32, float64                float (±inf, nan)
boolean                                   boolean                         bool
varchar(n), char(n), text                 string(n), string(n), string    str
bytea                                     bytes                           bytes
date                                      date                            date, or text
                                                                          (infinity, BC)
time(p)                                   time(p)                         timedelta
timestamp(p)                              timestamp(p)                    datetime, or text
timestamptz(p)                            timestamp_tz(p)                 UTC datetime, or
                                                                          text
interval                                  interval                        its text
uuid                                      uuid                            canonical text
json, jsonb                               json                            the document text
an enum type                              enum(labels)                    str
bit(n)                                    bit(n)                          bytes, big-endian
money                                     decimal(19,2)                   Decimal
arrays of the above                       array(element)                  list
timetz, inet, cidr, macaddr, varbit,      opaque                          the server's text
xml, ranges, geometric, anything else
========================================  ==============================  ==================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas import types as t
from schemas.table import Column
from schemas.types import LogicalType

POSTGRES = "postgresql"
"""``Column.dialect`` of a column PostgreSQL declared."""

_INTS = {"int2": 16, "int4": 32, "int8": 64}
_STRINGS = {"varchar", "bpchar", "text", "name", "char"}
_TEMPORAL = {"time": t.TIME, "timestamp": t.TIMESTAMP, "timestamptz": t.TIMESTAMP_TZ}
_TEXT_TYPES = {"interval", "uuid", "json", "jsonb"}


@dataclass(frozen=True)
class CatalogColumn:
    """One row of the catalog query (:data:`COLUMNS_SQL`): a column and its base type."""

    name: str
    declared: str
    """``format_type``: ``character varying(20)``, ``numeric(10,2)``, ``integer[]``."""
    not_null: bool
    typname: str
    """The base type (a domain's underlying type): ``int4``, ``_int4`` for an array."""
    typtype: str
    """``b`` base, ``e`` enum, ``c`` composite, ``r`` range..."""
    typmod: int
    labels: tuple[str, ...] | None
    """An enum's labels in order (the element's for an array of an enum)."""
    element: str | None
    """An array's element type name, else None."""
    element_typtype: str | None = None


# For a type t: its base type bt (a domain's underlying one), an array's element et, and the
# enum labels of bt or et in order.
ENUM_LABELS = """CASE WHEN bt.typtype = 'e' THEN ARRAY(
              SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = bt.oid
              ORDER BY e.enumsortorder)
            WHEN et.typtype = 'e' THEN ARRAY(
              SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = et.oid
              ORDER BY e.enumsortorder) END"""
BASE_AND_ELEMENT = """JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'"""

COLUMNS_SQL = f"""
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       bt.typname, bt.typtype,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       {ENUM_LABELS},
       et.typname, et.typtype
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
{BASE_AND_ELEMENT}
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def catalog_column(row: tuple[Any, ...]) -> CatalogColumn:
    name, declared, not_null, typname, typtype, typmod, labels, element, element_typtype = row
    return CatalogColumn(
        name, declared, bool(not_null), typname, typtype, int(typmod),
        tuple(labels) if labels is not None else None, element, element_typtype,
    )  # fmt: skip


def _numeric(typmod: int) -> LogicalType:
    if typmod < 4:
        return t.simple(t.NUMERIC)  # numeric without precision: any size, NaN, ±Infinity
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0x7FF
    if scale > 1000:  # PostgreSQL 15: a negative scale rounds to the left of the point
        scale -= 0x800
    if scale < 0:
        return t.decimal_type(precision - scale, 0)
    return t.decimal_type(precision, scale)


def _fsp(typmod: int) -> int:
    return 6 if typmod < 0 else min(typmod, 6)


def base_logical(
    typname: str, typtype: str, typmod: int, labels: tuple[str, ...] | None
) -> LogicalType:
    """The neutral type of a scalar PostgreSQL type."""
    if typname in _INTS:
        return t.int_type(_INTS[typname])
    if typname == "numeric":
        return _numeric(typmod)
    if typname == "float4":
        return t.simple(t.FLOAT32)
    if typname == "float8":
        return t.simple(t.FLOAT64)
    if typname == "bool":
        return t.simple(t.BOOLEAN)
    if typname in _STRINGS:
        if typname == "name":
            return LogicalType(t.STRING, length=63)
        if typname == "char":
            return LogicalType(t.STRING, length=1)
        return LogicalType(t.STRING, length=typmod - 4 if typmod >= 4 else None)
    if typname == "bytea":
        return LogicalType(t.BYTES)
    if typname == "date":
        return t.simple(t.DATE)
    if typname in _TEMPORAL:
        return LogicalType(_TEMPORAL[typname], fsp=_fsp(typmod))
    if typname == "interval":
        return t.simple(t.INTERVAL)
    if typname == "uuid":
        return t.simple(t.UUID)
    if typname in ("json", "jsonb"):
        return t.simple(t.JSON)
    if typtype == "e" and labels is not None:
        return LogicalType(t.ENUM, symbols=labels)
    if typname == "bit":
        return LogicalType(t.BIT, bits=typmod if typmod > 0 else 1)
    if typname == "money":
        return t.decimal_type(19, 2)
    return t.simple(t.OPAQUE)


def logical_type(c: CatalogColumn) -> LogicalType:
    if c.element is not None:
        element = base_logical(c.element, c.element_typtype or "b", c.typmod, c.labels)
        if element.kind in (t.OPAQUE, t.ENUM, t.BIT) or c.element == "money":
            return t.simple(t.OPAQUE)  # read and written as the array's text
        return LogicalType(t.ARRAY, element=element)
    return base_logical(c.typname, c.typtype, c.typmod, c.labels)


def column_from_catalog(c: CatalogColumn) -> Column:
    lt = logical_type(c)
    kind = lt.kind
    return Column(
        name=c.name,
        data_type=re.sub(r"\(.*?\)", "", c.declared),
        column_type=c.declared,
        nullable=not c.not_null,
        numeric_precision=lt.precision if kind == t.DECIMAL else None,
        numeric_scale=lt.scale if kind == t.DECIMAL else None,
        datetime_precision=lt.fsp if kind in (t.TIME, t.TIMESTAMP, t.TIMESTAMP_TZ) else None,
        logical=lt,
        dialect=POSTGRES,
    )


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_expr(col: Column) -> str:
    """How a reader selects ``col`` so that it arrives in its neutral form."""
    name = quote_ident(col.name)
    if col.dialect == POSTGRES and col.data_type == "money":
        return f"{name}::numeric"
    if col.dialect == POSTGRES and col.data_type == "inet":
        # inet's cast to text always shows the netmask (::1/128); its output function, what
        # the WAL carries, only when it is not the full length (::1). abbrev() is that form.
        return f"abbrev({name})"
    if col.logical.kind == t.OPAQUE:
        return f"{name}::text"
    return name


# --- reading: the neutral forms, by psycopg loaders ------------------------------------------


def _text(data: Any) -> str:
    return bytes(data).decode()


def _date(data: Any) -> date | str:
    text = _text(data)
    try:
        return date.fromisoformat(text)
    except ValueError:  # infinity, -infinity, a BC date: no Python date holds them
        return text


def _timestamp(data: Any) -> datetime | str:
    text = _text(data)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _timestamptz(data: Any) -> datetime | str:
    """An instant, as naive UTC (the session's TimeZone is UTC, so the text ends in +00)."""
    text = _text(data)
    if text[-3:] == "+00":  # the UTC session's form: a third of the time of the general path
        try:
            return datetime.fromisoformat(text[:-3])
        except ValueError:
            return text  # infinity, a BC date
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _time(data: Any) -> timedelta:
    hours, minutes, seconds = _text(data).split(":")
    whole, _, fraction = seconds.partition(".")
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(whole), microseconds=micros
    )


def _bits(data: Any) -> bytes:
    text = _text(data)
    return int(text or "0", 2).to_bytes((len(text) + 7) // 8, "big") if text else b""


LOADERS: dict[str, Callable[[Any], Any]] = {
    "date": _date,
    "timestamp": _timestamp,
    "timestamptz": _timestamptz,
    "time": _time,
    "bit": _bits,
    **{name: _text for name in _TEXT_TYPES},
}
"""Text-format loaders by type name: everything else psycopg loads in its neutral form."""


def neutral_loaders(adapters: Any) -> None:
    """Register :data:`LOADERS` on a psycopg connection's (or cursor's) adapters map."""
    from psycopg.adapt import Loader

    for name, fn in LOADERS.items():
        loader = type(f"Neutral_{name}", (Loader,), {"load": lambda self, data, fn=fn: fn(data)})
        adapters.register_loader(name, loader)


# --- writing ---------------------------------------------------------------------------------


def pg_declaration(lt: LogicalType) -> str:
    """A PostgreSQL declaration that holds every value of ``lt`` (for DDL on a target)."""
    k = lt.kind
    if k == t.INT:
        bits = (lt.bits or 64) + (0 if lt.signed else 1)
        return (
            "smallint"
            if bits <= 16
            else "integer"
            if bits <= 32
            else "bigint"
            if bits <= 64
            else "numeric(20,0)"
        )
    if k == t.DECIMAL:
        return f"numeric({lt.precision},{lt.scale})"
    simple = {
        t.NUMERIC: "numeric", t.FLOAT32: "real", t.FLOAT64: "double precision",
        t.BOOLEAN: "boolean", t.BYTES: "bytea", t.DATE: "date", t.INTERVAL: "interval",
        t.UUID: "uuid", t.JSON: "json",
    }  # fmt: skip
    if k in simple:
        return simple[k]
    if k == t.STRING:
        return (
            f"varchar({lt.length})" if lt.length is not None and lt.length <= 10485760 else "text"
        )
    fraction = f"({lt.fsp})" if lt.fsp is not None and lt.fsp != 6 else ""
    if k == t.TIME:
        return f"time{fraction}"
    if k == t.TIMESTAMP:
        return f"timestamp{fraction}"
    if k == t.TIMESTAMP_TZ:
        return f"timestamptz{fraction}"
    if k == t.BIT:
        return f"bit({lt.bits})"
    if k == t.ARRAY:
        assert lt.element is not None
        return pg_declaration(lt.element) + "[]"
    return "text"  # enum and set (their text), opaque


def _time_text(value: timedelta) -> str:
    """A TIME value as PostgreSQL reads it; out of 00:00..24:00 the server refuses the row."""
    negative = value < timedelta(0)
    micros = abs(value) // timedelta(microseconds=1)
    seconds, micros = divmod(micros, 1_000_000)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}"
    return "-" + text if negative else text


def bits_text(value: bytes | bytearray, bits: int) -> str:
    """BIT(n) bytes (big-endian, left-padded) as PostgreSQL's bit-string text."""
    return format(int.from_bytes(value, "big"), f"0{bits}b")[-bits:] if bits else ""


def value_converter(target: LogicalType) -> Callable[[Any], Any] | None:
    """What a neutral value needs to bind to a PostgreSQL column of neutral type ``target``,
    or None when psycopg binds it as it is."""
    k = target.kind
    if k == t.TIME:
        return lambda v: _time_text(v) if isinstance(v, timedelta) else v
    if k == t.BIT:
        bits = target.bits or 1
        return lambda v: bits_text(v, bits) if isinstance(v, bytes | bytearray) else v
    if k == t.TIMESTAMP_TZ:  # naive UTC: bind as text with its zone, whatever the session's
        return lambda v: v.isoformat() + "+00:00" if isinstance(v, datetime) else v
    if k in (t.JSON, t.UUID, t.INTERVAL, t.OPAQUE, t.ENUM, t.SET):
        return lambda v: v if v is None or isinstance(v, str) else str(v)
    if k == t.BOOLEAN:  # MySQL's tinyint(1); any other number is refused by the server
        return lambda v: bool(v) if type(v) is int and v in (0, 1) else v
    if k == t.ARRAY:  # MySQL holds an array as its JSON text (schemas.mysql_types)
        return lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[") else v
    return None
