"""The one binlog row decoder: a rows event's row images straight to the reader's row tuples.

A row tuple holds what PyMySQL's text protocol returns for the same columns (what every sink
takes from a ``SELECT``), not what mysql-replication would decode: an empty SET is ``''``,
BIT(M) is ``(M+7)//8`` big-endian bytes, BINARY(N) keeps its trailing zero bytes, BLOBs are
``bytes``, YEAR 0000 is ``0``, a zero or partial DATE/DATETIME/TIMESTAMP is its text
(``'0000-00-00'``, ``'2020-00-00 00:00:00.1'``), and a negative TIME keeps its exact
fraction.

:func:`table_plan` makes a plan once per table version — per column, how the binlog stores
it (the TABLE_MAP's type, metadata, signedness, charset) and what the schema's type makes of
it — and :func:`decode_rows` reads one event's rows with it: in C (``_binlog_rows.c``) when the
extension is built, else with :func:`decode_python`, the reference the tests compare the C
decoder with, value for value and type for type (``SLUICE_NO_NATIVE=1`` picks it). Both read
from the event's bytes; mysql-replication only frames the events and parses TABLE_MAPs.

Every column type MariaDB writes is planned; a column neither decoder can read exactly (MySQL's
binary JSON, the pre-5.0 DECIMAL, MariaDB 5.3's high-resolution temporal format) is refused
with :class:`UndecodableColumn` naming it — never decoded approximately.
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.row_event import RowsEvent

from schemas.mysql_types import INT_BITS, sql_list_members
from schemas.native import load
from schemas.table import Column, TableSchema

# None when built without a C compiler or with SLUICE_NO_NATIVE=1: decode_python reads rows.
_native = load("source_connectors.mysql._binlog_rows")

MAX_PLANS = 4096

# Read kinds and repairs: the enums of _binlog_rows.c.
(K_INT8, K_UINT8, K_INT16, K_UINT16, K_INT24, K_UINT24, K_INT32, K_UINT32, K_INT64, K_UINT64) = (
    range(1, 11)
)
K_FLOAT, K_DOUBLE, K_YEAR, K_DECIMAL, K_DATETIME2, K_DATE, K_TIME2, K_TIMESTAMP2 = range(11, 19)
K_STRING, K_ENUM, K_BIT, K_SET, K_DATETIME, K_TIME, K_TIMESTAMP = range(19, 26)
F_NONE, F_UNSIGNED, F_BYTES, F_PAD, F_YEAR, F_ZERO_TS = range(6)
C_BYTES, C_UTF8, C_CODEC = range(3)

BINARY_STRINGS = frozenset({"varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_LENGTH = re.compile(r"\((\d+)\)")
_INTEGERS = {
    FIELD_TYPE.TINY: (K_INT8, K_UINT8),
    FIELD_TYPE.SHORT: (K_INT16, K_UINT16),
    FIELD_TYPE.INT24: (K_INT24, K_UINT24),
    FIELD_TYPE.LONG: (K_INT32, K_UINT32),
    FIELD_TYPE.LONGLONG: (K_INT64, K_UINT64),
}
_OLD_TEMPORAL = {
    FIELD_TYPE.DATETIME: K_DATETIME,
    FIELD_TYPE.TIME: K_TIME,
    FIELD_TYPE.TIMESTAMP: K_TIMESTAMP,
}
_NAMES = {v: k for k, v in vars(FIELD_TYPE).items() if k.isupper() and isinstance(v, int)}

Spec = tuple[int, int, int, Any, int, int, Any]


class UndecodableColumn(ValueError):
    """A column whose binlog values neither decoder reads exactly."""


def declared_length(col: Column, default: int) -> int:
    m = _LENGTH.search(col.column_type)
    return int(m.group(1)) if m else default


def _codec(column: Any) -> tuple[int, Any]:
    """How a string column's bytes become its value: the TABLE_MAP's charset as a Python
    codec; a charset Python has no codec for keeps the bytes."""
    name = column.character_set_name
    if name is None:
        return C_UTF8, None
    encoding = RowsEvent.charset_to_encoding(name)
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        return C_BYTES, None
    if info.name == "utf-8":
        return C_UTF8, None
    return C_CODEC, encoding


def _read(column: Any, col: Column) -> tuple[int, int, int, Any]:
    """(kind, a, b, obj): how the binlog stores this column's values."""
    t = column.type
    if t in _INTEGERS:
        signed, unsigned = _INTEGERS[t]
        return (unsigned if column.unsigned else signed), 0, 0, None
    if t == FIELD_TYPE.FLOAT:
        return K_FLOAT, 0, 0, None
    if t == FIELD_TYPE.DOUBLE:
        return K_DOUBLE, 0, 0, None
    if t == FIELD_TYPE.YEAR:
        return K_YEAR, 0, 0, None
    if t == FIELD_TYPE.NEWDECIMAL:
        if not 1 <= column.precision <= 65 or not 0 <= column.decimals <= min(column.precision, 38):
            raise UndecodableColumn(f"decimal({column.precision},{column.decimals})")
        return K_DECIMAL, column.precision, column.decimals, None
    if t in (FIELD_TYPE.DATETIME2, FIELD_TYPE.TIME2, FIELD_TYPE.TIMESTAMP2):
        if not 0 <= column.fsp <= 6:
            raise UndecodableColumn(f"{column.fsp} fractional digits")
        kind = {FIELD_TYPE.DATETIME2: K_DATETIME2, FIELD_TYPE.TIME2: K_TIME2}.get(t, K_TIMESTAMP2)
        return kind, column.fsp, 0, None
    if t in _OLD_TEMPORAL:
        if col.datetime_precision:  # MariaDB 5.3's format: other bytes under the same type
            raise UndecodableColumn(
                f"MariaDB 5.3's high-resolution {col.column_type} format "
                "(ALTER TABLE … FORCE with mysql56_temporal_format=ON rewrites it)"
            )
        return _OLD_TEMPORAL[t], 0, 0, None
    if t == FIELD_TYPE.DATE:
        return K_DATE, 0, 0, None
    if t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING):
        codec, name = _codec(column)
        return K_STRING, 2 if column.max_length > 255 else 1, codec, name
    if t in (FIELD_TYPE.BLOB, FIELD_TYPE.GEOMETRY):
        if not 1 <= column.length_size <= 4:
            raise UndecodableColumn(f"a {column.length_size}-byte length")
        codec, name = (C_BYTES, None) if t == FIELD_TYPE.GEOMETRY else _codec(column)
        return K_STRING, column.length_size, codec, name
    if t == FIELD_TYPE.ENUM and column.size in (1, 2):
        return K_ENUM, column.size, 0, tuple(column.enum_values) if column.enum_values else None
    if t == FIELD_TYPE.SET and 1 <= column.size <= 8:
        members = sql_list_members(col.column_type) if col.data_type.lower() == "set" else []
        return K_SET, column.size, 0, tuple(members or column.set_values or ())
    if t == FIELD_TYPE.BIT:
        nbytes = (column.bits + 7) // 8
        if col.data_type.lower() != "bit" or (declared_length(col, 1) + 7) // 8 != nbytes:
            raise UndecodableColumn(f"bit({column.bits}) rows for a {col.column_type} column")
        return K_BIT, nbytes, 0, None
    raise UndecodableColumn(f"binlog type {_NAMES.get(t, t)}")


def _repair(kind: int, col: Column) -> tuple[int, int, Any]:
    """(fix, fix_arg, fix_obj): what the schema's type makes of a value read as ``kind``."""
    data_type = col.data_type.lower()
    if data_type in INT_BITS:
        if not col.unsigned:
            return F_NONE, 0, None
        if not K_INT8 <= kind <= K_UINT64:
            raise UndecodableColumn(f"{col.column_type} stored as kind {kind}")
        return F_UNSIGNED, INT_BITS[data_type], None
    if data_type == "binary":
        return F_PAD, declared_length(col, 1), None
    if data_type in BINARY_STRINGS:
        return F_BYTES, 0, None
    if data_type == "year":
        return F_YEAR, 0, None
    if data_type == "timestamp":
        fsp = col.datetime_precision or 0
        return F_ZERO_TS, 0, "0000-00-00 00:00:00" + ("." + "0" * fsp if fsp else "")
    return F_NONE, 0, None


_KINDS_OF = {
    "binary": (K_STRING,),
    "year": (K_YEAR,),
    "timestamp": (K_TIMESTAMP2, K_TIMESTAMP),
    **{t: (K_STRING,) for t in BINARY_STRINGS},
}


def plan_spec(columns: Sequence[Any], schema: TableSchema) -> tuple[Spec, ...]:
    """Per column of a TABLE_MAP (``columns``) and the schema its rows were written with:
    (kind, a, b, obj, fix, fix_arg, fix_obj). Raises :class:`UndecodableColumn`."""
    if len(columns) != len(schema.columns):
        raise UndecodableColumn(
            f"the TABLE_MAP has {len(columns)} columns, the schema {len(schema.columns)}"
        )
    spec = []
    for column, col in zip(columns, schema.columns, strict=True):
        try:
            kind, a, b, obj = _read(column, col)
            allowed = _KINDS_OF.get(col.data_type.lower())
            if allowed is not None and kind not in allowed:
                raise UndecodableColumn(f"{col.column_type} stored as binlog type {column.type}")
            spec.append((kind, a, b, obj, *_repair(kind, col)))
        except UndecodableColumn as e:
            raise UndecodableColumn(f"column {col.name} ({col.column_type}): {e}") from None
    return tuple(spec)


_plans: dict[tuple[int, int], tuple[Any, TableSchema, Any]] = {}


def table_plan(columns: Sequence[Any], schema: TableSchema) -> Any:
    """The plan of a table version, made once: a C plan, or the spec for decode_python."""
    key = (id(columns), id(schema))
    held = _plans.get(key)
    if held is not None and held[0] is columns and held[1] is schema:
        return held[2]
    spec = plan_spec(columns, schema)
    plan = spec if _native is None else _native.plan(spec)
    if len(_plans) >= MAX_PLANS:
        _plans.clear()
    _plans[key] = (columns, schema, plan)  # both are kept: their ids are not reused
    return plan


def decode_rows(plan: Any, data: bytes, start: int, end: int, images: int) -> list[Any]:
    """The rows in ``data[start:end]`` (after the column bitmaps): row tuples, or for
    ``images=2`` (UPDATE) ``(before, after)`` pairs. Raises ValueError on a truncated body."""
    if _native is None:
        return decode_python(plan, data, start, end, images)
    rows: list[Any] = _native.decode(plan, data, start, end, images, "strict")
    return rows


# --- the Python reference: the same reads as _binlog_rows.c, one function per kind ----------


class _Cursor:
    __slots__ = ("data", "p", "end", "base")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.p, self.end, self.base = data, start, end, start

    def take(self, n: int) -> bytes:
        if self.end - self.p < n:
            raise ValueError(
                f"row image truncated: {n} bytes needed at body offset {self.p - self.base}, "
                f"{self.end - self.p} left"
            )
        out = self.data[self.p : self.p + n]
        self.p += n
        return bytes(out)


def _le(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _be(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _be_signed(b: bytes | bytearray) -> int:
    return int.from_bytes(b, "big", signed=True)


_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def _decimal(c: _Cursor, prec: int, dec: int) -> Decimal:
    """NEWDECIMAL: groups of nine digits in four big-endian bytes, the sign in the top bit
    (a negative value stores every byte inverted)."""
    ui, ci = divmod(prec - dec, 9)
    uf, cf = divmod(dec, 9)
    raw = bytearray(c.take(_DIG2BYTES[ci] + 4 * ui + 4 * uf + _DIG2BYTES[cf]))
    positive = raw[0] & 0x80
    mask = 0 if positive else -1
    raw[0] ^= 0x80
    parts = ["" if positive else "-"]
    q = 0

    def group(n: int) -> int:
        nonlocal q
        v = _be_signed(raw[q : q + n]) ^ mask
        q += n
        return v

    if _DIG2BYTES[ci]:
        parts.append(str(group(_DIG2BYTES[ci])))
    parts.extend(f"{group(4):09d}" for _ in range(ui))
    parts.append(".")
    parts.extend(f"{group(4):09d}" for _ in range(uf))
    if _DIG2BYTES[cf]:
        parts.append(f"{group(_DIG2BYTES[cf]):0{cf}d}")
    return Decimal("".join(parts))


def _date_text(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


def _datetime_or_text(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micros: int, fsp: int
) -> datetime | str:
    try:
        return datetime(year, month, day, hour, minute, second, micros)
    except ValueError:  # a zero or partial date: PyMySQL leaves these as text
        text = f"{_date_text(year, month, day)} {hour:02d}:{minute:02d}:{second:02d}"
        return text + (f".{micros:06d}"[: fsp + 1] if fsp else "")


def _datetime2(c: _Cursor, fsp: int) -> datetime | str:
    size = (fsp + 1) // 2
    raw = _be(c.take(5))
    micros = _be(c.take(size)) * (0, 10000, 100, 1)[size] if size else 0
    year, month = divmod((raw >> 22) & 0x1FFFF, 13)
    day, hour = (raw >> 17) & 31, (raw >> 12) & 31
    return _datetime_or_text(year, month, day, hour, (raw >> 6) & 63, raw & 63, micros, fsp)


def _date(c: _Cursor) -> date | str:
    raw = _le(c.take(3))
    year, month, day = raw >> 9, (raw >> 5) & 15, raw & 31
    try:
        return date(year, month, day)
    except ValueError:
        return _date_text(year, month, day)


def _hms(value: int, micros: int = 0) -> timedelta:
    return timedelta(
        hours=(value >> 12) & 0x3FF, minutes=(value >> 6) & 63, seconds=value & 63,
        microseconds=micros,
    )  # fmt: skip


def _time2(c: _Cursor, fsp: int) -> timedelta:
    """MySQL's ``my_time_packed_from_binary``: the integer and fractional parts are one
    offset-binary number, so a negative time's fraction borrows from its seconds."""
    size = (fsp + 1) // 2
    if size == 3:
        packed = _be(c.take(6)) - 0x800000000000
    else:
        intpart = _be(c.take(3)) - 0x800000
        frac = _be(c.take(size)) if size else 0
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x100 if size == 1 else 0x10000
        packed = (intpart << 24) + frac * (0, 10000, 100)[size]
    negative = packed < 0
    packed = -packed if negative else packed
    value = _hms(packed >> 24, packed & 0xFFFFFF)
    return -value if negative else value


_EPOCH = datetime(1970, 1, 1)


def _timestamp2(c: _Cursor, fsp: int, zero: str | None) -> datetime | str:
    size = (fsp + 1) // 2
    seconds = _be_signed(c.take(4))
    micro = _be_signed(c.take(size)) if size else 0
    if fsp % 2:
        micro = int(micro / 10)
    micro = max(micro * 10 ** (6 - fsp), 0)
    if zero is not None and seconds == 0 and micro == 0:
        return zero  # TIMESTAMP cannot hold the epoch itself: a stored 0 is the zero date
    if micro > 999999:
        raise ValueError("microsecond must be in 0..999999")
    return _EPOCH + timedelta(seconds=seconds, microseconds=micro)


def _old_datetime(c: _Cursor) -> datetime | str:
    """DATETIME before MySQL 5.6: YYYYMMDDhhmmss as one little-endian integer."""
    day_part, time_part = divmod(_le(c.take(8)), 1000000)
    year, month_day = divmod(day_part, 10000)
    hour, minute_second = divmod(time_part, 10000)
    month, day = divmod(month_day, 100)
    minute, second = divmod(minute_second, 100)
    return _datetime_or_text(year, month, day, hour, minute, second, 0, 0)


def _old_time(c: _Cursor) -> timedelta:
    """TIME before MySQL 5.6: ±hhhmmss as a signed 3-byte little-endian integer."""
    value = int.from_bytes(c.take(3), "little", signed=True)
    hours, rest = divmod(abs(value), 10000)
    delta = timedelta(hours=hours, minutes=rest // 100, seconds=rest % 100)
    return -delta if value < 0 else delta


def _old_timestamp(c: _Cursor, zero: str | None) -> datetime | str:
    seconds = _le(c.take(4))
    if zero is not None and seconds == 0:
        return zero
    return _EPOCH + timedelta(seconds=seconds)


def _string(c: _Cursor, spec: Spec) -> Any:
    _kind, size, codec, name, fix, fix_arg, _obj = spec
    raw = c.take(_le(c.take(size)))
    value: Any = raw
    if codec == C_UTF8:
        value = raw.decode("utf-8")
    elif codec == C_CODEC:
        value = raw.decode(name)
    if fix != F_NONE and isinstance(value, str):
        value = value.encode()  # a binary column the TABLE_MAP gave a charset
    if fix == F_PAD and len(value) < fix_arg:
        value += b"\x00" * (fix_arg - len(value))  # BINARY(N): the server strips the zeros
    return value


_FIXED = {
    K_INT8: struct.Struct("<b"), K_UINT8: struct.Struct("<B"), K_INT16: struct.Struct("<h"),
    K_UINT16: struct.Struct("<H"), K_INT32: struct.Struct("<i"), K_UINT32: struct.Struct("<I"),
    K_INT64: struct.Struct("<q"), K_UINT64: struct.Struct("<Q"), K_FLOAT: struct.Struct("<f"),
    K_DOUBLE: struct.Struct("<d"),
}  # fmt: skip


def _value(c: _Cursor, spec: Spec) -> Any:
    kind, a, b, obj, fix, fix_arg, fix_obj = spec
    fixed = _FIXED.get(kind)
    if fixed is not None:
        v = fixed.unpack(c.take(fixed.size))[0]
        if fix == F_UNSIGNED and v < 0:
            v += 1 << fix_arg
        return v
    if kind in (K_INT24, K_UINT24):
        v = int.from_bytes(c.take(3), "little", signed=kind == K_INT24)
        return v + (1 << fix_arg) if fix == F_UNSIGNED and v < 0 else v
    if kind == K_YEAR:
        year = c.take(1)[0] + 1900
        return 0 if fix == F_YEAR and year == 1900 else year
    if kind == K_DECIMAL:
        return _decimal(c, a, b)
    if kind == K_DATETIME2:
        return _datetime2(c, a)
    if kind == K_DATE:
        return _date(c)
    if kind == K_TIME2:
        return _time2(c, a)
    if kind == K_TIMESTAMP2:
        return _timestamp2(c, a, fix_obj if fix == F_ZERO_TS else None)
    if kind == K_STRING:
        return _string(c, spec)
    if kind == K_ENUM:
        index = _le(c.take(a))
        return None if obj is None else obj[index]
    if kind == K_SET:
        bits = _le(c.take(a))
        return ",".join(m for i, m in enumerate(obj) if bits >> i & 1)
    if kind == K_BIT:
        return c.take(a)
    if kind == K_DATETIME:
        return _old_datetime(c)
    if kind == K_TIME:
        return _old_time(c)
    if kind == K_TIMESTAMP:
        return _old_timestamp(c, fix_obj if fix == F_ZERO_TS else None)
    raise ValueError(f"unknown column kind {kind}")


def _image(c: _Cursor, spec: tuple[Spec, ...]) -> tuple[Any, ...]:
    nulls = c.take((len(spec) + 7) // 8)
    return tuple(
        None if nulls[i >> 3] & (1 << (i & 7)) else _value(c, s) for i, s in enumerate(spec)
    )


def decode_python(
    spec: tuple[Spec, ...], data: bytes, start: int, end: int, images: int
) -> list[Any]:
    """:func:`decode_rows` in Python: exactly the C decoder's values, types and errors."""
    if start < 0 or start > end or end > len(data) or images not in (1, 2):
        raise ValueError(f"bad event body bounds {start}..{end} of {len(data)} bytes")
    c = _Cursor(data, start, end)
    rows: list[Any] = []
    while c.p < c.end:
        row = _image(c, spec)
        rows.append((row, _image(c, spec)) if images == 2 else row)
    return rows
