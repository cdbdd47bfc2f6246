"""``increColumn``: FlinkX's incremental read and interval polling, for any SQL family.

Rows are read in ``increColumn`` order, ``WHERE increColumn > last [AND where]``; the position
committed with each batch is the last row's ``increColumn`` value plus a *tie-break* — the
rest of the primary key — so that rows sharing one value (a timestamp filled by ``NOW()``)
are neither skipped nor sent twice when a restart falls between them. A table without any
key has no tie-break: its batches then end only where the value changes.

Three shapes, as in FlinkX:

* ``startLocation`` (alone): a bounded read of the rows after that value (``>``);
* ``useMaxFunc``: a bounded read of ``[startLocation, max)``, ``max`` being the column's
  maximum when the run is planned. The rows *at* the maximum are left for the next run,
  which starts there (``>=``): a value still being written is never half-read, so chained
  runs neither lose nor double a row;
* ``polling``: endless; every ``pollingInterval`` ms the reader looks for new rows.

**Safety window.** A row becomes visible when its transaction commits, not when it takes its
value: transaction A takes id 10, B takes 11 and commits first; a poll that sees 11 and moves
past it would skip 10 for ever. Like Kafka Connect JDBC's ``timestamp.delay.interval.ms``, a
value is read only once it is old enough: each poll records ``MAX(increColumn)``, and rows
are read only up to a maximum recorded at least ``pollingSafetyWindow`` ms earlier. Any
transaction that took a lower value and commits within the window is read. (The window is
measured on this reader's clock against observations, not against the column's own values,
so it works for integer columns and is immune to clock and time-zone skew.) ``useMaxFunc``
waits the same window after it took its maximum.

Reading uses one reader channel, as FlinkX does (``splitPk`` is not used); writer channels
still apply the rows in parallel. Guarantees: resumable (exactly-once).

A family's table source mixes :class:`IncrementalQueries` in and says how it quotes a name,
selects a column, names its table and runs a query (:class:`Dialect`); the reader of a part
is :class:`IncrementalPartReader`, the same for every family.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from coordinator.errors import ConfigError
from coordinator.mysql_client import column_by_name
from schemas import types as t
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema
from source_connectors.base import SourcePartReader
from source_connectors.table_parts import key_text

log = logging.getLogger("sluice.polling")

ORDERABLE_KINDS = {t.INT, t.DECIMAL, t.DATE, t.TIMESTAMP, t.TIMESTAMP_TZ}
# An idle reader sleeps at most this long per call, so the runner still sees checkpoint
# triggers and stop requests promptly.
IDLE_SLEEP_S = 0.05


def location_param(column: Column, text: Any) -> Any:
    """A position value (JSON text) as the query parameter that compares exactly: a decimal
    as a ``Decimal`` (compared with a string, MySQL would go through DOUBLE and lose
    digits), an integer as an int."""
    if text is None:
        return None
    kind = column.logical.kind
    if kind == t.DECIMAL:
        return Decimal(str(text))
    if kind == t.INT:
        return int(text)
    return text  # dates and times as their ISO text: both families compare it as the type


def parse_location(column: Column, text: str, where: str) -> Any:
    """``startLocation`` checked against the column's type; a ``ConfigError`` naming
    ``where`` and the format expected otherwise."""
    kind = column.logical.kind
    try:
        if kind == t.INT:
            return int(text.strip())
        if kind == t.DECIMAL:
            value = Decimal(text.strip())
            if not value.is_finite():
                raise ValueError(text)
            return value
        if kind == t.DATE:
            return dt.date.fromisoformat(text.strip()).isoformat()
        return dt.datetime.fromisoformat(text.strip()).isoformat(sep=" ")
    except (ValueError, InvalidOperation):
        expected = {
            t.DATE: "a date 'YYYY-MM-DD'",
            t.TIMESTAMP: "a time 'YYYY-MM-DD hh:mm:ss[.ffffff]'",
            t.TIMESTAMP_TZ: "a time 'YYYY-MM-DD hh:mm:ss[.ffffff]' (UTC)",
            t.DECIMAL: "a decimal number",
        }.get(kind, "an integer")
        raise ConfigError(
            f"{where}: {text!r} is not a value of increColumn {column.name!r} "
            f"({column.column_type}); expected {expected}"
        ) from None


class Dialect(Protocol):
    """What :class:`IncrementalQueries` needs of a family's table source."""

    config: Any
    path: str
    _schema: TableSchema | None

    def quote(self, name: str) -> str: ...

    def select(self, column: Column) -> str: ...

    def from_where(self, conds: list[str]) -> str:
        """`` FROM table WHERE (where) AND conds`` for a query run with parameters (a literal
        ``%`` in user SQL doubled)."""
        ...

    def read_connection(self) -> Any:
        """A connection a part reads with, rows streaming."""
        ...

    def open_cursor(self, conn: Any, sql: str, args: list[Any]) -> Any:
        """Run ``sql``; a cursor to ``fetchmany`` from (errors as the family's SluiceError)."""
        ...

    def close_connection(self, conn: Any) -> None: ...


class IncrementalQueries:
    """The queries and positions of an ``increColumn`` read; mixed into a table source
    that implements :class:`Dialect`."""

    incre_name: str = ""
    """``increColumn`` in the table's own spelling (``check``)."""

    def check_incre_column(self: Any, full_table: Callable[[], TableSchema]) -> None:
        """``increColumn`` is read, of an ascending kind; ``startLocation`` is one of its
        values. ``full_table``: loads the whole table (for a better message when the column
        is not read)."""
        assert self._schema is not None
        name = self.config.increColumn
        where = f"{self.path}.increColumn"
        real = column_by_name(self._schema.column_names, name)
        if real is None:
            if self.config.customSql:
                raise ConfigError(
                    f"{where}: column {name!r} is not a column of customSql's result "
                    f"(columns: {', '.join(self._schema.column_names)})"
                )
            full = full_table()
            if column_by_name(full.column_names, name) is None:
                raise ConfigError(
                    f"{where}: column {name!r} does not exist in table {full.qualified_name} "
                    f"(columns: {', '.join(full.column_names)})"
                )
            raise ConfigError(
                f"{where}: column {name!r} must be read too: add it to {self.path}.column"
            )
        self.incre_name = real
        column = self._schema.column(real)
        if column.logical.kind not in ORDERABLE_KINDS:
            raise ConfigError(
                f"{where}: column {name!r} of {self._schema.qualified_name} is "
                f"{column.column_type}; increColumn must be an ascending integer, DECIMAL, "
                "DATE, DATETIME or TIMESTAMP column"
            )
        if self.config.startLocation is not None:
            parse_location(column, self.config.startLocation, f"{self.path}.startLocation")

    @property
    def incre_column(self: Any) -> Column:
        assert self._schema is not None, "check() first"
        column: Column = self._schema.column(self.incre_name)
        return column

    def tie_break(self: Any) -> tuple[str, ...] | None:
        """Key columns that order rows sharing one ``increColumn`` value; ``()`` when the
        column alone is the key; ``None`` when the table has no key at all."""
        assert self._schema is not None, "check() first"
        key = self._schema.primary_key
        if not key:
            return None
        return tuple(k for k in key if k != self.incre_name)

    def resume_key(self: Any) -> tuple[str, ...]:
        return (self.incre_name, *(self.tie_break() or ()))

    def max_sql(self: Any) -> str:
        """``MAX(increColumn)`` over the rows the job reads (``where`` applied); run with an
        empty parameter list."""
        return f"SELECT MAX({self.quote(self.incre_name)}){self.from_where([])}"

    def max_value(self: Any) -> Any:
        conn = self.read_connection()
        try:
            rows = self.open_cursor(conn, self.max_sql(), []).fetchall()
        finally:
            self.close_connection(conn)
        return rows[0][0] if rows else None

    def list_parts(self: Any) -> list[str]:
        """One part (one reader channel). ``useMaxFunc``: the end, fixed at planning, so
        every incarnation of the task reads up to the same value."""
        part: dict[str, Any] = {"i": 0, "n": 1, "incremental": True}
        if self.config.useMaxFunc and self.bounded:
            part["end"] = key_text(self.max_value())
            part["seen_ms"] = int(time.time() * 1000)
            log.info(
                "useMaxFunc: reading %s up to %s = %s (excluded); the next run continues "
                'with "startLocation": "%s"',
                self._schema.qualified_name if self._schema else "the table",
                self.incre_name,
                part["end"],
                part["end"],
            )
        return [json.dumps(part)]

    def read_query(
        self: Any, last: list[Any] | None, upper: Any, upper_inclusive: bool
    ) -> tuple[str, list[Any]]:
        """Rows after ``last`` (a position: value + tie-break), else after ``startLocation``,
        up to ``upper`` (if not None), in position order."""
        schema = self._schema
        assert schema is not None
        col = self.incre_column
        q = self.quote
        c = q(col.name)
        tie = self.tie_break() or ()
        conds: list[str] = []
        args: list[Any] = []
        if last is not None:
            value = location_param(col, last[0])
            if tie:
                ties = ", ".join(q(k) for k in tie)
                marks = ", ".join(["%s"] * len(tie))
                # The leading `c >= v` keeps the index range scan the OR would hide.
                conds.append(f"{c} >= %s AND ({c} > %s OR ({c} = %s AND ({ties}) > ({marks})))")
                args += [value, value, value]
                args += [
                    location_param(schema.column(k), v) for k, v in zip(tie, last[1:], strict=True)
                ]
            else:
                conds.append(f"{c} > %s")
                args.append(value)
        elif self.config.startLocation is not None:
            conds.append(f"{c} {'>=' if self.config.useMaxFunc else '>'} %s")
            args.append(parse_location(col, self.config.startLocation, "startLocation"))
        if upper is not None:
            conds.append(f"{c} {'<=' if upper_inclusive else '<'} %s")
            args.append(location_param(col, key_text(upper)))
        cols = ", ".join(self.select(x) for x in schema.columns)
        order = ", ".join(q(k) for k in (col.name, *tie))
        return f"SELECT {cols}{self.from_where(conds)} ORDER BY {order}", args

    def build_part(
        self: Any, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        if self._schema is None:
            self.check()
        return IncrementalPartReader(self, part_id, task, json.loads(part_id), resume_state or {})

    def position_of(self: Any, row: tuple[Any, ...]) -> list[Any]:
        schema: TableSchema = self._schema
        return [key_text(row[schema.column_index[k]]) for k in self.resume_key()]


class IncrementalPartReader(SourcePartReader):
    """Reads one incremental part. A *round* is one streaming ``SELECT`` from the position
    to the round's upper bound, drained batch by batch; a bounded part is one round, a
    polling part runs a round at every poll that has a safe upper bound."""

    def __init__(
        self, source: Any, part_id: str, task: str, part: dict[str, Any], state: dict[str, str]
    ) -> None:
        self.source = source
        self.part_id = part_id
        self.task = task
        self.schema: TableSchema = source.table_schema
        self.part = part
        config = source.config
        self.value_idx = self.schema.column_index[source.incre_name]
        self.group_rows = source.tie_break() is None
        self.polling = bool(config.polling)
        self.fetch_size = int(config.fetchSize)
        self.interval_s = config.pollingInterval / 1000.0
        self.window_s = config.pollingSafetyWindow / 1000.0
        self.seq = int(state.get("seq", 0))
        self.last: list[Any] | None = json.loads(state["last"]) if "last" in state else None
        self.cursor: Any = None
        self.pending: tuple[Any, ...] | None = None
        self.started = False  # bounded: the one round was opened
        # Polling: (monotonic time, MAX(increColumn)) recorded at each poll, oldest first,
        # not yet old enough to read up to; and the highest maximum that is.
        self.observations: deque[tuple[float, Any]] = deque()
        self.safe_bound: Any = None
        self.next_observe = 0.0
        if self.polling:
            log.info(
                "%s: polling %s by %s every %d ms (safety window %d ms), after %s",
                task,
                self.schema.qualified_name,
                config.increColumn,
                config.pollingInterval,
                config.pollingSafetyWindow,
                self.last or config.startLocation or "the first row",
            )
        self.conn = source.read_connection()

    # -- the contract ------------------------------------------------------------------------
    def next_batch(self) -> list[RowEvent] | None:
        if self.cursor is not None:
            events = self._fetch()
            if events:
                return events
            self._end_round()
            if not self.polling:
                return None
        if not self.polling:
            return self._bounded_step()
        self._poll_step()
        return self._fetch() if self.cursor is not None else []

    def snapshot(self) -> dict[str, str]:
        state = {"seq": str(self.seq)}
        if self.last is not None:
            state["last"] = json.dumps(self.last)
        return state

    def close(self) -> None:
        self.cursor = None
        self.source.close_connection(self.conn)

    # -- bounded: one round ------------------------------------------------------------------
    def _bounded_step(self) -> list[RowEvent] | None:
        if self.started:
            return None
        if "seen_ms" in self.part:
            # useMaxFunc: the maximum is read only once it is a safety window old, so
            # transactions that took a lower value and commit meanwhile are read too.
            wait = self.part["seen_ms"] / 1000.0 + self.window_s - time.time()
            if wait > 0:
                time.sleep(min(wait, IDLE_SLEEP_S))
                return []
            if self.part.get("end") is None:  # the table was empty when planned
                self.started = True
                return None
        self.started = True
        end = self.part.get("end")
        self._open_round(end, inclusive=False)
        events = self._fetch()
        if not events:
            self._end_round()
            return None
        return events

    # -- polling -----------------------------------------------------------------------------
    def _poll_step(self) -> None:
        """At a poll: record the maximum; once some recorded maximum is a safety window
        old, run a round up to it. Between polls: sleep a little and return."""
        now = time.monotonic()
        next_safe = self.observations[0][0] + self.window_s if self.observations else None
        due = now >= self.next_observe or (next_safe is not None and now >= next_safe)
        if not due:
            wake = min(self.next_observe, next_safe or self.next_observe)
            time.sleep(max(0.0, min(wake - now, IDLE_SLEEP_S)))
            return
        if now >= self.next_observe:
            self.next_observe = now + self.interval_s
            rows = self.source.open_cursor(self.conn, self.source.max_sql(), []).fetchall()
            value = rows[0][0] if rows else None
            if value is not None:
                self.observations.append((now, value))
        while self.observations and self.observations[0][0] + self.window_s <= now:
            _, value = self.observations.popleft()
            if self.safe_bound is None or value > self.safe_bound:
                self.safe_bound = value
        if self.safe_bound is not None:
            # Even with an unchanged bound: a row below it whose transaction committed
            # late (but within the window) is above our position and is read now.
            self._open_round(self.safe_bound, inclusive=True)

    # -- rounds ------------------------------------------------------------------------------
    def _open_round(self, upper: Any, inclusive: bool) -> None:
        sql, args = self.source.read_query(self.last, upper, inclusive)
        self.cursor = self.source.open_cursor(self.conn, sql, args)
        log.debug("%s: reading after %s up to %s", self.task, self.last, upper)

    def _end_round(self) -> None:
        if self.cursor is not None:
            try:
                self.cursor.close()
            except Exception as e:  # noqa: BLE001 - a cursor that cannot close is dropped
                log.debug("%s: closing a round's cursor: %s", self.task, e)
        self.cursor = None

    def _fetch(self) -> list[RowEvent]:
        rows = list(self.cursor.fetchmany(self.fetch_size))
        if self.pending is not None:
            rows.insert(0, self.pending)
            self.pending = None
        if rows and self.group_rows:
            # No key to tell apart rows of one value: a batch (and so a position) ends only
            # where the value changes. The first row of the next value waits in `pending`.
            last_value = rows[-1][self.value_idx]
            while True:
                row = self.cursor.fetchone()
                if row is None:
                    break
                if row[self.value_idx] != last_value:
                    self.pending = row
                    break
                rows.append(row)
        if not rows:
            return []
        now = int(time.time() * 1000)
        events = []
        seq = self.seq
        for row in rows:
            seq += 1
            source = SourcePosition(task=self.task, chunk=self.part_id,
                                    restore_value=str(row[self.value_idx]), seq=seq)  # fmt: skip
            events.append(RowEvent(Op.INSERT, self.schema, None, tuple(row), source, now))
        self.seq = seq
        self.last = self.source.position_of(rows[-1])
        return events
