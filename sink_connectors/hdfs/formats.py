"""What goes into an HDFS file: rows rendered as Hive text or as Avro records, and the
streams that carry them to WebHDFS.

Text follows Hive's ``LazySimpleSerDe`` (``ROW FORMAT DELIMITED ... ESCAPED BY '\\\\'`` with
``serialization.escape.crlf`` true), so a Hive table reads back the same values:

* NULL is ``\\N``; an empty string stays empty;
* a backslash, the field delimiter, CR and LF inside a value are escaped with a backslash
  (``\\\\``, ``\\<delim>``, ``\\r``, ``\\n``), so every row is one line;
* bytes (BINARY, BLOB, BIT) are base64, as Hive's BINARY type reads them;
* DECIMAL in plain notation (no exponent), FLOAT/DOUBLE in their shortest exact form;
* DATE ``yyyy-mm-dd``, DATETIME/TIMESTAMP ``yyyy-mm-dd hh:mm:ss[.ffffff]`` (Hive's timestamp
  text form, ISO 8601 with a space), TIME as MySQL prints it (``-838:59:59``); zero dates
  as MySQL prints them (``0000-00-00``).

Avro files use the source table's own column types (:mod:`schemas.avro_types`), so values
stay exact: the records decode with :class:`~schemas.avro_types.RowCodec` into what the reader
read.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from schemas.avro_types import RowCodec, avro_field, field_names
from schemas.row_binary import write_bytes, write_long, write_string
from schemas.table import TableSchema

NULL_TEXT = "\\N"
STREAM_CHUNK = 1 << 20
"""Bytes gathered before they go to the HTTP upload: fewer, larger chunks."""


# --- text ----------------------------------------------------------------------------------


def render_time(value: timedelta) -> str:
    """A TIME as MySQL prints it: ``[-]H:MM:SS[.ffffff]``, hours beyond 24 allowed."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minute:02d}:{sec:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


class TextRenderer:
    """Renders rows (tuples of the values a reader read) as Hive text lines."""

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        escapes = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", delimiter: "\\" + delimiter}
        self._escape_table = str.maketrans(escapes)
        self._render: dict[type, Callable[[Any], str]] = {
            str: self.escape,
            int: str,
            bool: lambda v: "true" if v else "false",
            float: repr,
            Decimal: lambda v: format(v, "f"),
            bytes: lambda v: base64.b64encode(v).decode("ascii"),
            bytearray: lambda v: base64.b64encode(v).decode("ascii"),
            datetime: lambda v: v.isoformat(sep=" "),
            date: date.isoformat,
            timedelta: render_time,
        }

    def escape(self, text: str) -> str:
        return text.translate(self._escape_table)

    def value(self, value: object) -> str:
        if value is None:
            return NULL_TEXT
        render = self._render.get(type(value))
        if render is None:
            # Subclasses and anything unexpected (a set from a custom converter) as text.
            return self.escape(str(value))
        return render(value)

    def line(self, row: Sequence[object]) -> str:
        return self.delimiter.join(map(self.value, row)) + "\n"


# --- avro ----------------------------------------------------------------------------------

OP_FIELD = "op"


def projected_table(source: TableSchema, index: Sequence[int], names: Sequence[str]) -> TableSchema:
    """The columns a writer writes: source columns ``index`` under the writer's ``names``."""
    columns = tuple(
        replace(source.columns[i], name=name) for i, name in zip(index, names, strict=True)
    )
    return TableSchema(source.database, source.table, columns, (), source.version)


def avro_file_schema(table: TableSchema, with_op: bool) -> dict[str, Any]:
    """The record schema of an Avro file of ``table``'s rows: one field per column, each
    with its exact type and the column's MySQL declaration (``sluice.column``), plus ``op``
    when the writer writes operations."""
    where = table.qualified_name
    fields = [
        avro_field(col, name, where)
        for col, name in zip(table.columns, field_names(table), strict=True)
    ]
    if with_op:
        fields.append({"name": OP_FIELD, "type": "string", "doc": "SNAPSHOT/INSERT/UPDATE/DELETE"})
    return {
        "type": "record",
        "name": RowCodec(table).value_record_name,
        "doc": f"Rows of {where}, schema version {table.version}",
        "fields": fields,
    }


# --- streams and files ---------------------------------------------------------------------


class HdfsUpload:
    """One HDFS file being created through WebHDFS: a single streaming HTTP PUT, fed in
    chunks of :data:`STREAM_CHUNK` bytes. Nothing is visible under the file's name until the
    NameNode has it; the data is durable once :meth:`close` returns."""

    def __init__(self, client: Any, path: str) -> None:
        self.path = path
        self.size = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._context = client.write(path, overwrite=False)
        self._upload = self._context.__enter__()
        self._closed = False

    def write(self, data: bytes) -> int:
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        if self._buffered >= STREAM_CHUNK:
            self._send()
        return len(data)

    def _send(self) -> None:
        if self._buffer:
            self._upload.write(b"".join(self._buffer))
            self._buffer, self._buffered = [], 0

    def flush(self) -> None:
        """No-op: data goes out in chunks; only :meth:`close` makes it durable."""

    def seekable(self) -> bool:  # asked by gzip
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        """Send the rest and finish the upload; raises if WebHDFS refused any of it."""
        if self._closed:
            return
        self._closed = True
        self._send()
        self._context.__exit__(None, None, None)

    def discard(self) -> None:
        """End the upload without caring whether it worked (the file is deleted next)."""
        if self._closed:
            return
        self._closed = True
        self._buffer = []
        # The caller deletes the file either way.
        with contextlib.suppress(Exception):
            self._context.__exit__(None, None, None)


class RowFile(Protocol):
    """An open output file of one format."""

    upload: HdfsUpload

    def write(self, rows: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class TextFile:
    def __init__(self, upload: HdfsUpload, renderer: TextRenderer, gzipped: bool) -> None:
        self.upload = upload
        self.renderer = renderer
        # mtime=0: the same rows give the same bytes, whenever they are written. Level 6, as
        # Hadoop's GzipCodec: level 9 costs twice the CPU for a few percent.
        self._gzip = (
            gzip.GzipFile(fileobj=upload, mode="wb", compresslevel=6, mtime=0) if gzipped else None
        )
        self._out: Any = self._gzip or upload

    def write(self, rows: Sequence[Sequence[object]]) -> None:
        line = self.renderer.line
        self._out.write("".join(map(line, rows)).encode("utf-8"))

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        self.upload.close()


class AvroFile:
    """An Avro object container file, written block by block from rows already encoded
    (:meth:`schemas.row_binary.RowEnvelopeCodec.encode_values`, byte for byte what fastavro
    writes, at several times its speed): header (schema, codec, sync marker), then blocks of
    about :data:`AVRO_BLOCK` bytes, each compressed alone and followed by the sync marker."""

    def __init__(self, upload: HdfsUpload, schema: dict[str, Any], codec: str, sync: bytes):
        self.upload = upload
        self._sync = sync
        self._compress = _BLOCK_COMPRESSORS[codec]
        meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
        header = [b"Obj\x01", write_long(len(meta))]
        for key, value in meta.items():
            header += [write_string(key), write_bytes(value)]
        upload.write(b"".join([*header, write_long(0), sync]))
        self._block: list[bytes] = []
        self._block_size = 0

    def write(self, rows: Sequence[Any]) -> None:
        for record in rows:
            self._block.append(record)
            self._block_size += len(record)
            if self._block_size >= AVRO_BLOCK:
                self._write_block()

    def _write_block(self) -> None:
        if not self._block:
            return
        data = self._compress(b"".join(self._block))
        self.upload.write(
            b"".join((write_long(len(self._block)), write_long(len(data)), data, self._sync))
        )
        self._block, self._block_size = [], 0

    def close(self) -> None:
        self._write_block()
        self.upload.close()


AVRO_BLOCK = 256 * 1024


def _deflate(data: bytes) -> bytes:
    # Avro's deflate is raw RFC 1951 data: no zlib header or checksum (wbits -15).
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _snappy(data: bytes) -> bytes:
    import cramjam

    # Avro's snappy: the compressed block, then the CRC32 of the uncompressed data.
    return bytes(cramjam.snappy.compress_raw(data)) + struct.pack(">I", zlib.crc32(data))


_BLOCK_COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "null": lambda data: data,
    "deflate": _deflate,
    "snappy": _snappy,
}


def codec_available(codec: str) -> bool:
    """Whether Avro blocks can be written with ``codec`` here (snappy needs cramjam)."""
    if codec not in _BLOCK_COMPRESSORS:
        return False
    try:
        _BLOCK_COMPRESSORS[codec](b"probe")
    except ImportError:
        return False
    return True
