"""Start mode ``initial``: a consistent snapshot of the captured tables, then the binlog from
exactly that point — no change lost, none applied twice.

MariaDB gives both halves in one statement: inside ``START TRANSACTION WITH CONSISTENT
SNAPSHOT`` the status variables ``binlog_snapshot_file`` / ``binlog_snapshot_position`` name
the binlog position the snapshot corresponds to (no ``FLUSH TABLES WITH READ LOCK``). The
tables are read in that transaction, each with a streaming cursor ordered by its key, and the
binlog is then read from that position.

Resuming in the middle of the snapshot cannot reopen the old transaction. A new consistent
snapshot at a later position P2 reads the rest (keys after the last one sent); the binlog
still starts at the first position P1, and a :class:`SkipList` drops its events in
[P1, P2) for rows that the P2 snapshot already holds. Keys are compared in Python, so the
guarantee holds when Python orders keys as MySQL does (numbers, dates, binary strings;
case-insensitive text keys may compare differently).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import pymysql

from coordinator.mysql_client import qualified, quote_ident
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import TableSchema
from source_connectors.mysql.snapshot import select_expr
from source_connectors.table_parts import key_text

Position = tuple[Any, ...]
"""A point in the source's log that orders as the log does: MySQL's ``(file, offset)``,
PostgreSQL's ``(lsn,)``."""
ER_TABLE_DEF_CHANGED = 1412


class SkipList:
    """Rows whose snapshot was read at a later binlog position than streaming starts from.

    Per table, a sorted list of ``(after_key, position)``: rows with a key greater than
    ``after_key`` (up to the next entry) were read at ``position``, so binlog events on them
    before that position are already in the snapshot.
    """

    def __init__(self, entries: dict[str, list[tuple[list[Any] | None, Position]]]) -> None:
        self.entries = entries

    def add(self, table: str, after: list[Any] | None, position: Position) -> None:
        self.entries.setdefault(table, []).append((after, position))

    def covers(self, table: str, key: list[Any] | None, position: Position) -> bool:
        """True when the row with ``key`` was read by a snapshot taken after ``position``."""
        spans = self.entries.get(table)
        if not spans or key is None:
            return False
        afters = [(0, []) if a is None else (1, a) for a, _ in spans]
        i = bisect.bisect_left(afters, (1, key)) - 1
        return i >= 0 and position < spans[i][1]

    def prune(self, position: Position) -> None:
        """Forget what streaming has passed: no later event can be covered by it."""
        for table in list(self.entries):
            kept = [(a, p) for a, p in self.entries[table] if p > position]
            if kept:
                self.entries[table] = kept
            else:
                del self.entries[table]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def to_json(self) -> str:
        return json.dumps({t: [[a, list(p)] for a, p in s] for t, s in self.entries.items()})

    @classmethod
    def from_json(cls, text: str | None) -> SkipList:
        data = json.loads(text) if text else {}
        return cls({t: [(a, tuple(p)) for a, p in s] for t, s in data.items()})


def row_key(schema: TableSchema, row: tuple[Any, ...] | None) -> list[Any] | None:
    """A row's key as the JSON-safe values the snapshot stores (``None`` without a key)."""
    if row is None or not schema.primary_key:
        return None
    return [key_text(row[schema.column_index[k]]) for k in schema.primary_key]


class InitialSnapshot:
    """Reads the captured tables in a consistent snapshot, one table after another.

    Its state (in the reader's position, so it survives a restart): ``tables`` to read,
    ``done`` (how many are finished), ``last`` (key of the last row sent of the current one).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        load_schema: Callable[[str, str], TableSchema | None],
        task: str,
        fetch_size: int,
        state: dict[str, str],
    ) -> None:
        self.task = task
        self.fetch_size = fetch_size
        self.load_schema = load_schema
        self.tables: list[str] = json.loads(state["tables"])
        self.done = int(state.get("done", 0))
        self.last: list[Any] | None = json.loads(state["last"]) if state.get("last") else None
        self.conn = connect()
        self.cursor: Any = None
        self.schema: TableSchema | None = None
        self.position = self._begin()

    def _begin(self, attempts: int = 5) -> Position:
        """Open the snapshot and pin the tables' definitions: each table is opened in the
        transaction, so a DDL on it waits until the snapshot is done and the schema read
        from ``information_schema`` is the one the snapshot's rows have. A DDL that slipped
        in between the snapshot and the pinning makes the server refuse the table
        (ER_TABLE_DEF_CHANGED): start again."""
        with self.conn.cursor(pymysql.cursors.Cursor) as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SET SESSION net_write_timeout = 3600")
            for attempt in range(attempts):
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {str(k).lower(): str(v) for k, v in cur.fetchall()}
                try:
                    for name in self.tables[self.done :]:
                        db, _, table = name.partition(".")
                        with contextlib.suppress(pymysql.err.ProgrammingError):  # dropped
                            cur.execute(f"SELECT 1 FROM {qualified(db, table)} LIMIT 0")
                    break
                except pymysql.MySQLError as e:
                    cur.execute("ROLLBACK")
                    if e.args[0] != ER_TABLE_DEF_CHANGED or attempt == attempts - 1:
                        raise
        return status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])

    def mark_resumed(self, skip: SkipList) -> None:
        """This snapshot continues one a restart cut short: what it reads from here on is as
        of ``self.position``, later than where streaming will start."""
        for i in range(self.done, len(self.tables)):
            skip.add(self.tables[i], self.last if i == self.done else None, self.position)

    def _open_table(self) -> None:
        db, _, table = self.tables[self.done].partition(".")
        self.schema = self.load_schema(db, table)
        if self.schema is None:  # dropped since the list was made: nothing to read
            return
        key = self.schema.primary_key
        cols = ", ".join(select_expr(c) for c in self.schema.columns)
        sql = f"SELECT {cols} FROM {qualified(db, table)}"
        args: list[Any] = []
        if self.last is not None:
            marks = ", ".join(["%s"] * len(key))
            sql += f" WHERE ({', '.join(quote_ident(k) for k in key)}) > ({marks})"
            args = list(self.last)
        sql += " ORDER BY " + ", ".join(quote_ident(k) for k in key)
        self.cursor = self.conn.cursor(pymysql.cursors.SSCursor)
        self.cursor.execute(sql, args)

    def next_batch(self, seq: int) -> list[RowEvent] | None:
        """Up to ``fetch_size`` SNAPSHOT events numbered after ``seq``; None when done."""
        while self.done < len(self.tables):
            if self.cursor is None:
                self._open_table()
            rows = self.cursor.fetchmany(self.fetch_size) if self.cursor is not None else []
            if rows:
                return self._events(rows, seq)
            self._close_cursor()
            self.done += 1
            self.last = None
        self.close()
        return None

    def _events(self, rows: Iterable[tuple[Any, ...]], seq: int) -> list[RowEvent]:
        schema = self.schema
        assert schema is not None
        file, pos = self.position
        now = int(time.time() * 1000)
        chunk = self.tables[self.done]
        events = []
        for row in rows:
            seq += 1
            source = SourcePosition(task=self.task, chunk=chunk, file=file, pos=pos, seq=seq)
            events.append(RowEvent(Op.SNAPSHOT, schema, None, row, source, now))
        self.last = row_key(schema, events[-1].after)
        return events

    def state(self) -> dict[str, str]:
        state = {"tables": json.dumps(self.tables), "done": str(self.done)}
        if self.last is not None:
            state["last"] = json.dumps(self.last)
        return state

    def _close_cursor(self) -> None:
        if self.cursor is not None:
            with contextlib.suppress(Exception):
                self.cursor.close()
            self.cursor = None

    def close(self) -> None:
        self._close_cursor()
        with contextlib.suppress(Exception):
            self.conn.close()
