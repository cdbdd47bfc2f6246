"""``postgresqlreader`` with ``increColumn``: FlinkX's incremental read and interval polling,
by the family-neutral :mod:`source_connectors.incremental` (ordering, positions, the safety
window). This module is the PostgreSQL half: names, connections, errors.

Each round reads through a server-side cursor in its own short ``READ COMMITTED`` read-only
transaction, ended when the round is drained: a polling reader holds no transaction (and so
no snapshot that would keep vacuum from old rows) between polls.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import psycopg

from coordinator.pg_client import sql_failure
from schemas.postgres_types import quote_ident, select_expr
from schemas.table import Column, TableSchema
from source_connectors.incremental import IncrementalQueries
from source_connectors.postgres.table import PostgresTableSource

_names = itertools.count()


class _Round:
    """A query's rows through a server-side cursor; closing it ends the transaction."""

    def __init__(self, conn: psycopg.Connection[Any], sql: str, args: list[Any], size: int):
        self.conn = conn
        self.cursor = conn.cursor(name=f"sluice_incremental_{next(_names)}")
        self.cursor.itersize = size
        self.cursor.execute(sql, args)

    def fetchmany(self, n: int) -> list[Any]:
        return self.cursor.fetchmany(n)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        rows = self.cursor.fetchall()
        self.close()
        return rows

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.cursor.close()
        self.conn.rollback()  # read only: ends the transaction and its snapshot


class PgIncrementalSource(IncrementalQueries, PostgresTableSource):
    """``postgresqlreader`` with ``increColumn`` set and ``polling`` off: bounded."""

    supports_resume = True
    bounded = True

    def _check_keys(self, conn: psycopg.Connection[Any], full: TableSchema) -> None:
        self.check_incre_column(lambda: full)

    def _check_query_keys(self, schema: TableSchema) -> None:
        self.check_incre_column(lambda: schema)

    # -- the dialect (source_connectors.incremental.Dialect) --------------------------------
    def quote(self, name: str) -> str:
        return quote_ident(name)

    def select(self, column: Column) -> str:
        return select_expr(column)

    def from_where(self, conds: list[str]) -> str:
        return self._from_where(conds)

    def read_connection(self) -> psycopg.Connection[Any]:
        conn = self.connect()
        conn.autocommit = False
        conn.read_only = True
        if self.config.queryTimeOut:
            with conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(self.config.queryTimeOut) * 1000}")
            conn.commit()
        return conn

    def open_cursor(self, conn: psycopg.Connection[Any], sql: str, args: list[Any]) -> Any:
        try:
            return _Round(conn, sql, args, int(self.config.fetchSize))
        except psycopg.Error as e:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            raise sql_failure(e, f"{self.path}: the read query failed (SQL: {sql})") from None

    def close_connection(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection hides nothing
            conn.close()


class PgPollingSource(PgIncrementalSource):
    """``postgresqlreader`` with ``polling: true``: endless; ``sluice run`` stops it on
    SIGTERM/SIGINT after a checkpoint."""

    bounded = False
