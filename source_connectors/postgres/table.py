"""``postgresqlreader``: a PostgreSQL table, read in chunks through a server-side cursor.

Each part (one per reader channel with ``splitPk``, as ``mysqlreader`` splits) reads in
one ``REPEATABLE READ`` read-only transaction, ordered by its resume key
(``restoreColumnName`` or ``splitPk``, then the primary key; else the primary key), NULLs
first, so that a part restarted from its last position continues with the next row: none
skipped, none repeated. Values arrive in their neutral forms (:mod:`schemas.postgres_types`).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import psycopg

from coordinator.errors import ConfigError, TaskFailed
from coordinator.jdbc import JdbcUrl
from coordinator.mysql_client import columns_named
from coordinator.pg_client import (
    connect,
    load_table_schema,
    query_schema,
    split_table,
    sql_failure,
    unique_keys,
)
from schemas import types as t
from schemas.events import RowEvent
from schemas.postgres_types import quote_ident, select_expr
from schemas.table import TableSchema
from source_connectors.base import Source, SourceContext, SourcePartReader
from source_connectors.mysql.snapshot import after_key
from source_connectors.resume import require_unique_resume, tells_rows_apart
from source_connectors.table_parts import PartPosition, TableSource, part_condition


def _pg_after_key(key: tuple[str, ...], last: list[Any]) -> tuple[str, list[Any]]:
    return after_key(key, last, quote_ident, "IS NOT DISTINCT FROM")


class PostgresTableSource(TableSource):
    supports_resume = True
    bounded = True

    def __init__(self, config: Any, context: SourceContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].reader.parameter"
        conn0 = config.connection[0]
        self.url: JdbcUrl = conn0.urls[0]
        self.schema_name, self.table_name = split_table(conn0.table[0])

    def connect(self) -> psycopg.Connection[Any]:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.connection[0].jdbcUrl[0]",
        )

    @classmethod
    def for_config(cls, config: Any) -> type[Source]:
        # As mysqlreader: with increColumn an incremental read, endless when polling.
        if not getattr(config, "increColumn", None):
            return cls
        from source_connectors.postgres.polling import PgIncrementalSource, PgPollingSource

        return PgPollingSource if config.polling else PgIncrementalSource

    def check(self) -> None:
        conn = self.connect()
        try:
            if self.config.customSql:
                self._check_custom_sql(conn)
            else:
                self._check_table(conn)
            self._check_read_query(conn)
        finally:
            conn.close()

    def _check_table(self, conn: psycopg.Connection[Any]) -> None:
        full = self._full_table(conn)
        names = self.config.column_names
        if names is None:
            self._schema = full
        else:
            names = columns_named(names, full, self.path)
            key = full.primary_key if all(k in names for k in full.primary_key) else ()
            self._schema = TableSchema(
                full.database, full.table, tuple(full.column(n) for n in names), key
            )
        self._check_keys(conn, full)

    def _check_keys(self, conn: psycopg.Connection[Any], full: TableSchema) -> None:
        """How parts split and resume: ``splitPk``, and a resume key that tells rows apart."""
        if self.config.splitPk:
            self._check_split_pk(full)
        key = self._check_resume_key()
        uniques = unique_keys(conn, self.schema_name, self.table_name)
        self.key_unique = tells_rows_apart(key, full.primary_key, uniques)
        self._require_unique_resume(key, f"{self.schema_name}.{self.table_name}")

    def _check_custom_sql(self, conn: psycopg.Connection[Any]) -> None:
        """``customSql``: its columns from the server's description of the query; a query
        has no keys, so its restoreColumnName or splitPk (taken at its word) is what a part
        resumes by."""
        try:
            schema = query_schema(conn, self.config.customSql, self.table_name)
        except psycopg.OperationalError as e:
            raise sql_failure(e, f"{self.path}.customSql: checking the query") from None
        except psycopg.Error as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise ConfigError(f"{self.path}.customSql: the query fails: {first}") from None
        names = self.config.column_names
        if names is not None:
            names = columns_named(names, schema, self.path)
            schema = TableSchema("", schema.table, tuple(schema.column(n) for n in names), ())
        self._schema = schema
        self._check_query_keys(schema)

    def _check_query_keys(self, schema: TableSchema) -> None:
        if self.config.splitPk:
            self._check_split_pk(schema)
        key = self._check_resume_key()
        self.key_unique = bool(key)  # a query has no keys to check: the user's word
        self._require_unique_resume(key, "(customSql)")

    def _check_resume_key(self) -> tuple[str, ...]:
        assert self._schema is not None
        key = self.resume_key()
        for k in key:
            if k not in self._schema.column_index:
                raise ConfigError(
                    f"{self.path}.column: the resume key column {k!r} must be read too"
                )
        return key

    def _require_unique_resume(self, key: tuple[str, ...], table: str) -> None:
        require_unique_resume(
            f"{self.path}.connection[0].table[0]",
            table,
            key,
            self.key_unique,
            self.context.exactly_once,
        )

    def _full_table(self, conn: psycopg.Connection[Any]) -> TableSchema:
        try:
            table = load_table_schema(conn, self.schema_name, self.table_name)
        except LookupError:
            raise ConfigError(
                f"{self.path}.connection[0].table[0]: table {self.schema_name}."
                f"{self.table_name} does not exist in database {self.url.database!r}"
            ) from None
        unsupported = [c.name for c in table.columns if c.logical.kind == t.UNSUPPORTED]
        if unsupported:
            raise ConfigError(f"{self.path}: columns {unsupported} cannot be read exactly")
        return table

    def _check_read_query(self, conn: psycopg.Connection[Any]) -> None:
        where = f"{self.path}.where" if self.config.where else f"{self.path}.connection[0]"
        try:
            with conn.cursor() as cur:
                cur.execute(self.select_sql() + " LIMIT 0", [])
        except psycopg.OperationalError as e:
            raise sql_failure(e, f"{where}: checking the read query") from None
        except psycopg.Error as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise ConfigError(f"{where}: the read query fails: {first}") from None

    def select_sql(self, conds: list[str] | None = None) -> str:
        """``SELECT`` of the read columns, with ``where`` and ``conds``; run with a
        parameter list (``%`` in ``where`` is doubled for it)."""
        schema = self.table_schema if self._schema is None else self._schema
        cols = ", ".join(select_expr(c) for c in schema.columns)
        return f"SELECT {cols}{self._from_where(conds)}"

    def _from_where(self, conds: list[str] | None = None) -> str:
        if self.config.customSql:
            table = f"({self.config.customSql.replace('%', '%%')}) AS _sluice_custom"
        else:
            table = f"{quote_ident(self.schema_name)}.{quote_ident(self.table_name)}"
        where = [f"({self.config.where.replace('%', '%%')})"] if self.config.where else []
        where += conds or []
        return f" FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")

    def split_bounds(self) -> tuple[Any, Any]:
        split = quote_ident(self.split_pk or "")
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT MIN({split}), MAX({split}){self._from_where()}", [])
                return cur.fetchone() or (None, None)
        finally:
            conn.close()

    def estimate_rows(self) -> int | None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT reltuples::bigint FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                    (self.schema_name, self.table_name),
                )
                row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None
        finally:
            conn.close()

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        return PgPartReader(self, part_id, task, json.loads(part_id), resume_state or {})


class PgPartReader(SourcePartReader):
    def __init__(
        self,
        source: PostgresTableSource,
        part_id: str,
        task: str,
        part: dict[str, Any],
        state: dict[str, str],
    ) -> None:
        self.source, self.part_id, self.task = source, part_id, task
        self.schema = source.table_schema
        self.position = PartPosition(self.schema, source.resume_key(), source.key_unique, state)
        self.fetch_size = int(source.config.fetchSize)
        # Neutral arrays are one-dimensional; PostgreSQL lets any array value have more.
        self.arrays = [i for i, c in enumerate(self.schema.columns) if c.logical.kind == t.ARRAY]
        self.conn = source.connect()
        self.conn.autocommit = False
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        sql, args = self._query(part)
        self.cursor = self.conn.cursor(name=f"sluice_{task}".replace("-", "_"))
        self.cursor.itersize = self.fetch_size
        timeout = source.config.queryTimeOut
        try:
            if timeout:
                with self.conn.cursor() as cur:
                    cur.execute(f"SET LOCAL statement_timeout = {int(timeout) * 1000}")
            self.cursor.execute(sql, args)
        except psycopg.Error as e:
            raise sql_failure(e, f"{source.path}: the read query failed (SQL: {sql})") from None
        self.done = False

    def _query(self, part: dict[str, Any]) -> tuple[str, list[Any]]:
        src = self.source
        split = quote_ident(src.split_pk) if src.split_pk else None
        conds, args = part_condition(part, split, src.split_nullable)
        key, last = self.position.key, self.position.last_key
        if last is not None:
            cond, values = _pg_after_key(key[: len(last)], last)
            conds.append(cond)
            args += values
        order = ", ".join(f"{quote_ident(k)} NULLS FIRST" for k in key)
        return src.select_sql(conds) + (f" ORDER BY {order}" if order else ""), args

    def next_batch(self) -> list[RowEvent] | None:
        if self.done:
            return None
        try:
            rows = self.cursor.fetchmany(self.fetch_size)
        except psycopg.Error as e:
            raise sql_failure(
                e, f"{self.source.path}: reading {self.schema.qualified_name}"
            ) from None
        if not rows:
            self.done = True
            return None
        if self.arrays:
            self._check_arrays(rows)
        return self.position.events(rows, self.task, self.part_id)  # psycopg rows are tuples

    def _check_arrays(self, rows: list[Any]) -> None:
        for row in rows:
            for i in self.arrays:
                value = row[i]
                if value and any(isinstance(v, list) for v in value):
                    name = self.schema.columns[i].name
                    p = self.position
                    key = {k: row[j] for k, j in zip(p.key, p.key_idx, strict=True)}
                    raise TaskFailed(
                        f"{self.source.path}: column {name} of {self.schema.qualified_name} "
                        f"holds a multi-dimensional array in the row {key or row[0]!r}; Sluice "
                        f"carries one-dimensional arrays: read a view that selects "
                        f"{quote_ident(name)}::text instead, or flatten it"
                    )

    def snapshot(self) -> dict[str, str]:
        return self.position.state()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
