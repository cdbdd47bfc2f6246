"""``mysqlreader`` with ``increColumn``: FlinkX's incremental read and interval polling, by
the family-neutral :mod:`source_connectors.incremental` (the module doc there says how rows
are ordered, positioned and kept behind the safety window). This module is the MySQL half:
names, connections and errors.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql

from coordinator.mysql_client import quote_ident, sql_failure
from schemas.table import Column
from source_connectors.incremental import IncrementalQueries
from source_connectors.mysql.snapshot import MysqlSnapshotSource, literal_percent, select_expr


class MysqlIncrementalSource(IncrementalQueries, MysqlSnapshotSource):
    """``mysqlreader`` with ``increColumn`` set and ``polling`` off: bounded."""

    supports_resume = True
    bounded = True

    def _check_keys(self, conn: pymysql.connections.Connection) -> None:
        self.check_incre_column(lambda: self._full_table(conn))

    # -- the dialect (source_connectors.incremental.Dialect) --------------------------------
    def quote(self, name: str) -> str:
        return quote_ident(name)

    def select(self, column: Column) -> str:
        return select_expr(column)

    def from_where(self, conds: list[str]) -> str:
        where = [f"({literal_percent(self.config.where)})"] if self.config.where else []
        where += conds
        return f" FROM {self._from_clause_escaped()}" + (
            " WHERE " + " AND ".join(where) if where else ""
        )

    def read_connection(self) -> pymysql.connections.Connection:
        return self.streaming_connection()

    def open_cursor(self, conn: pymysql.connections.Connection, sql: str, args: list[Any]) -> Any:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, args)
        except pymysql.MySQLError as e:
            raise sql_failure(e, f"{self.path}: the read query failed (SQL: {sql})") from None
        return cursor

    def close_connection(self, conn: pymysql.connections.Connection) -> None:
        # A round cut short leaves an unread streaming result, whose finalizer would try to
        # drain it from the closed socket; the server drops it with the connection anyway.
        result = getattr(conn, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        # Closing a broken connection must not mask why it broke.
        with contextlib.suppress(Exception):
            conn.close()


class MysqlPollingSource(MysqlIncrementalSource):
    """``mysqlreader`` with ``polling: true``: endless, like a binlog reader; ``sluice run``
    stops it on SIGTERM/SIGINT after a checkpoint."""

    bounded = False


def incremental_source_class(config: Any) -> type[MysqlSnapshotSource] | None:
    """The source class for a ``mysqlreader`` config that reads incrementally, else None."""
    if not getattr(config, "increColumn", None):
        return None
    return MysqlPollingSource if config.polling else MysqlIncrementalSource
