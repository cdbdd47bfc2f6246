"""Row images decoded in C: a binlog rows event straight to the reader's row tuples (issue #9).

The Python path reads a rows event in two steps, both per value: mysql-replication decodes
each row image into a dict (:mod:`.binlog_fast` plans it, the library reads most types), then
:func:`.binlog_values.row_converter` turns the dict into the tuple PyMySQL would return. That
was most of a binlog reader's time. :func:`fast_rows` does both in one C call per event
(``_binlog_rows.c``), with a plan made once per table version that says, per column, how to
read it (the binlog's type, metadata, signedness, codec) and how to repair it (the schema's
type, as :func:`.binlog_values.column_converter` would).

Exactly the same values, or nothing: a table with any column the plan cannot express (BIT,
SET, JSON, GEOMETRY, old-style temporal types, an unknown codec …), an image that is not
full, or an event that looks unusual gets ``None``, and the caller uses the Python path
unchanged. ``tests/integration/test_binlog_native.py`` decodes the same binlog both ways.
Without the compiled extension, with ``SLUICE_BINLOG_NATIVE=0``, ``SLUICE_NO_NATIVE=1`` or with
``SLUICE_BINLOG_PLAIN_DECODE=1``, nothing changes.
"""

from __future__ import annotations

import codecs
import os
from typing import Any

from pymysqlreplication.constants import BINLOG, FIELD_TYPE
from pymysqlreplication.row_event import RowsEvent, UpdateRowsEvent

from schemas.native import load
from schemas.table import Column, TableSchema
from source_connectors.mysql.binlog_values import BINARY_STRINGS, INT_BITS, declared_length

# None when built without a C compiler or SLUICE_NO_NATIVE=1: the Python path does everything.
_native = load("source_connectors.mysql._binlog_rows")

# SLUICE_BINLOG_NATIVE=0 turns only this off; SLUICE_BINLOG_PLAIN_DECODE=1 all fast paths.
enabled = (
    _native is not None
    and os.environ.get("SLUICE_BINLOG_NATIVE", "1") != "0"
    and not os.environ.get("SLUICE_BINLOG_PLAIN_DECODE")
)
"""Tests switch this off to decode the same events the Python way."""
events_decoded = 0
"""Rows events decoded here (for tests and benchmarks)."""

MAX_PLANS = 4096

# Read kinds and repairs: the enums of _binlog_rows.c.
(K_INT8, K_UINT8, K_INT16, K_UINT16, K_INT24, K_UINT24, K_INT32, K_UINT32, K_INT64, K_UINT64) = (
    range(1, 11)
)
K_FLOAT, K_DOUBLE, K_YEAR, K_DECIMAL, K_DATETIME2, K_DATE, K_TIME2, K_TIMESTAMP2 = range(11, 19)
K_STRING, K_ENUM = 19, 20
F_NONE, F_UNSIGNED, F_BYTES, F_PAD, F_YEAR, F_ZERO_TS = range(6)
C_BYTES, C_UTF8, C_CODEC = range(3)

_INTEGERS = {
    FIELD_TYPE.TINY: (K_INT8, K_UINT8),
    FIELD_TYPE.SHORT: (K_INT16, K_UINT16),
    FIELD_TYPE.INT24: (K_INT24, K_UINT24),
    FIELD_TYPE.LONG: (K_INT32, K_UINT32),
    FIELD_TYPE.LONGLONG: (K_INT64, K_UINT64),
}

Spec = tuple[int, int, int, Any, int, int, Any]


class _Unsupported(Exception):
    """A column the C decoder cannot give exactly the Python path's value for."""


def _codec(column: Any) -> tuple[int, Any]:
    """How the library decodes a string column (``RowsEvent.__read_string``)."""
    name = column.character_set_name
    if name is None:
        return C_UTF8, None  # bytes.decode() with no codec: UTF-8
    encoding = RowsEvent.charset_to_encoding(name)
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        return C_BYTES, None  # the library keeps the bytes (a binary column)
    if info.name == "utf-8":
        return C_UTF8, None
    return C_CODEC, encoding


def _read(column: Any) -> tuple[int, int, int, Any]:
    """(kind, a, b, obj): how the library reads this column's values."""
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
        if not 1 <= column.precision <= 65 or not 0 <= column.decimals <= column.precision:
            raise _Unsupported
        return K_DECIMAL, column.precision, column.decimals, None
    if t in (FIELD_TYPE.DATETIME2, FIELD_TYPE.TIME2, FIELD_TYPE.TIMESTAMP2):
        if not 0 <= column.fsp <= 6:
            raise _Unsupported
        kind = {FIELD_TYPE.DATETIME2: K_DATETIME2, FIELD_TYPE.TIME2: K_TIME2}.get(t, K_TIMESTAMP2)
        return kind, column.fsp, 0, None
    if t == FIELD_TYPE.DATE:
        return K_DATE, 0, 0, None
    if t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING):
        codec, name = _codec(column)
        return K_STRING, 2 if column.max_length > 255 else 1, codec, name
    if t == FIELD_TYPE.BLOB:
        if not 1 <= column.length_size <= 4:
            raise _Unsupported
        codec, name = _codec(column)
        return K_STRING, column.length_size, codec, name
    if t == FIELD_TYPE.ENUM and column.size in (1, 2):
        return K_ENUM, column.size, 0, tuple(column.enum_values) if column.enum_values else None
    raise _Unsupported


def _repair(kind: int, binlog_type: int, col: Column) -> tuple[int, int, Any]:
    """(fix, fix_arg, fix_obj): what :func:`.binlog_values.column_converter` does to this
    column's values, in the same order of cases."""
    data_type = col.data_type.lower()
    if data_type in INT_BITS:
        if not col.unsigned:
            return F_NONE, 0, None
        if binlog_type not in _INTEGERS:
            raise _Unsupported
        return F_UNSIGNED, INT_BITS[data_type], None
    if data_type in ("set", "bit"):
        raise _Unsupported
    if data_type == "binary":
        if kind != K_STRING:
            raise _Unsupported
        return F_PAD, declared_length(col, 1), None
    if data_type in BINARY_STRINGS:
        if kind != K_STRING:
            raise _Unsupported
        return F_BYTES, 0, None
    if data_type == "year":
        if kind != K_YEAR:
            raise _Unsupported
        return F_YEAR, 0, None
    if data_type == "timestamp":
        if kind != K_TIMESTAMP2:
            raise _Unsupported
        fsp = col.datetime_precision or 0
        return F_ZERO_TS, 0, "0000-00-00 00:00:00" + ("." + "0" * fsp if fsp else "")
    return F_NONE, 0, None  # the converter leaves every other type as the library gives it


def plan_spec(columns: Any, schema: TableSchema) -> tuple[Spec, ...] | None:
    """The C plan of a table version, or None when the Python path must decode it."""
    if len(columns) != len(schema.columns) or not all(c.name for c in columns):
        return None
    try:
        spec = []
        for column, col in zip(columns, schema.columns, strict=True):
            kind, a, b, obj = _read(column)
            spec.append((kind, a, b, obj, *_repair(kind, column.type, col)))
    except _Unsupported:
        return None
    return tuple(spec)


_plans: dict[tuple[int, int], tuple[Any, TableSchema, Any]] = {}
_full: dict[int, bytes] = {}


def _plan(columns: Any, schema: TableSchema) -> Any:
    key = (id(columns), id(schema))
    held = _plans.get(key)
    if held is not None and held[0] is columns and held[1] is schema:
        return held[2]
    spec = plan_spec(columns, schema)
    plan = None if spec is None or _native is None else _native.plan(spec)
    if len(_plans) >= MAX_PLANS:
        _plans.clear()
    _plans[key] = (columns, schema, plan)  # both are kept: their ids are not reused
    return plan


def full_bitmap(n: int) -> bytes:
    bitmap = _full.get(n)
    if bitmap is None:
        bitmap = _full[n] = ((1 << n) - 1).to_bytes((n + 7) // 8, "little")
    return bitmap


def lean_rows(ev: Any, schema: TableSchema) -> list[Any] | None:
    """The rows of a :class:`.binlog_lean.LeanRows` event (bitmaps already checked full),
    or None when this table has no C plan (the caller then materializes the library's
    event)."""
    global events_decoded
    if not enabled:
        return None
    plan = _plan(ev.columns, schema)
    if plan is None:
        return None
    update = ev.kind is UpdateRowsEvent
    rows: list[Any] = _native.decode(plan, ev.data, ev.start, ev.end, 2 if update else 1, "strict")
    events_decoded += 1
    return rows


def fast_rows(ev: Any, schema: TableSchema) -> list[Any] | None:
    """The rows of a WRITE/DELETE rows event as row tuples (UPDATE: ``(before, after)``
    pairs) for ``schema``, exactly as ``schema``'s row converter makes them from ``ev.rows``;
    None when this event must go the Python way. Raises ValueError on a truncated body."""
    global events_decoded
    if not enabled:
        return None
    columns: Any = getattr(ev, "columns", None)  # RowsEvent.__init__ sets it (a known table)
    plan = None if columns is None else _plan(columns, schema)
    if plan is None:
        return None
    n = len(columns)
    full = full_bitmap(n)
    update = isinstance(ev, UpdateRowsEvent)
    if (
        ev.event_type == BINLOG.PARTIAL_UPDATE_ROWS_EVENT
        or ev.number_of_columns != n
        or ev.columns_present_bitmap != full
        or (update and ev.columns_present_bitmap2 != full)
        or ev.table_map[ev.table_id].columns is not columns
        or not ev.complete
    ):
        return None
    wrapper = ev.packet
    if wrapper._BinLogPacketWrapper__data_buffer:  # bytes pushed back: not a plain position
        return None
    raw = wrapper.packet
    start = raw._position
    # The body's end as the library's loop sees it: event_size excludes header and checksum.
    end = start + ev.event_size - wrapper.read_bytes
    errors = "ignore" if ev._ignore_decode_errors else "strict"
    rows: list[Any] = _native.decode(plan, raw._data, start, end, 2 if update else 1, errors)
    events_decoded += 1
    return rows
