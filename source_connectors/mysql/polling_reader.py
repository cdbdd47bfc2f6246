"""The part reader of :mod:`source_connectors.mysql.polling`: rows in ``increColumn`` order,
once (bounded) or poll after poll (``polling``), behind the safety window."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import pymysql

from coordinator.mysql_client import sql_failure
from schemas.events import Op, RowEvent, SourcePosition
from source_connectors.mysql.snapshot import MysqlPartReader

if TYPE_CHECKING:
    from source_connectors.mysql.polling import MysqlIncrementalSource

log = logging.getLogger("sluice.polling")

# An idle reader sleeps at most this long per call, so the runner still sees checkpoint
# triggers and stop requests promptly.
IDLE_SLEEP_S = 0.05


class IncrementalPartReader(MysqlPartReader):
    """Reads one incremental part. A *round* is one streaming ``SELECT`` from the position
    to the round's upper bound, drained batch by batch; a bounded part is one round, a
    polling part runs a round at every poll that has a safe upper bound."""

    source: MysqlIncrementalSource

    def __init__(
        self,
        source: MysqlIncrementalSource,
        part_id: str,
        task: str,
        part: dict[str, Any],
        state: dict[str, str],
    ) -> None:
        super().__init__(source, part_id, task)
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
                source.table_name,
                config.increColumn,
                config.pollingInterval,
                config.pollingSafetyWindow,
                self.last or config.startLocation or "the first row",
            )
        self.conn = source.streaming_connection()

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
        # A round cut short leaves an unread streaming result, whose finalizer would try to
        # drain it from the closed socket; the server drops it with the connection anyway.
        result = getattr(self.conn, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        self.cursor = None
        # Closing a broken connection must not mask why it broke.
        with contextlib.suppress(Exception):
            self.conn.close()

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
            value = self._max_value()
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

    def _max_value(self) -> Any:
        sql = self.source.max_sql()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        except pymysql.MySQLError as e:
            raise sql_failure(e, f"{self.source.path}: polling for new rows failed") from None
        return rows[0][0] if rows else None

    # -- rounds ------------------------------------------------------------------------------
    def _open_round(self, upper: Any, inclusive: bool) -> None:
        sql, args = self.source.read_query(self.last, upper, inclusive)
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, args)
        except pymysql.MySQLError as e:
            raise sql_failure(
                e, f"{self.source.path}: the read query failed  (SQL: {sql})"
            ) from None
        log.debug("%s: reading after %s up to %s", self.task, self.last, upper)
        self.cursor = cursor

    def _end_round(self) -> None:
        if self.cursor is not None:
            with contextlib.suppress(Exception):
                self.cursor.close()
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
        schema = self.schema
        assert schema is not None
        events = []
        seq = self.seq
        for row in rows:
            seq += 1
            events.append(
                RowEvent(
                    Op.INSERT,
                    schema,
                    None,
                    row,
                    SourcePosition(
                        task=self.task,
                        chunk=self.part_id,
                        restore_value=str(row[self.value_idx]),
                        seq=seq,
                    ),
                    now,
                )
            )
        self.seq = seq
        self.last = self.source.position_of(rows[-1])
        return events
