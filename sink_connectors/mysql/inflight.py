"""One statement executing on the sink's connection while the writer prepares the next.

A writer task decodes a batch, builds its multi-row INSERT, then used to wait for MariaDB to
apply it: a third of its time, with one of the two cores idle on its account. Here the
statement runs in a helper thread (PyMySQL waits for the server's answer without the GIL)
and the task goes on decoding the next batch; it waits for the answer only before it sends
another statement or does anything else on the connection. One statement at most is in
flight, so statements still reach the server one after the other, in order.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pymysql


class InFlight:
    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self.conn = conn
        self._pool: ThreadPoolExecutor | None = None
        self._job: tuple[Future[None], Any] | None = None

    @property
    def busy(self) -> bool:
        return self._job is not None

    def submit(self, sql: str, tag: Any) -> None:
        """Start ``sql``; ``tag`` comes back from :meth:`wait` (what the statement applies)."""
        if self._job is not None:
            raise RuntimeError("a statement is already in flight: wait() first")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sluice-mysql-sink")
        self._job = (self._pool.submit(self._execute, sql), tag)

    def _execute(self, sql: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def wait(self) -> tuple[Any, BaseException | None] | None:
        """(tag, the statement's error or None) of the statement in flight; None if none was."""
        if self._job is None:
            return None
        future, tag = self._job
        self._job = None
        error = future.exception()
        return tag, error

    def close(self) -> None:
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
