"""``mysqlreader``: a full-table read, split across reader channels on ``splitPk``.

Each part runs one streaming ``SELECT`` (an unbuffered cursor: memory does not grow with the
table) ordered by its *resume key* — ``restoreColumnName``, else ``splitPk``, then the primary
key's columns as a tie-break — so a restarted part continues after the last key it sent and
re-reads nothing. NULLs sort first and the comparison knows it (:func:`after_key`), so a
nullable key resumes exactly too. Parts are
computed once per job run by the coordinator (``list_parts``) and travel in the plan, so every
task agrees on the ranges even if the table changes meanwhile.

Splits, as in FlinkX:
* ``range`` (default): ``[min, max]`` of ``splitPk`` cut into N contiguous ranges;
* ``mod``: channel i reads ``splitPk MOD N = i`` (negative keys included).
Rows whose ``splitPk`` is NULL are in no range and no residue: the first part reads them.

Column names (``column``, ``splitPk``, ``restoreColumnName``) match the table's
case-insensitively, as MySQL does; queries use the table's own spelling.

Guarantees: resumable (exactly-once) whenever a resume key exists; without one (a table with
no primary key, no splitPk, no restoreColumnName) the source cannot resume, and the job must
run at-least-once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.constants import FLAG as FIELD_FLAG

from coordinator.errors import ConfigError
from coordinator.jdbc import JdbcUrl, parse_jdbc_url
from coordinator.mysql_client import (
    TRANSIENT_ERRORS,
    check_name,
    columns_named,
    connect,
    qualified,
    query_one,
    quote_ident,
    sql_failure,
    unique_keys,
)
from schemas.events import RowEvent
from schemas.introspect import load_table_schema
from schemas.table import Column, TableSchema
from source_connectors.base import Source, SourceContext, SourcePartReader
from source_connectors.mysql import fast_rows
from source_connectors.mysql.field_types import PLAIN_TYPE_NAMES
from source_connectors.resume import require_unique_resume, tells_rows_apart
from source_connectors.table_parts import PartPosition, TableSource, part_condition

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}


class MysqlSnapshotSource(TableSource):
    supports_resume = True
    bounded = True

    @classmethod
    def for_config(cls, config: Any) -> type[Source]:
        # One plugin name, two readers (as in FlinkX): with increColumn, mysqlreader reads
        # incrementally (source_connectors.mysql.polling), endless when polling.
        from source_connectors.mysql.polling import incremental_source_class

        return incremental_source_class(config) or cls

    def __init__(self, config: Any, context: SourceContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].reader.parameter"
        conn0 = config.connection[0]
        if len(config.connection) > 1 or len(conn0.jdbcUrl) > 1 or len(conn0.table) > 1:
            raise ConfigError(
                f"{self.path}.connection: one jdbcUrl and one table per job is supported for now"
            )
        self.url: JdbcUrl = parse_jdbc_url(conn0.jdbcUrl[0])
        self.table_name: str = conn0.table[0]

    # -- connections and the table's shape ------------------------------------------------
    def _connect(self, streaming: bool = False) -> pymysql.connections.Connection:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.connection[0].jdbcUrl[0]",
            read_timeout=self.config.queryTimeOut or None,
            streaming=streaming,
        )

    def streaming_connection(self) -> pymysql.connections.Connection:
        """A connection for a part's read: rows stream as they are read, and a slow Kafka
        does not make the server give up on the result."""
        conn = self._connect(streaming=True)
        with conn.cursor() as cur:
            cur.execute("SET SESSION net_write_timeout = 3600")
        return conn

    def check(self) -> None:
        """Everything the read needs, before anything is written: the table and columns,
        the keys, and the read query itself (run with ``LIMIT 0``, so a bad ``where`` is
        one line now, not a task failing over and over)."""
        if not self.config.customSql:
            check_name(self.table_name, f"{self.path}.connection[0].table[0]")
        conn = self._connect()
        try:
            self._schema = self._load_schema(conn)
            self._check_keys(conn)
            self._check_read_query(conn)
        finally:
            conn.close()

    def _check_keys(self, conn: pymysql.connections.Connection) -> None:
        if self.config.splitPk:
            self._check_split_pk(self._full_table(conn))
        assert self._schema is not None
        key = self.resume_key()
        for k in key:
            if k not in self._schema.column_index:
                raise ConfigError(
                    f"{self.path}.column: the resume key column {k!r} must be read too"
                )
        if self.config.customSql:
            # A query has no keys to check: its restore column or splitPk is the user's word.
            self.key_unique = bool(key)
        else:
            full = self._full_table(conn)
            uniques = [cols for cols, not_null in unique_keys(conn, full).values() if not_null]
            self.key_unique = tells_rows_apart(key, full.primary_key, uniques)
        require_unique_resume(
            f"{self.path}.connection[0].table[0]",
            self.table_name if not self.config.customSql else "(customSql)",
            key,
            self.key_unique,
            self.context.exactly_once,
        )

    def _check_read_query(self, conn: pymysql.connections.Connection) -> None:
        assert self._schema is not None
        cols = ", ".join(select_expr(c) for c in self._schema.columns)
        sql = f"SELECT {cols} FROM {self._from_clause()}{self._where_clause()} LIMIT 0"
        where = f"{self.path}.where" if self.config.where else f"{self.path}.connection[0]"
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        except pymysql.MySQLError as e:
            if e.args and e.args[0] in TRANSIENT_ERRORS:
                raise sql_failure(e, f"{where}: checking the read query") from None
            raise ConfigError(f"{where}: the read query fails: {e.args[-1]}") from None

    def _full_table(self, conn: pymysql.connections.Connection) -> TableSchema:
        try:
            return load_table_schema(conn, self.url.database, self.table_name)
        except LookupError:
            raise ConfigError(
                f"{self.path}.connection[0].table[0]: table "
                f"{self.url.database}.{self.table_name} does not exist"
            ) from None

    def _load_schema(self, conn: pymysql.connections.Connection) -> TableSchema:
        """The read columns, typed from ``information_schema`` (``customSql``: from the
        result's own column descriptions via a zero-row temporary table)."""
        if self.config.customSql:
            return self._custom_sql_schema(conn)
        full = self._full_table(conn)
        names = self.config.column_names
        if names is None:
            return full
        names = columns_named(names, full, self.path)
        return TableSchema(
            database=full.database,
            table=full.table,
            columns=tuple(full.column(n) for n in names),
            primary_key=full.primary_key if all(k in names for k in full.primary_key) else (),
            version=full.version,
        )

    def _custom_sql_schema(self, conn: pymysql.connections.Connection) -> TableSchema:
        """Columns of ``customSql`` from the server's result metadata (a zero-row run)."""
        with conn.cursor() as cur:
            try:
                cur.execute(f"SELECT * FROM ({self.config.customSql}) AS _sluice_probe LIMIT 0")
            except pymysql.MySQLError as e:
                raise ConfigError(f"{self.path}.customSql: the query fails: {e.args[-1]}") from None
            fields = cur._result.fields
        columns = tuple(column_from_field(f) for f in fields)
        return TableSchema(self.url.database, self.table_name, columns, (), 1)

    def split_bounds(self) -> tuple[Any, Any]:
        split = quote_ident(self.split_pk or "")
        conn = self._connect()
        try:
            where = f"{self._from_clause()}{self._where_clause()}"
            return query_one(conn, f"SELECT MIN({split}), MAX({split}) FROM {where}")
        finally:
            conn.close()

    def estimate_rows(self) -> int | None:
        conn = self._connect()
        try:
            row = query_one(
                conn,
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                (self.url.database, self.table_name),
            )
            return int(row[0]) if row and row[0] is not None else None
        finally:
            conn.close()

    def _from_clause(self) -> str:
        if self.config.customSql:
            return f"({self.config.customSql}) AS _sluice_custom"
        return qualified(self.url.database, self.table_name)

    def _from_clause_escaped(self) -> str:
        """``_from_clause`` for a query run with parameters (user SQL may contain ``%``)."""
        return literal_percent(self._from_clause())

    def _where_clause(self) -> str:
        return f" WHERE ({self.config.where})" if self.config.where else ""

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        if self._schema is None:
            self.check()
        return SnapshotPartReader(self, part_id, task, json.loads(part_id), resume_state or {})


class MysqlPartReader(SourcePartReader):
    """What a reader of one part of a MySQL table holds: its source, part id, task, table."""

    def __init__(self, source: MysqlSnapshotSource, part_id: str, task: str) -> None:
        self.source = source
        self.part_id = part_id
        self.task = task
        self.schema = source.table_schema


class SnapshotPartReader(MysqlPartReader):
    def __init__(
        self,
        source: MysqlSnapshotSource,
        part_id: str,
        task: str,
        part: dict[str, Any],
        state: dict[str, str],
    ) -> None:
        super().__init__(source, part_id, task)
        self.position = PartPosition(self.schema, source.resume_key(), source.key_unique, state)
        self.fetch_size = source.config.fetchSize
        self.conn = source.streaming_connection()
        self.conn.decoders.update(fast_rows.FAST_DECODERS)
        self.cursor = self.conn.cursor()
        sql, args = self._query(part)
        try:
            self.cursor.execute(sql, args)
        except pymysql.MySQLError as e:
            raise sql_failure(e, f"{source.path}: the read query failed (SQL: {sql})") from None
        fast_rows.install(self.cursor)
        self.done = False

    def _query(self, part: dict[str, Any]) -> tuple[str, list[Any]]:
        src = self.source
        cols = ", ".join(select_expr(c) for c in self.schema.columns)
        conds: list[str] = []
        args: list[Any] = []
        if src.config.where:
            conds.append(f"({literal_percent(src.config.where)})")
        split = quote_ident(src.split_pk) if src.split_pk else None
        more, values = part_condition(part, split, src.split_nullable)
        conds, args = conds + more, args + values
        key, last = self.position.key, self.position.last_key
        if last is not None:
            # A position saved before the tie-break columns existed covers a key prefix.
            cond, values = after_key(key[: len(last)], last)
            conds.append(cond)
            args += values
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        order = (" ORDER BY " + ", ".join(quote_ident(k) for k in key)) if key else ""
        return f"SELECT {cols} FROM {src._from_clause_escaped()}{where}{order}", args

    def next_batch(self) -> list[RowEvent] | None:
        if self.done:
            return None
        rows = self.cursor.fetchmany(self.fetch_size)
        if not rows:
            self.done = True
            return None
        return self.position.events(rows, self.task, self.part_id)

    def snapshot(self) -> dict[str, str]:
        return self.position.state()

    def close(self) -> None:
        # Closing a broken connection must not mask why it broke.
        with contextlib.suppress(Exception):
            self.conn.close()


def after_key(
    key: tuple[str, ...],
    last: list[Any],
    quote: Callable[[str], str] = quote_ident,
    same: str = "<=>",
) -> tuple[str, list[Any]]:
    """The condition "the row comes after ``last``" in ``ORDER BY key`` order, NULLs first
    (MySQL's ascending order; PostgreSQL's with ``NULLS FIRST``), with its parameters.
    ``quote`` quotes a name and ``same`` is the dialect's NULL-safe equality (PostgreSQL:
    ``IS NOT DISTINCT FROM``). A row-value ``(k) > (v)`` would be NULL, so false, for every
    row once ``v`` or ``k`` is NULL: a part resuming among NULLs would skip the rest of its
    rows, and rows with a NULL key after any position."""
    alternatives: list[str] = []
    args: list[Any] = []
    for i, (col, value) in enumerate(zip(key, last, strict=True)):
        equal = [f"{quote(c)} {same} %s" for c in key[:i]]
        q = quote(col)
        later = f"{q} IS NOT NULL" if value is None else f"{q} > %s"
        alternatives.append("(" + " AND ".join([*equal, later]) + ")")
        args += list(last[:i]) + ([] if value is None else [value])
    cond = "(" + " OR ".join(alternatives) + ")"
    if last[0] is not None:
        # The leading bound keeps the index range scan the OR would hide.
        cond = f"{quote(key[0])} >= %s AND {cond}"
        args = [last[0], *args]
    return cond, args


def literal_percent(sql: str) -> str:
    """User SQL (``where``, ``customSql``) inside a query run with parameters: PyMySQL
    formats it with ``%``, so a literal ``%`` (``id % 2 = 0``, ``LIKE 'a%'``) is doubled."""
    return sql.replace("%", "%%")


def select_expr(col: Column) -> str:
    """The column as the reader selects it. A FLOAT travels the text protocol rounded to six
    digits; widened to DOUBLE it arrives exact, and the writer's FLOAT column rounds it back
    to the very same 32-bit value."""
    q = quote_ident(col.name)
    if col.data_type == "float":
        return f"CAST({q} AS DOUBLE) AS {q}"
    return q


_FIELD_TYPES = {
    **PLAIN_TYPE_NAMES,
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.TIMESTAMP: "timestamp",
    FIELD_TYPE.BIT: "bit",
}
_BINARY_CHARSET = 63


def column_from_field(field: Any) -> Column:
    """A :class:`Column` from a result-set field (for ``customSql``, which has no table)."""
    code, flags, length, scale = field.type_code, field.flags, field.length, field.scale
    unsigned = bool(flags & FIELD_FLAG.UNSIGNED)
    binary = field.charsetnr == _BINARY_CHARSET
    data_type = _FIELD_TYPES.get(code)
    precision = None
    if data_type == "decimal":
        precision = length - (1 if scale else 0) - (0 if unsigned else 1)
        column_type = f"decimal({precision},{scale})"
    elif data_type in ("datetime", "timestamp", "time"):
        column_type = f"{data_type}({scale})" if scale else data_type
    elif data_type == "bit":
        column_type = f"bit({length})"
    elif data_type is not None:
        column_type = data_type
    elif code in (FIELD_TYPE.STRING, FIELD_TYPE.VAR_STRING, FIELD_TYPE.VARCHAR):
        data_type = "varbinary" if binary else "varchar"
        column_type = f"{data_type}({length})"
    else:  # the BLOB family: TEXT when it has a character set
        data_type = "longblob" if binary else "longtext"
        column_type = data_type
    if unsigned and data_type in INTEGER_TYPES | {"decimal", "float", "double"}:
        column_type += " unsigned"
    return Column(
        name=field.name,
        data_type=data_type,
        column_type=column_type,
        nullable=not (flags & FIELD_FLAG.NOT_NULL),
        numeric_precision=precision,
        numeric_scale=scale if data_type == "decimal" else None,
        datetime_precision=scale if data_type in ("datetime", "timestamp", "time") else None,
    )
