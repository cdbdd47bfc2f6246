"""Sluice records <-> Kafka record values, in the Confluent wire format.

A value is ``b"\\x00"`` + the 4-byte big-endian schema id + the record in Avro binary
encoding, so Confluent deserializers (and ``kafka-avro-console-consumer``) read Sluice's
topics. Row events use one schema per table schema version
(:func:`schemas.avro_types.row_envelope_schema`), registered under the subject
``<record name>-value``, e.g. ``sluice.row.shop.orders-value``; barriers and control records
use the fixed schemas of ``schemas/avsc``.

Encoding and decoding run per row: everything that can be is prepared once per schema
(header bytes, codecs) and cached. Row events go through :mod:`schemas.row_binary`, a codec
specialized per table that writes exactly fastavro's bytes about twice as fast; control
records, and row envelopes written by another Sluice version, go through fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.avro_types import ROW_KIND, RowCodec, row_envelope_schema, table_from_avro
from schemas.control import (
    CONTROL_SCHEMAS,
    ControlRecord,
    control_from_avro,
    control_schema,
    control_to_avro,
)
from schemas.errors import SchemaNotFound, SerdeError
from schemas.events import Op, RowEvent, SourcePosition
from schemas.registry import SchemaRegistry
from schemas.row_binary import RowEnvelopeCodec
from schemas.table import TableSchema

__all__ = ["EventSerde", "SerdeError", "MAGIC_BYTE", "split_header"]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
_IDENTITY_CACHE_LIMIT = 4096

Decoded = RowEvent | ControlRecord


def split_header(data: bytes | None) -> int:
    """The schema id of a wire-format value; raises :class:`SerdeError` if it is not one."""
    try:
        magic, schema_id = _HEADER.unpack_from(data)  # type: ignore[arg-type]
    except (struct.error, TypeError):
        magic = schema_id = -1
    if magic != MAGIC_BYTE:
        if data is None:
            raise SerdeError("not a Sluice record: the value is empty (None, a tombstone?)")
        first = f"0x{data[0]:02x}" if data else "nothing"
        raise SerdeError(
            f"not a Confluent wire-format record: starts with {first} (expected magic byte "
            f"0x00 and a 4-byte schema id, {len(data)} bytes in all)"
        )
    result: int = schema_id
    return result


class _Sink:
    """A file for fastavro that keeps the one buffer it writes, instead of a BytesIO copy."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer: bytes | bytearray = b""

    def write(self, data: bytes | bytearray) -> int:
        self.buffer = data
        return len(data)


@dataclass(frozen=True)
class _RowWriter:
    table: TableSchema
    header: bytes
    codec: RowEnvelopeCodec


@dataclass(frozen=True)
class _Writer:
    header: bytes
    parsed: Any


@dataclass(frozen=True)
class _Reader:
    """How to decode one schema id: the row codec (fast path), else fastavro + a builder."""

    rows: RowEnvelopeCodec | None
    other: Callable[[bytes], Decoded] | None = None


class EventSerde:
    """Encodes :class:`RowEvent`, :class:`Barrier` and the control records; decodes them back.

    One instance per process (or per task) is enough; it caches one entry per table schema
    version and per schema id. Decoded row events carry a :class:`TableSchema` rebuilt from
    the writer schema, shared by all events of that schema id.
    """

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self._rows: dict[TableSchema, _RowWriter] = {}
        self._rows_by_identity: dict[int, _RowWriter] = {}
        self._controls: dict[type, _Writer] = {}
        self._readers: dict[int, _Reader] = {}

    # -- encode -----------------------------------------------------------------------------

    def encode(self, obj: RowEvent | ControlRecord) -> bytes:
        """The wire-format bytes of ``obj``, registering its schema on first use."""
        if isinstance(obj, RowEvent):
            return self._encode_row(obj)
        writer = self._controls.get(type(obj))
        if writer is None:
            writer = self._control_writer(type(obj))
        return self._write(writer.header, writer.parsed, control_to_avro(obj), type(obj).__name__)

    def _encode_row(self, event: RowEvent) -> bytes:
        table = event.table
        writer = self._rows_by_identity.get(id(table))
        if writer is None or writer.table is not table:
            writer = self._row_writer(table)
        try:
            return writer.codec.encode(event, writer.header)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
            raise SerdeError(
                f"cannot encode event {event.event_id} of {table.qualified_name}: "
                f"{type(e).__name__}: {e}"
            ) from e

    def _write(self, header: bytes, parsed: Any, record: dict[str, Any], what: str) -> bytes:
        sink = _Sink()
        try:
            schemaless_writer(sink, parsed, record)  # type: ignore[arg-type]
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
            raise SerdeError(f"cannot encode {what} record: {e}") from e
        return header + sink.buffer

    def _row_writer(self, table: TableSchema) -> _RowWriter:
        writer = self._rows.get(table)
        if writer is None:
            codec = RowEnvelopeCodec(table)  # first: raises for unsupported column types
            schema = row_envelope_schema(table)
            schema_id = self.registry.register(f"{schema['name']}-value", schema)
            writer = _RowWriter(table, _HEADER.pack(MAGIC_BYTE, schema_id), codec)
            self._rows[table] = writer
        if len(self._rows_by_identity) >= _IDENTITY_CACHE_LIMIT:
            self._rows_by_identity.clear()  # callers building a new TableSchema per event
        self._rows_by_identity[id(table)] = writer
        return writer

    def _control_writer(self, cls: type) -> _Writer:
        name = CONTROL_SCHEMAS.get(cls)
        if name is None:
            raise SerdeError(f"cannot encode {cls.__name__}: not a Sluice record type")
        schema = control_schema(name)
        full_name = f"{schema['namespace']}.{schema['name']}"
        schema_id = self.registry.register(f"{full_name}-value", schema)
        writer = _Writer(_HEADER.pack(MAGIC_BYTE, schema_id), parse_schema(schema))
        self._controls[cls] = writer
        return writer

    # -- decode -----------------------------------------------------------------------------

    def decode(self, data: bytes | None) -> Decoded:
        """The record encoded in ``data``, whichever process and schema version wrote it.

        Raises :class:`SerdeError` for anything else: ``None`` (a tombstone), bytes without
        the magic byte, an unknown schema id, or bytes that do not match their schema.
        """
        schema_id = split_header(data)
        assert data is not None
        reader = self._readers.get(schema_id) or self._reader(schema_id)
        try:
            if reader.rows is not None:
                return reader.rows.decode(data, _HEADER.size)
            assert reader.other is not None
            return reader.other(data)
        except (EOFError, IndexError, KeyError, ValueError, TypeError, struct.error) as e:
            raise SerdeError(
                f"cannot decode a {len(data)}-byte record with schema id {schema_id}: "
                f"{type(e).__name__}: {e}"
            ) from e

    def _fetch(self, schema_id: int) -> dict[str, Any]:
        try:
            return self.registry.get(schema_id)
        except SchemaNotFound as e:
            raise SerdeError(f"cannot decode record: unknown schema id {schema_id} ({e})") from e

    def _reader(self, schema_id: int) -> _Reader:
        schema = self._fetch(schema_id)
        if schema.get("sluice.kind") == ROW_KIND:
            table = table_from_avro(schema)
            if row_envelope_schema(table) == schema:  # written by this Sluice version
                reader = _Reader(RowEnvelopeCodec(table))
            else:  # another version's envelope: fastavro reads whatever it holds
                reader = _Reader(None, _fastavro_decoder(schema, _row_builder(RowCodec(table))))
        else:
            build = _control_builder(schema, schema_id)
            reader = _Reader(None, _fastavro_decoder(schema, build))
        self._readers[schema_id] = reader
        return reader


def _fastavro_decoder(
    schema: dict[str, Any], build: Callable[[dict[str, Any]], Decoded]
) -> Callable[[bytes], Decoded]:
    parsed = parse_schema(schema)

    def decode(data: bytes) -> Decoded:
        stream = BytesIO(data)
        stream.seek(_HEADER.size)
        record: dict[str, Any] = schemaless_reader(stream, parsed, None)  # type: ignore[assignment]
        return build(record)

    return decode


def _row_builder(codec: RowCodec) -> Callable[[dict[str, Any]], RowEvent]:
    table = codec.table
    from_avro = codec.from_avro
    ops = {op.value: op for op in Op}

    def build(record: dict[str, Any]) -> RowEvent:
        before, after, src = record["before"], record["after"], record["source"]
        return RowEvent(
            op=ops[record["op"]],
            table=table,
            before=None if before is None else from_avro(before),
            after=None if after is None else from_avro(after),
            source=SourcePosition(
                src["task"],
                src.get("chunk"),
                src.get("restore_value"),
                src.get("file"),
                src.get("pos"),
                src.get("gtid"),
                src.get("row"),
                src.get("seq", 0),
            ),
            ts_ms=record["ts_ms"],
        )

    return build


def _control_builder(schema: dict[str, Any], schema_id: int) -> Callable[[dict[str, Any]], Decoded]:
    full_name = f"{schema.get('namespace', '')}.{schema.get('name')}".lstrip(".")
    for cls, name in CONTROL_SCHEMAS.items():
        if full_name == f"sluice.control.{name}":
            return partial(control_from_avro, cls)
    raise SerdeError(f"schema id {schema_id} is {full_name!r}, which is no Sluice record type")
