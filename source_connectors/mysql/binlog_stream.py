"""The binlog as a stream of committed transactions, read in batches that end on a commit.

mysql-replication's ``BinLogStreamReader`` runs non-blocking: the server sends what the
binlog holds and then an EOF, so a read never waits for new writes (the reader task polls its
control topic between batches). Events are grouped into transactions — begun by a GTID event
or ``BEGIN``, ended by an XID event, ``COMMIT``, an XA PREPARE, or a standalone statement
(DDL) — and a transaction's rows are handed over only once its end has been read. The
*committed position* is the binlog position right after the last whole transaction: every
reconnect starts there, and a transaction cut short by an EOF or a lost connection is read
again from its beginning.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    GtidEvent,
    MariadbBinLogCheckPointEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from coordinator.errors import ConfigError, TaskFailed
from schemas.events import Op, RowEvent, SchemaChange, SourcePosition
from schemas.row_binary import new_row_event, new_source_position
from schemas.table import TableSchema
from source_connectors.mysql.binlog_boundary import TXN_END
from source_connectors.mysql.binlog_lean import LeanGtid, LeanRows, LeanStreamReader, LeanXid
from source_connectors.mysql.binlog_rows import decode_rows, table_plan
from source_connectors.mysql.binlog_schema import SchemaTracker, TableFilter, ddl_tables
from source_connectors.mysql.binlog_server import StreamConnection, StreamLost, stream_error
from source_connectors.mysql.binlog_snapshot import Position, SkipList, row_key
from source_connectors.mysql.binlog_table_map import nullable_flags

log = logging.getLogger("sluice.source.binlog")

_EVENTS = [
    WriteRowsEvent,
    UpdateRowsEvent,
    DeleteRowsEvent,
    TableMapEvent,  # for its null bitmap (the library keeps only the rest, in table_map)
    QueryEvent,
    XidEvent,
    XAPrepareEvent,
    GtidEvent,
    MariadbGtidEvent,
    RotateEvent,
    MariadbGtidListEvent,
    MariadbBinLogCheckPointEvent,
]
_OPS = {WriteRowsEvent: Op.INSERT, UpdateRowsEvent: Op.UPDATE, DeleteRowsEvent: Op.DELETE}


def _images(op: Op, row: Any) -> tuple[Any, Any]:
    """(before, after) of one decoded row: an UPDATE's comes as the pair."""
    if op is Op.UPDATE:
        return row
    return (None, row) if op is Op.INSERT else (row, None)


_TABLE_IDS_KEPT = 4096
_FL_STANDALONE = 1  # MariaDB GTID flag: the group is one statement with no COMMIT (DDL)
# A DML statement logged as text: a session ran with binlog_format=STATEMENT or MIXED.
_DML = re.compile(
    r"\s*(?:INSERT|REPLACE)\s+(?:LOW_PRIORITY\s+|DELAYED\s+|HIGH_PRIORITY\s+|IGNORE\s+)*"
    r"(?:INTO\s+)?(`[^`]+`|\w+)(?:\.(`[^`]+`|\w+))?"
    r"|\s*UPDATE\s+(?:LOW_PRIORITY\s+|IGNORE\s+)*(`[^`]+`|\w+)(?:\.(`[^`]+`|\w+))?"
    r"|\s*DELETE\s+(?:LOW_PRIORITY\s+|QUICK\s+|IGNORE\s+)*FROM\s+(`[^`]+`|\w+)(?:\.(`[^`]+`|\w+))?",
    re.I,
)


@dataclass
class _Transaction:
    events: list[RowEvent] = field(default_factory=list)
    gtid: str = ""
    open: bool = False
    standalone: bool = False
    seq_start: int = 0


@dataclass
class StreamPosition:
    """Where streaming resumes: a file and offset once known, else (start mode ``gtid``) the
    GTID to continue after."""

    file: str | None
    pos: int | None
    gtid: str = ""

    @property
    def at(self) -> Position:
        assert self.file is not None and self.pos is not None
        return self.file, self.pos

    def describe(self) -> str:
        return f"{self.file}:{self.pos}" if self.file else f"GTID {self.gtid}"


class BinlogStream:
    def __init__(
        self,
        *,
        settings: dict[str, Any],
        server_id: int,
        server: str,
        user: str,
        task: str,
        tables: TableFilter,
        tracker: SchemaTracker,
        ops: set[Op],
        position: StreamPosition,
        seq: int,
        skip: SkipList,
        idle_s: float,
        not_before_ms: int | None = None,
    ) -> None:
        self.settings = settings
        self.server_id = server_id
        self.server = server
        self.user = user
        self.task = task
        self.tables = tables
        self.tracker = tracker
        self.ops = ops
        self.position = position
        self.seq = seq
        self.skip = skip
        self.idle_s = idle_s
        self.not_before_ms = not_before_ms
        self.schema_changes: list[SchemaChange] = []
        self._reader: BinLogStreamReader | None = None
        self._file = position.file
        self._txn = _Transaction()
        self._idle_until = 0.0
        # table id -> (the table map entry its TABLE_MAP made, which columns take NULL)
        self._nullable: dict[int, tuple[Any, tuple[bool, ...] | None]] = {}

    # -- connection ---------------------------------------------------------------------------
    def _open(self) -> BinLogStreamReader:
        pos = self.position
        common: dict[str, Any] = {
            "connection_settings": dict(self.settings),
            "server_id": self.server_id,
            "blocking": False,
            "resume_stream": True,
            "only_events": _EVENTS,
            "enable_logging": False,
            "pymysql_wrapper": StreamConnection,
        }
        if self.tables.explicit_only:
            common["only_schemas"] = sorted({db for db, _ in self.tables.names})
            common["only_tables"] = sorted({t for _, t in self.tables.names})
        if pos.file is not None:
            return LeanStreamReader(log_file=pos.file, log_pos=pos.pos, **common)
        return LeanStreamReader(auto_position=pos.gtid, is_mariadb=True, **common)

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
            self._reader = None
        # What was read of an unfinished transaction is read again after a reconnect.
        self.seq = self._txn.seq_start
        self._txn = _Transaction(seq_start=self.seq)
        self._file = self.position.file

    # -- batches ----------------------------------------------------------------------------
    def read_batch(self, max_events: int, max_seconds: float) -> list[RowEvent]:
        """Row events of whole transactions, in commit order. Stops after a commit once
        ``max_events`` or ``max_seconds`` is reached, right after a DDL that produced schema
        changes (so they follow exactly these rows), or at the end of the binlog."""
        if self._reader is None:
            if time.monotonic() < self._idle_until:
                return []
            self._reader = self._open()
            self._txn = _Transaction(seq_start=self.seq)
        out: list[RowEvent] = []
        deadline = time.monotonic() + max_seconds
        try:
            while True:
                event = self._reader.fetchone()
                if event is None:  # caught up: poll again after idle_s
                    self.close()
                    self._idle_until = time.monotonic() + self.idle_s
                    return out
                if self._on_event(event, out) and (
                    self.schema_changes or len(out) >= max_events or time.monotonic() > deadline
                ):
                    return out
        except StreamLost as e:
            # Whole transactions read so far are kept; the rest is read again from them on.
            log.warning(
                "%s: lost the binlog connection to %s at %s (%s); reconnecting",
                self.task,
                self.server,
                self.position.describe(),
                e.args[-1] if e.args else e,
            )
            self.close()
            self._idle_until = time.monotonic() + self.idle_s
            return out
        except pymysql.MySQLError as e:
            self.close()
            raise stream_error(e, self.user, self.server, self.position.describe()) from None

    def _on_event(self, ev: Any, out: list[RowEvent]) -> bool:
        """Take one event; True when it ended a transaction."""
        cls = type(ev)
        if cls is LeanRows:  # the frequent events, read without the library's objects
            self._rows(ev, ev.log_pos - ev.event_size)
            return False
        if cls is LeanGtid:
            self._begin(ev.gtid, standalone=bool(ev.flags & _FL_STANDALONE))
            return False
        if cls is LeanXid:
            self._commit(ev.log_pos, ev.timestamp, out)
            return True
        txn = self._txn
        if cls is TableMapEvent:
            table = ev.get_table()
            if len(self._nullable) >= _TABLE_IDS_KEPT:
                self._nullable.clear()  # mostly ids of tables gone; at worst a NULL check is skipped
            flags = nullable_flags(ev.null_bitmask, len(table.columns))
            self._nullable[ev.table_id] = (table, flags)
            return False
        if isinstance(ev, RotateEvent):
            self._file = ev.next_binlog
            if ev.timestamp and not txn.open and self.position.file is not None:
                # A real rotation: nothing is left in the old file, which may be purged.
                self.position = StreamPosition(ev.next_binlog, ev.position, self.position.gtid)
            return False
        end = ev.packet.log_pos
        start = end - ev.packet.event_size
        if isinstance(ev, MariadbGtidEvent):
            self._begin(ev.gtid, standalone=bool(ev.flags & _FL_STANDALONE))
            return False
        if isinstance(ev, (MariadbGtidListEvent, MariadbBinLogCheckPointEvent)):
            # Written between transactions (a new file's header, binlog checkpoints): an idle
            # server's position moves past them too, so a rotated-away file is not needed.
            pos = self.position
            idle = not txn.open and not txn.standalone
            if idle and pos.file == self._file and pos.pos is not None and end > pos.pos:
                self.position = StreamPosition(self._file, end, pos.gtid)
            return False
        if isinstance(ev, GtidEvent):  # MySQL: BEGIN follows (except for DDL)
            self._begin(ev.gtid, standalone=True)
            return False
        if isinstance(ev, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
            self._rows(ev, start)
            return False
        if isinstance(ev, (XidEvent, XAPrepareEvent)):
            self._commit(end, ev.timestamp, out)
            return True
        if isinstance(ev, QueryEvent):
            return self._query(ev, start, end, out)
        return False

    def _begin(self, gtid: str, standalone: bool) -> None:
        self._txn = _Transaction(gtid=gtid, open=not standalone, standalone=standalone)
        self._txn.seq_start = self.seq

    def _query(self, ev: QueryEvent, start: int, end: int, out: list[RowEvent]) -> bool:
        query = ev.query.strip()
        head = query[:12].upper()
        txn = self._txn
        if head.startswith(("BEGIN", "XA START")):
            txn.open, txn.standalone = True, False
            return False
        if head.startswith("XA END"):
            return False  # the XA PREPARE event ends it
        if txn.open and not head.startswith(TXN_END):
            self._statement_rows(ev, query, start)
            return False  # SAVEPOINT and the like, inside the transaction
        default_db = ev.schema.decode() if isinstance(ev.schema, bytes) else str(ev.schema)
        ddl = ddl_tables(query, default_db)
        if ddl is not None:
            self._ddl(query, *ddl, start, ev.timestamp)
        self._commit(end, ev.timestamp, out)
        return True

    def _statement_rows(self, ev: QueryEvent, query: str, start: int) -> None:
        """Rows changed by a statement logged as text cannot be captured: say so rather than
        lose them."""
        m = _DML.match(query)
        if m is None:
            return
        first, second = next((m.group(i), m.group(i + 1)) for i in (1, 3, 5) if m.group(i))
        default_db = ev.schema.decode() if isinstance(ev.schema, bytes) else str(ev.schema)
        db, table = (first, second) if second else (default_db, first)
        db, table = db.strip("`"), table.strip("`")
        if self.tables(db, table):
            raise ConfigError(
                f"binlogreader: {self.server} logged a change of {db}.{table} as a statement, "
                f"not as rows ({self._file}:{start}); the session that wrote it ran with "
                "binlog_format STATEMENT or MIXED. Set binlog_format=ROW for every session "
                "(SET GLOBAL binlog_format=ROW, and in my.cnf)"
            )

    def _ddl(
        self, query: str, kind: str, tables: list[tuple[str, str]], start: int, ts: int
    ) -> None:
        for i, (db, table) in enumerate(tables):
            if not self.tables(db, table):
                continue
            # RENAME lists old and new names in turn; ALTER … RENAME TO names the old first.
            gone = kind == "DROP" or (
                kind in ("RENAME", "ALTER") and len(tables) > 1 and i % 2 == 0
            )
            held = self.tracker.tables.get((db, table))
            at = (self._file or "", start)
            new_schema = self.tracker.after_ddl(db, table, at, self._txn.gtid, query, gone)
            source = SourcePosition(
                task=self.task, file=self._file, pos=start, gtid=self._txn.gtid, seq=self.seq
            )
            old_schema = held.schema if held else None
            self.schema_changes.append(
                SchemaChange(db, table, query, new_schema, source, ts * 1000, old_schema)
            )
            log.info(
                "%s: DDL on %s.%s at %s:%s: %s", self.task, db, table, self._file, start, query
            )

    def _rows(self, ev: Any, start: int) -> None:
        db, table = ev.schema, ev.table
        op = _OPS[ev.kind if type(ev) is LeanRows else type(ev)]
        if op not in self.ops or not self.tables(db, table):
            return
        name = f"{db}.{table}"
        where = f"{self._file}:{start}"
        if type(ev) is not LeanRows:  # the lean reader frames every rows event it keeps
            raise TaskFailed(
                f"binlogreader: the {op.value} event of {name} at {where} was not framed "
                "for Sluice's row decoder"
            )
        if ev.problem is not None:
            raise TaskFailed(
                f"binlogreader: cannot decode the {op.value} event of {name} at {where}: it "
                f"has {ev.problem}; nothing from this transaction on is captured"
            )
        try:
            at = (self._file or "", start)
            map_table = ev.table_map[ev.table_id]
            mapped = self._nullable.get(ev.table_id)
            nullable = mapped[1] if mapped is not None and mapped[0] is map_table else None
            schema = self.tracker.for_event(db, table, map_table, at, nullable).schema
            plan = table_plan(ev.columns, schema)
            rows = decode_rows(plan, ev.data, ev.start, ev.end, 2 if op is Op.UPDATE else 1)
        except (pymysql.MySQLError, OSError):
            raise
        except Exception as e:  # noqa: BLE001 - anything the decoder trips on
            raise TaskFailed(
                f"binlogreader: cannot decode the {op.value} event of {name} at {where}: "
                f"{type(e).__name__}: {e}"
            ) from e
        ts_ms = ev.timestamp * 1000
        if not self.skip:
            self._events(op, schema, rows, start, ts_ms)
            return
        position = (self._file or "", start)
        txn = self._txn
        for j, row in enumerate(rows):
            before, after = _images(op, row)
            if all(
                self.skip.covers(name, row_key(schema, image), position)
                for image in (before, after)
                if image is not None
            ):
                continue
            self.seq += 1
            source = new_source_position(
                self.task, None, None, self._file, start, txn.gtid, j, self.seq
            )
            txn.events.append(new_row_event(op, schema, before, after, source, ts_ms))

    def _events(self, op: Op, schema: TableSchema, rows: list[Any], start: int, ts_ms: int) -> None:
        """Decoded rows (an UPDATE's as (before, after)) straight to events through the
        positional constructors: a frozen dataclass's ``__init__`` was a fifth of a
        capturing reader's time."""
        task, file, gtid, seq = self.task, self._file, self._txn.gtid, self.seq
        append = self._txn.events.append
        for j, row in enumerate(rows):
            before, after = _images(op, row)
            seq += 1
            source = new_source_position(task, None, None, file, start, gtid, j, seq)
            append(new_row_event(op, schema, before, after, source, ts_ms))
        self.seq = seq

    def _commit(self, end: int, ts: int, out: list[RowEvent]) -> None:
        txn = self._txn
        if self.not_before_ms is not None:
            if ts * 1000 < self.not_before_ms:
                txn.events.clear()  # start mode timestamp: before the start, not captured
                self.seq = txn.seq_start
            else:
                self.not_before_ms = None
        out.extend(txn.events)
        self.position = StreamPosition(self._file, end, txn.gtid or self.position.gtid)
        if self.skip:
            self.skip.prune(self.position.at)
        self._txn = _Transaction(seq_start=self.seq)
