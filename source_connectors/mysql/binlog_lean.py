"""The binlog's most frequent events read without mysql-replication's event objects, and
every rows event framed for Sluice's row decoder.

An OLTP transaction of one-row statements is mostly framing: sysbench's ``oltp_write_only``
writes GTID, four TABLE_MAP + rows event pairs and XID — ten binlog events for four rows —
and the library builds an event object for each, with a dozen keyword arguments, filter
checks and a packet wrapper: about 25 µs per event, most of a reader's time under sysbench
(issue #9). :class:`LeanStreamReader` reads those four kinds straight from the packet bytes:

* MariaDB GTID → :class:`LeanGtid` (``domain-server-seq`` and the flags);
* XID → :class:`LeanXid` (the commit: its position and time);
* TABLE_MAP whose bytes it has seen parsed → the table map entry of that parse, no event;
* every WRITE/UPDATE/DELETE rows event (v1 and v2) of a mapped table the filters keep →
  :class:`LeanRows`: where its rows are in the packet, for :mod:`.binlog_rows` to decode. A
  rows event Sluice cannot decode exactly — a partial row image (a session that set
  ``binlog_row_image=MINIMAL``), a post-header of another length — is handed over too,
  with its ``problem`` said, so the reader stops on it by name instead of guessing.

Every other event, and these in an unusual shape (checksum verification on, a first
TABLE_MAP), goes through :meth:`_library`, which is ``BinLogStreamReader.fetchone``'s
handling of one packet in the pinned ``mysql-replication==1.0.17``; rows events of tables
the filters drop go there too, and the library drops them. The integration tests read
binlogs both ways and compare every event.
"""

from __future__ import annotations

import struct
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.binlogstream import MYSQL_EXPECTED_ERROR_CODES
from pymysqlreplication.constants import BINLOG
from pymysqlreplication.event import MariadbGtidEvent, XidEvent
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

_HEADER = struct.Struct(
    "<IBIIIH"
)  # after the OK byte: timestamp, type, server id, size, log_pos, flags
_GTID = struct.Struct("<QIB")  # sequence number, domain id, flags
_BODY = 20  # OK byte + 19-byte event header
_ROWS = {
    BINLOG.WRITE_ROWS_EVENT_V1: (WriteRowsEvent, 8),
    BINLOG.UPDATE_ROWS_EVENT_V1: (UpdateRowsEvent, 8),
    BINLOG.DELETE_ROWS_EVENT_V1: (DeleteRowsEvent, 8),
    BINLOG.WRITE_ROWS_EVENT_V2: (WriteRowsEvent, 10),
    BINLOG.UPDATE_ROWS_EVENT_V2: (UpdateRowsEvent, 10),
    BINLOG.DELETE_ROWS_EVENT_V2: (DeleteRowsEvent, 10),
}
_TABLES_KEPT = 4096
_FULL: dict[int, bytes] = {}
_CONSUMED = object()  # a TABLE_MAP taken from the cache: nothing to hand over
events_read = 0
"""Events read without the library's objects, in this process (for tests)."""
table_maps_reused = 0
"""TABLE_MAP events taken from the cache instead of parsed, in this process (for tests)."""


class LeanGtid:
    __slots__ = ("gtid", "flags", "timestamp", "log_pos", "event_size")

    def __init__(self, gtid: str, flags: int, timestamp: int, log_pos: int, size: int) -> None:
        self.gtid, self.flags, self.timestamp = gtid, flags, timestamp
        self.log_pos, self.event_size = log_pos, size


class LeanXid:
    __slots__ = ("timestamp", "log_pos", "event_size")

    def __init__(self, timestamp: int, log_pos: int, size: int) -> None:
        self.timestamp, self.log_pos, self.event_size = timestamp, log_pos, size


def full_bitmap(n: int) -> bytes:
    """The column bitmap of a full row image of ``n`` columns (cached: one per rows event)."""
    bitmap = _FULL.get(n)
    if bitmap is None:
        bitmap = _FULL[n] = ((1 << n) - 1).to_bytes((n + 7) // 8, "little")
    return bitmap


class LeanRows:
    """A rows event as bytes: ``data[start:end]`` holds its rows (after the bitmaps);
    ``problem`` says why they cannot be decoded exactly, else None."""

    __slots__ = (
        "kind",
        "table_id",
        "table_map",
        "schema",
        "table",
        "columns",
        "timestamp",
        "log_pos",
        "event_size",
        "data",
        "start",
        "end",
        "problem",
    )
    timestamp: int
    log_pos: int
    event_size: int
    data: bytes
    start: int
    end: int
    problem: str | None

    def __init__(self, kind: type, table_id: int, table_map: dict[int, Any], table: Any) -> None:
        self.kind, self.table_id, self.table_map = kind, table_id, table_map
        self.schema, self.table, self.columns = table.schema, table.table, table.columns
        self.problem = None


def _packed_int(data: bytes, pos: int) -> tuple[int, int]:
    """A length-encoded integer at ``pos`` and the position after it."""
    first = data[pos] if pos < len(data) else 0xFB
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None:
        return (first, pos + 1) if first < 0xFB else (-1, pos + 1)
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


class LeanStreamReader(BinLogStreamReader):
    """``BinLogStreamReader`` that hands over :class:`LeanGtid`, :class:`LeanXid` and
    :class:`LeanRows` for the frequent events and every rows event; the rest as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # TABLE_MAP bodies seen parsed → (table id, the Table the parse put in the table map)
        self._lean_tables: dict[bytes, tuple[int, Any]] = {}
        allowed = self._private("allowed_events")
        # Only what the caller asked for (only_events) is handed over, as the library does.
        self._lean_xid = XidEvent in allowed
        self._lean_gtid = MariadbGtidEvent in allowed
        self._lean_kinds = {t for t, (cls, _) in _ROWS.items() if cls in allowed}

    # -- private state of the pinned library, by its mangled names -------------------------
    def _private(self, name: str) -> Any:
        return getattr(self, f"_BinLogStreamReader__{name}")

    def fetchone(self) -> Any:
        global events_read
        while True:
            if (
                self.end_log_pos
                or self.skip_to_timestamp
                or not self._private("connected_stream")
                or not self._private("connected_ctl")
            ):
                return super().fetchone()  # connects; reads one packet the library's way
            try:
                pkt = self._stream_connection._read_packet()
            except pymysql.OperationalError as error:
                if error.args and error.args[0] in MYSQL_EXPECTED_ERROR_CODES:
                    self._stream_connection.close()
                    self._BinLogStreamReader__connected_stream = False
                    continue
                raise
            if pkt.is_eof_packet():
                self.close()
                return None
            if not pkt.is_ok_packet():
                continue
            event = self._lean(pkt)
            if event is _CONSUMED:
                continue
            if event is not None:
                events_read += 1
                return event
            event = self._library(pkt)
            if event is not None:
                return event

    def _lean(self, pkt: Any) -> Any:
        data = pkt._data
        if pkt._position != 0 or len(data) < _BODY:
            return None
        ts, etype, server_id, size, log_pos, _flags = _HEADER.unpack_from(data, 1)
        end = 1 + size - (4 if self._private("use_checksum") else 0)
        if end > len(data) or self._private("verify_checksum"):
            return None
        if etype == BINLOG.XID_EVENT and self._lean_xid:
            self.log_pos = log_pos
            return LeanXid(ts, log_pos, size)
        if etype == BINLOG.MARIADB_GTID_EVENT and self._lean_gtid:
            if end - _BODY < _GTID.size:
                return None
            seq, domain, flags = _GTID.unpack_from(data, _BODY)
            self.log_pos = log_pos
            return LeanGtid(f"{domain}-{server_id}-{seq}", flags, ts, log_pos, size)
        if etype == BINLOG.TABLE_MAP_EVENT:
            held = self._lean_tables.get(data[_BODY:end])
            if held is None:
                return None
            global table_maps_reused
            table_maps_reused += 1
            self.table_map[held[0]] = held[1]
            self.log_pos = log_pos
            return _CONSUMED
        rows = _ROWS.get(etype)
        if rows is None or etype not in self._lean_kinds:
            return None
        return self._rows(pkt, data, rows, ts, log_pos, size, end, etype)

    def _rows(
        self, pkt: Any, data: bytes, rows: tuple[type, int], ts: int, log_pos: int, size: int,
        end: int, etype: int,
    ) -> LeanRows | None:  # fmt: skip
        kind, post_header = rows
        table_id = int.from_bytes(data[_BODY : _BODY + 6], "little")
        table = self.table_map.get(table_id)
        if table is None or not self._wanted(table):
            return None  # the library drops it, as it drops its TABLE_MAP
        event = LeanRows(kind, table_id, self.table_map, table)
        event.timestamp, event.log_pos, event.event_size = ts, log_pos, size
        event.data, event.start, event.end = data, end, end
        self.log_pos = log_pos
        declared = self._private("post_header_lengths")
        if declared and len(declared) >= etype and declared[etype - 1] != post_header:
            event.problem = f"a post-header of {declared[etype - 1]} bytes, not {post_header}"
            return event
        pos = _BODY + post_header
        if post_header == 10:  # v2: extra data (NDB, partitions) after its 2-byte length
            pos += int.from_bytes(data[_BODY + 8 : _BODY + 10], "little") - 2
        ncols, pos = _packed_int(data, pos)
        if ncols != len(table.columns):
            event.problem = f"{ncols} columns where its TABLE_MAP has {len(table.columns)}"
            return event
        width = (ncols + 7) // 8
        full = full_bitmap(ncols)  # cached per width: this runs for every rows event
        for _ in range(2 if kind is UpdateRowsEvent else 1):
            if data[pos : pos + width] != full:
                event.problem = (
                    "a partial row image (the writing session's binlog_row_image is not FULL)"
                )
                return event
            pos += width
        if pos > end:
            event.problem = f"a body of {end - _BODY} bytes, shorter than its header"
            return event
        event.start = pos
        return event

    def _wanted(self, table: Any) -> bool:
        """The library's filters (RowsEvent.__init__): a table they drop goes its way."""
        only_tables, only_schemas = self._private("only_tables"), self._private("only_schemas")
        ignored_tables = self._private("ignored_tables")
        ignored_schemas = self._private("ignored_schemas")
        return not (
            (only_tables is not None and table.table not in only_tables)
            or (ignored_tables is not None and table.table in ignored_tables)
            or (only_schemas is not None and table.schema not in only_schemas)
            or (ignored_schemas is not None and table.schema in ignored_schemas)
        )

    def _wrap(self, pkt: Any) -> BinLogPacketWrapper:
        return BinLogPacketWrapper(
            pkt,
            self.table_map,
            self._ctl_connection,
            self.mysql_version,
            self._private("use_checksum"),
            self._private("allowed_events_in_packet"),
            self._private("only_tables"),
            self._private("ignored_tables"),
            self._private("only_schemas"),
            self._private("ignored_schemas"),
            self._private("freeze_schema"),
            self._private("ignore_decode_errors"),
            self._private("verify_checksum"),
            self._private("optional_meta_data"),
            self._private("enable_logging"),
            self._private("use_column_name_cache"),
            self._private("post_header_lengths"),
        )

    def _library(self, pkt: Any) -> Any:
        """One packet as ``BinLogStreamReader.fetchone`` (1.0.17) handles it, when
        ``end_log_pos`` and ``skip_to_timestamp`` are unset; a TABLE_MAP's parse is
        remembered for :meth:`_lean`."""
        binlog_event = self._wrap(pkt)
        if binlog_event.event_type == BINLOG.ROTATE_EVENT:
            self.log_pos = binlog_event.event.position
            self.log_file = binlog_event.event.next_binlog
            if binlog_event.timestamp != 0:  # a real rotation: table ids may be reused
                self.table_map = {}
                self._lean_tables.clear()
        elif binlog_event.log_pos:
            self.log_pos = binlog_event.log_pos
        if (
            binlog_event.event_type == BINLOG.FORMAT_DESCRIPTION_EVENT
            and binlog_event.event is not None
        ):
            self.mysql_version = binlog_event.event.mysql_version
            self._BinLogStreamReader__post_header_lengths = binlog_event.event.post_header_len
        if binlog_event.event_type == BINLOG.TABLE_MAP_EVENT and binlog_event.event is not None:
            table_id = binlog_event.event.table_id
            table = self.table_map[table_id] = binlog_event.event.get_table()
            if len(self._lean_tables) >= _TABLES_KEPT:
                self._lean_tables.clear()
            data = pkt._data
            end = 1 + binlog_event.event_size - (4 if self._private("use_checksum") else 0)
            self._lean_tables[bytes(data[_BODY:end])] = (table_id, table)
        if binlog_event.event is None or (
            binlog_event.event.__class__ not in self._private("allowed_events")
        ):
            return None
        return binlog_event.event
