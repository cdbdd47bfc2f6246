"""Avro binary encoding of one table's row envelopes, specialized per table: the hot path.

fastavro interprets the schema for every record; for the ~35 values of a row envelope
(most of them scaffolding: source position, event id, table name) that caps a core at about
46,000 rows/s encoded and 57,000 decoded (six-column row, ``python -m schemas.bench_serde``).
This codec builds one encoder and one decoder function per column when a table schema is
first seen and writes the envelope's fixed parts from precomputed bytes: about 130,000 and
95,000 rows/s. Its output is byte for byte what fastavro writes for
:func:`schemas.avro_types.row_envelope_schema` (the unit tests check both directions), so
any Avro reader decodes it with the registered schema. Control records, which are rare,
stay on fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from schemas import types
from schemas.avro_types import base_type, shortest_float32, type_mapping
from schemas.errors import SerdeError
from schemas.events import Op, RowEvent, SourcePosition
from schemas.native import load
from schemas.row_compile import ColumnSpec, compile_decoder, compile_encoder, fast_constructor
from schemas.table import Column, TableSchema
from schemas.types import LogicalType

# The C inner loop (setup.py); without a compiler the generated Python below serves.
native = load("schemas._rowcodec")

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes, int], tuple[Any, int]]

_BYTE = [bytes((i,)) for i in range(256)]
_NULL = b"\x00"
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")
_DECIMAL_CONTEXT = Context(prec=100)  # MySQL DECIMAL has at most 65 digits: never rounds
_OPS = tuple(Op)
_OP_BYTES = {op: _BYTE[2 * i] for i, op in enumerate(_OPS)}
# Two varint bytes, both with the continuation bit, for each 14-bit group (about 0.5 MiB).
_GROUPS_OF_14 = [bytes(((v & 0x7F) | 0x80, (v >> 7) | 0x80)) for v in range(0x4000)]


# --- primitives (Avro spec: zig-zag varints, length-prefixed strings) -----------------------


def write_long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    if n < 0x80:
        return _BYTE[n]
    if n < 0x4000:  # ids, lengths, small amounts: the common multi-byte case
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n >> 64:  # negative or too big: outside Avro's 64-bit long
        raise OverflowError("integer out of the 64-bit range of an Avro long")
    parts = []
    while n >= 0x4000:  # 14 bits at a time: timestamps take 4 steps instead of 8
        parts.append(_GROUPS_OF_14[n & 0x3FFF])
        n >>= 14
    parts.append(_BYTE[n] if n < 0x80 else bytes(((n & 0x7F) | 0x80, n >> 7)))
    return b"".join(parts)


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = data[pos]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos + 1
        shift += 7


def write_string(s: str) -> bytes:
    raw = s.encode()
    return write_long(len(raw)) + raw


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = read_long(data, pos)
    end = pos + size
    return data[pos:end].decode(), end


def write_bytes(b: bytes) -> bytes:
    return write_long(len(b)) + b


def read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = read_long(data, pos)
    end = pos + size
    return data[pos:end], end


# --- per-type value codecs (non-null branch) -----------------------------------------------


def _decimal_codec(precision: int, scale: int, as_int: bool) -> tuple[Encoder, Decoder]:
    """Two's complement big-endian unscaled value; ``as_int`` for BIGINT UNSIGNED."""
    unit, limit = 10**scale, 10**precision

    def encode(value: Any) -> bytes:
        if as_int:
            unscaled = int(value)
        elif isinstance(value, float):  # 0.1 has no exact decimal value: refuse, don't round
            raise TypeError("a DECIMAL value must be a Decimal or an int, not a float")
        else:
            num, den = value.as_integer_ratio()
            if unit % den:
                raise ValueError(f"{value} has more than {scale} decimal places")
            unscaled = num * (unit // den)
        if not -limit < unscaled < limit:
            raise ValueError(f"{value} has more than {precision} digits")
        raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
        return write_long(len(raw)) + raw

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        size, pos = read_long(data, pos)
        end = pos + size
        unscaled = int.from_bytes(data[pos:end], "big", signed=True)
        if as_int:
            return unscaled, end
        return Decimal(unscaled).scaleb(-scale, _DECIMAL_CONTEXT), end

    return encode, decode


def _float_encode(value: float) -> bytes:
    return _FLOAT.pack(value)


def _float_decode(data: bytes, pos: int) -> tuple[float, int]:
    return shortest_float32(_FLOAT.unpack_from(data, pos)[0]), pos + 4


def _double_encode(value: float) -> bytes:
    return _DOUBLE.pack(value)


def _double_decode(data: bytes, pos: int) -> tuple[float, int]:
    return _DOUBLE.unpack_from(data, pos)[0], pos + 8


def _date_encode(value: date) -> bytes:
    return write_long(value.toordinal() - _EPOCH_ORDINAL)


def _date_decode(data: bytes, pos: int) -> tuple[date, int]:
    days, pos = read_long(data, pos)
    return date.fromordinal(days + _EPOCH_ORDINAL), pos


def _datetime_encode(value: datetime) -> bytes:
    return write_long((value - _EPOCH) // _US)


def _datetime_decode(data: bytes, pos: int) -> tuple[datetime, int]:
    micros, pos = read_long(data, pos)
    return _EPOCH + _US * micros, pos  # exact, and twice as fast as timedelta(microseconds=)


def _time_encode(value: timedelta) -> bytes:
    return write_long(value // _US)


def _time_decode(data: bytes, pos: int) -> tuple[timedelta, int]:
    micros, pos = read_long(data, pos)
    return _US * micros, pos


def _boolean_encode(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _boolean_decode(data: bytes, pos: int) -> tuple[bool, int]:
    return data[pos] != 0, pos + 1


_PRIMITIVE_CODECS: dict[str, tuple[Encoder, Decoder]] = {
    "int": (write_long, read_long),
    "long": (write_long, read_long),
    "float": (_float_encode, _float_decode),
    "double": (_double_encode, _double_decode),
    "string": (write_string, read_string),
    "bytes": (write_bytes, read_bytes),
    "boolean": (_boolean_encode, _boolean_decode),
}


def _value_codec(col: Column, where: str) -> tuple[Encoder, Decoder, bool]:
    """(encoder, decoder, has a string branch) for the type ``avro_types`` gives the column."""
    base_type(col, where)  # raises UnsupportedColumnType, naming the column
    return _type_codec(col.logical)


def _type_codec(lt: LogicalType) -> tuple[Encoder, Decoder, bool]:
    """The same for a neutral type (array elements have no column of their own)."""
    avro = type_mapping(lt)[0]
    if isinstance(avro, list):  # [logical date/timestamp, "string"]
        if avro[0]["logicalType"] == "date":
            return _date_encode, _date_decode, True
        return _datetime_encode, _datetime_decode, True
    if lt.kind == types.ARRAY:
        assert lt.element is not None
        return (*_array_codec(lt.element), False)
    if isinstance(avro, dict):  # bytes decimal; BIGINT UNSIGNED stays a Python int
        unsigned_bigint = lt.kind == types.INT
        return (*_decimal_codec(avro["precision"], avro["scale"], unsigned_bigint), False)
    if lt.kind == types.TIME:
        return _time_encode, _time_decode, False
    if lt.kind == types.NUMERIC:
        return _numeric_encode, _numeric_decode, False
    return (*_PRIMITIVE_CODECS[avro], False)


def _numeric_encode(value: Decimal) -> bytes:
    return write_string(str(value))


def _numeric_decode(data: bytes, pos: int) -> tuple[Decimal, int]:
    text, pos = read_string(data, pos)
    return Decimal(text), pos


def _array_codec(element: LogicalType) -> tuple[Encoder, Decoder]:
    """An Avro array of nullable elements, written as one block (what fastavro writes)."""
    encode_item, decode_item = _union_codec(*_type_codec(element), nullable=True)

    def encode(values: Sequence[Any]) -> bytes:
        if not values:
            return b"\x00"
        return b"".join((write_long(len(values)), *map(encode_item, values), b"\x00"))

    def decode(data: bytes, pos: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while True:
            count, pos = read_long(data, pos)
            if count == 0:
                return out, pos
            if count < 0:  # a block with its byte size first
                count = -count
                _, pos = read_long(data, pos)
            for _ in range(count):
                item, pos = decode_item(data, pos)
                out.append(item)

    return encode, decode


def _column_codec(col: Column, where: str) -> tuple[Encoder, Decoder]:
    """Adds the union branch index: ``null`` first when nullable, then the value, then
    the ``string`` branch of DATE/DATETIME/TIMESTAMP for zero dates."""
    return _union_codec(*_value_codec(col, where), nullable=col.nullable)


def _union_codec(
    encode_value: Encoder, decode_value: Decoder, string_branch: bool, *, nullable: bool
) -> tuple[Encoder, Decoder]:
    first = 1 if nullable else 0
    if not nullable and not string_branch:
        return encode_value, decode_value
    tag, string_tag = _BYTE[2 * first], _BYTE[2 * first + 2]

    def encode(value: Any) -> bytes:
        if value is None and first:
            return _NULL
        if string_branch and isinstance(value, str):
            return string_tag + write_string(value)
        return tag + encode_value(value)

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        branch = data[pos] >> 1
        if branch == first:
            return decode_value(data, pos + 1)
        if branch == 0:
            return None, pos + 1
        if string_branch and branch == first + 1:
            return read_string(data, pos + 1)
        raise ValueError(f"union branch {branch} out of range")

    return encode, decode


# --- the envelope --------------------------------------------------------------------------


def _write_optional_string(value: str | None) -> bytes:
    return _NULL if value is None else b"\x02" + write_string(value)


def _write_optional_long(value: int | None) -> bytes:
    return _NULL if value is None else b"\x02" + write_long(value)


def _read_optional_string(data: bytes, pos: int) -> tuple[str | None, int]:
    if data[pos] == 0:
        return None, pos + 1
    return read_string(data, pos + 1)


def _read_optional_long(data: bytes, pos: int) -> tuple[int | None, int]:
    if data[pos] == 0:
        return None, pos + 1
    return read_long(data, pos + 1)


_KINDS: dict[Any, str] = {read_long: "long", read_string: "string", read_bytes: "bytes"}
_HELPERS = {
    "_NULL": _NULL,
    "write_string": write_string,
    "read_long": read_long,
    "read_string": read_string,
    "read_bytes": read_bytes,
}
new_row_event = fast_constructor(RowEvent)
"""``RowEvent(op, table, before, after, source, ts_ms)``, all positional, faster."""
new_source_position = fast_constructor(SourcePosition)
"""``SourcePosition(task, chunk, restore_value, file, pos, gtid, row, seq)``, all positional."""


def _column_spec(col: Column, where: str) -> ColumnSpec:
    encode, decode, string_branch = _value_codec(col, where)
    return ColumnSpec(encode, decode, col.nullable, string_branch, _KINDS.get(decode, ""))


def _native_kinds() -> dict[Any, int]:
    if native is None:
        return {}
    return {
        write_long: native.LONG,
        _double_encode: native.DOUBLE,
        _float_encode: native.FLOAT,
        write_string: native.STRING,
        write_bytes: native.BYTES,
        _date_encode: native.DATE,
        _datetime_encode: native.DATETIME,
        _time_encode: native.TIME,
    }


_NATIVE_KINDS = _native_kinds()


def native_plan(
    specs: Sequence[ColumnSpec],
    native_module: Any = None,
    tail: bytes = b"",
    table: TableSchema | None = None,
) -> Any:
    """The C codec of one table's values, or None when it is not built (``SLUICE_NO_NATIVE``).

    Columns it has no C code for (decimals, FLOAT decoding, values of unexpected types)
    call back into the spec's Python encoder/decoder, so the bytes are the same.
    """
    module = native_module or native
    if module is None:
        return None
    kinds = _NATIVE_KINDS or {}
    return module.RowPlan(
        tuple(
            (kinds.get(s.encode, 0), s.nullable, s.string_branch, s.encode, s.decode) for s in specs
        ),
        ops={op: i for i, op in enumerate(_OPS)},
        tail=tail,
        # Whole events are decoded in C when both classes are plain dataclasses (their
        # instances filled through __dict__, as fast_constructor does).
        table=table,
        event_type=RowEvent if new_row_event is not RowEvent else None,
        source_type=SourcePosition if new_source_position is not SourcePosition else None,
    )


class RowEnvelopeCodec:
    """Encodes/decodes the row envelope of one :class:`TableSchema` (without the header)."""

    def __init__(self, table: TableSchema) -> None:
        self.table = table
        codecs = [_column_codec(col, table.qualified_name) for col in table.columns]
        self._encoders = tuple(enc for enc, _ in codecs)  # per column: names a bad value
        specs = [_column_spec(col, table.qualified_name) for col in table.columns]
        self._tail = write_string(table.qualified_name) + write_long(table.version)
        self._native = native_plan(specs, tail=self._tail, table=table)
        if self._native is not None:
            self._encode_row, self._decode_row = self._native.encode, self._native.decode
        else:
            self._encode_row = compile_encoder(specs, _HELPERS)
            self._decode_row = compile_decoder(specs, _HELPERS)
        # Task ids, chunk ids and binlog file names: few, repeated in every event.
        self._strings: dict[str, bytes] = {}
        self._optional_strings: dict[str, bytes] = {}
        # A snapshot event's source is (task, chunk, seq): everything from ``task`` to
        # ``row`` is the same for a whole part, encoded once; so is a batch's ts_ms.
        self._snapshot_sources: dict[tuple[str, str | None], bytes] = {}
        self._ts: tuple[int, bytes] = (0, b"\x00")
        self._last_source = b"\xff"  # never a valid start of the source fields
        self._last_fields: tuple[Any, ...] = ()

    def encode(self, event: RowEvent, header: bytes = b"") -> bytes:
        """``header`` + the event's envelope."""
        if self._native is not None:
            try:
                data = self._native.encode_event(event, header)
                if data is not NotImplemented:
                    return data
            except (TypeError, ValueError, AttributeError, OverflowError, struct.error):
                pass  # the Python code below says which column is wrong
        before, after, src = event.before, event.after, event.source
        task, seq, ts_ms = src.task, src.seq, event.ts_ms
        if src.file is None and src.pos is None and src.row is None and src.gtid is None:
            if src.restore_value is None:
                key = (task, src.chunk)
                source = self._snapshot_sources.get(key) or self._snapshot_source(key)
            else:
                source = self._source(src)
        else:
            source = self._source(src)
        ts = self._ts
        if ts[0] != ts_ms:
            ts = self._ts = (ts_ms, write_long(ts_ms))
        return b"".join(
            (
                header,
                _OP_BYTES[event.op],
                _NULL if before is None else b"\x02" + self.encode_values(before),
                _NULL if after is None else b"\x02" + self.encode_values(after),
                source,
                write_long(seq),
                write_string(f"{task}:{seq}"),
                ts[1],
                self._tail,
            )
        )

    def _snapshot_source(self, key: tuple[str, str | None]) -> bytes:
        if len(self._snapshot_sources) > 10_000:
            self._snapshot_sources.clear()
        source = self._snapshot_sources[key] = self._source(SourcePosition(*key))
        return source

    def _source(self, src: SourcePosition) -> bytes:
        """The source record's fields from ``task`` to ``row`` (``seq`` follows)."""
        task = self._strings.get(src.task) or self._remember(src.task, self._strings, b"")
        chunk, file, optional = src.chunk, src.file, self._optional_strings
        return b"".join(
            (
                task,
                _NULL if chunk is None else optional.get(chunk) or self._remember(chunk, optional),
                _write_optional_string(src.restore_value),
                _NULL if file is None else optional.get(file) or self._remember(file, optional),
                _write_optional_long(src.pos),
                _write_optional_string(src.gtid),
                _write_optional_long(src.row),
            )
        )

    @staticmethod
    def _remember(s: str, cache: dict[str, bytes], tag: bytes = b"\x02") -> bytes:
        if len(cache) > 10_000:
            cache.clear()
        encoded = cache[s] = tag + write_string(s)
        return encoded

    def encode_values(self, values: Sequence[Any]) -> bytes:
        if len(values) != len(self._encoders):
            raise SerdeError(
                f"table {self.table.qualified_name}: row has {len(values)} values, schema "
                f"version {self.table.version} has {len(self._encoders)} columns"
            )
        try:
            return self._encode_row(values)
        except (TypeError, ValueError, AttributeError, OverflowError, struct.error):
            raise self._bad_row(values) from None

    def _bad_row(self, values: Sequence[Any]) -> SerdeError:
        for col, enc, value in zip(self.table.columns, self._encoders, values, strict=True):
            try:
                enc(value)
            except Exception as e:  # find the column to name it
                return SerdeError(
                    f"column {self.table.qualified_name}.{col.name} ({col.column_type}): "
                    f"cannot encode {type(value).__name__} value {value!r:.80}: {e}"
                )
        return SerdeError(f"table {self.table.qualified_name}: cannot encode row")

    def decode(self, data: bytes, pos: int) -> RowEvent:
        """The event encoded in ``data[pos:]``; raises IndexError/ValueError on bad input."""
        if self._native is not None:
            return self._native.decode_event(data, pos)
        op = _OPS[data[pos] >> 1]
        pos += 1
        before = after = None
        if data[pos] == 2:
            before, pos = self._decode_row(data, pos + 1)
        elif data[pos] == 0:
            pos += 1
        else:
            raise ValueError("bad union branch for 'before'")
        if data[pos] == 2:
            after, pos = self._decode_row(data, pos + 1)
        elif data[pos] == 0:
            pos += 1
        else:
            raise ValueError("bad union branch for 'after'")
        # The source fields before ``seq`` repeat from one event to the next (a snapshot
        # part's task and chunk): equal bytes decode to equal values, so decode them once.
        last = self._last_source
        if data.startswith(last, pos):
            task, chunk, restore_value, file, binlog_pos, gtid, row = self._last_fields
            pos += len(last)
        else:
            start = pos
            task, pos = read_string(data, pos)
            chunk, pos = _read_optional_string(data, pos)
            restore_value, pos = _read_optional_string(data, pos)
            file, pos = _read_optional_string(data, pos)
            binlog_pos, pos = _read_optional_long(data, pos)
            gtid, pos = _read_optional_string(data, pos)
            row, pos = _read_optional_long(data, pos)
            self._last_source = data[start:pos]
            self._last_fields = (task, chunk, restore_value, file, binlog_pos, gtid, row)
        seq, pos = read_long(data, pos)
        size, pos = read_long(data, pos)  # event_id: derived from task and seq
        ts_ms, pos = read_long(data, pos + size)
        if data[pos:] != self._tail:
            raise ValueError("table name or schema version does not match the schema")
        source = new_source_position(task, chunk, restore_value, file, binlog_pos, gtid, row, seq)
        return new_row_event(op, self.table, before, after, source, ts_ms)

    def decode_values(self, data: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        return self._decode_row(data, pos)
