"""Binlog row values → the values PyMySQL's text protocol returns for the same columns.

Everything downstream of a source (the Avro codec in :mod:`schemas.avro_types`, the MySQL
writer) takes rows as PyMySQL returns them from a ``SELECT``. mysql-replication decodes the
binary row image its own way, so a binlog row must be brought to that form column by column:

========================  ============================  ===================================
column                    mysql-replication gives       PyMySQL (text protocol) gives
========================  ============================  ===================================
SET                       ``{'a', 'b'}``; ``None`` for  ``'a,b'`` in declared order; ``''``
                          the empty set
BIT(M)                    ``'0101'`` (a str of bits)    ``bytes`` of (M+7)//8, big-endian
BINARY(N)                 trailing zero bytes dropped   exactly N bytes
empty BINARY/BLOB         ``''`` (a str)                ``b''``
YEAR 0000                 1900                          0
TIMESTAMP zero            1970-01-01 00:00:00           ``'0000-00-00 00:00:00[.ffffff]'``
DATE/DATETIME zero or     ``None`` (lost)               ``'0000-00-00'`` … as a str
partial
negative TIME with a      a wrong fraction              ``timedelta`` of the exact value
fraction
========================  ============================  ===================================

The last two cannot be repaired after the fact (the library has already thrown the bytes
away), so :func:`install_exact_temporal_decoders` replaces its DATE, DATETIME2 and TIME2
decoders with exact ones. The others are repaired per value by a converter chosen once per
column when a table version is first seen (:func:`row_converter`); columns that need no
repair cost nothing per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from pymysqlreplication import row_event
from pymysqlreplication.constants import NONE_SOURCE

from schemas.mysql_types import sql_list_members
from schemas.table import Column, TableSchema

Convert = Callable[[Any], Any]
RowConverter = Callable[[Mapping[str, Any], Mapping[str, str]], tuple[Any, ...]]

INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
BINARY_STRINGS = frozenset({"varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_EPOCH = datetime(1970, 1, 1)
_LENGTH = re.compile(r"\((\d+)\)")


# --- exact decoders for the temporal types ---------------------------------------------------


def _fraction(packet: Any, fsp: int) -> int:
    """Microseconds of a DATETIME2/TIMESTAMP2 fraction: (fsp+1)//2 big-endian bytes."""
    size = (fsp + 1) // 2
    if size == 0:
        return 0
    value = int.from_bytes(packet.read(size), "big")
    return value * (10000, 100, 1)[size - 1]


def zero_date_text(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


def _read_date(self: Any) -> date | str:
    raw = self.packet.read_uint24()
    year, month, day = raw >> 9, (raw >> 5) & 15, raw & 31
    try:
        return date(year, month, day)
    except ValueError:  # '0000-00-00', '2020-00-00': PyMySQL leaves these as text
        return zero_date_text(year, month, day)


def _read_datetime2(self: Any, column: Any) -> datetime | str:
    raw = int.from_bytes(self.packet.read(5), "big")
    micros = _fraction(self.packet, column.fsp)
    year, month = divmod((raw >> 22) & 0x1FFFF, 13)
    day, hour = (raw >> 17) & 31, (raw >> 12) & 31
    minute, second = (raw >> 6) & 63, raw & 63
    try:
        return datetime(year, month, day, hour, minute, second, micros)
    except ValueError:
        text = f"{zero_date_text(year, month, day)} {hour:02d}:{minute:02d}:{second:02d}"
        return text + (f".{micros:06d}"[: column.fsp + 1] if column.fsp else "")


_TIMEF_INT_OFS = 0x800000
_TIMEF_OFS = 0x800000000000


def _read_time2(self: Any, column: Any) -> timedelta:
    """MySQL's ``my_time_packed_from_binary``: the integer and fractional parts are one
    offset-binary number, so a negative time's fraction borrows from its seconds."""
    size = (column.fsp + 1) // 2
    read = self.packet.read
    if size == 3:
        packed = int.from_bytes(read(6), "big") - _TIMEF_OFS
    else:
        intpart = int.from_bytes(read(3), "big") - _TIMEF_INT_OFS
        frac = int.from_bytes(read(size), "big") if size else 0
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x100 if size == 1 else 0x10000
        packed = (intpart << 24) + frac * (0, 10000, 100)[size]
    negative = packed < 0
    packed = -packed if negative else packed
    hms, micros = packed >> 24, packed & 0xFFFFFF
    value = timedelta(
        hours=(hms >> 12) & 0x3FF, minutes=(hms >> 6) & 63, seconds=hms & 63, microseconds=micros
    )
    return -value if negative else value


def install_exact_temporal_decoders() -> None:
    """Replace mysql-replication's DATE / DATETIME2 / TIME2 decoders (see module doc).

    The library is pinned (``mysql-replication==1.0.17``); if a new version renames these
    private methods this fails loudly rather than decoding wrongly.
    """
    cls = row_event.RowsEvent
    for name, fn in (
        ("_RowsEvent__read_date", _read_date),
        ("_RowsEvent__read_datetime2", _read_datetime2),
        ("_RowsEvent__read_time2", _read_time2),
    ):
        if not hasattr(cls, name):
            raise ImportError(f"mysql-replication changed: RowsEvent.{name} is gone")
        setattr(cls, name, fn)


install_exact_temporal_decoders()


# --- per-column converters -------------------------------------------------------------------


def declared_length(col: Column, default: int) -> int:
    m = _LENGTH.search(col.column_type)
    return int(m.group(1)) if m else default


def _unsigned(bits: int) -> Convert:
    wrap = 1 << bits
    return lambda v: v + wrap if v < 0 else v


def _bits_to_bytes(nbytes: int) -> Convert:
    def convert(v: Any) -> bytes:
        if isinstance(v, str):
            v = int(v, 2) if v else 0
        return int(v).to_bytes(nbytes, "big") if isinstance(v, int) else bytes(v)

    return convert


def _as_bytes(v: Any) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


def _pad_binary(length: int) -> Convert:
    def convert(v: Any) -> bytes:
        b = _as_bytes(v)
        return b + b"\x00" * (length - len(b)) if len(b) < length else b

    return convert


def _set_text(members: list[str]) -> Convert:
    def convert(v: Any) -> str:
        if isinstance(v, str):
            return v
        return ",".join(m for m in members if m in v)

    return convert


def _year(v: int) -> int:
    return 0 if v == 1900 else v  # YEAR 0000 is stored as 0, which the library adds 1900 to


def _zero_timestamp(fsp: int) -> Convert:
    zero = "0000-00-00 00:00:00" + ("." + "0" * fsp if fsp else "")

    def convert(v: Any) -> Any:
        # TIMESTAMP cannot hold 1970-01-01 00:00:00 UTC itself: the stored 0 is the zero date.
        return zero if v == _EPOCH else v

    return convert


def column_converter(col: Column) -> Convert | None:
    """The repair a column's non-NULL binlog values need, or None when they are right as
    they come."""
    kind = col.data_type.lower()
    if kind in INT_BITS:
        return _unsigned(INT_BITS[kind]) if col.unsigned else None
    if kind == "set":
        return _set_text(sql_list_members(col.column_type))
    if kind == "bit":
        return _bits_to_bytes((declared_length(col, 1) + 7) // 8)
    if kind == "binary":
        return _pad_binary(declared_length(col, 1))
    if kind in BINARY_STRINGS:
        return _as_bytes
    if kind == "year":
        return _year
    if kind == "timestamp":
        return _zero_timestamp(col.datetime_precision or 0)
    return None


def row_converter(table: TableSchema) -> RowConverter:
    """Turns one binlog row image (mysql-replication's ``values`` dict, in column order,
    and its ``none_sources``) into a tuple of PyMySQL values for ``table``.

    Built once per table schema version; per row it touches only the columns that need it.
    """
    fixes = tuple(
        (i, conv)
        for i, conv in ((i, column_converter(c)) for i, c in enumerate(table.columns))
        if conv is not None
    )
    # The library reports an empty SET as None, telling it from NULL only in none_sources.
    sets = tuple((i, c.name) for i, c in enumerate(table.columns) if c.data_type.lower() == "set")
    width = len(table.columns)

    def convert(values: Mapping[str, Any], none_sources: Mapping[str, str]) -> tuple[Any, ...]:
        row = list(values.values())
        if len(row) != width:
            raise ValueError(f"row image has {len(row)} columns, table has {width}")
        if sets and none_sources:
            for i, name in sets:
                if row[i] is None and none_sources.get(name) == NONE_SOURCE.EMPTY_SET:
                    row[i] = ""
        for i, conv in fixes:
            v = row[i]
            if v is not None:
                row[i] = conv(v)
        return tuple(row)

    return convert
