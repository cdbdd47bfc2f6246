"""``mysqlreader`` with ``increColumn``: FlinkX's incremental read and interval polling.

Rows are read in ``increColumn`` order, ``WHERE increColumn > last [AND where]``; the position
committed with each batch is the last row's ``increColumn`` value plus a *tie-break* — the
rest of the primary key — so that rows sharing one value (a TIMESTAMP filled by ``NOW()``)
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
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any

import pymysql

from coordinator.errors import ConfigError
from coordinator.mysql_client import column_by_name, query_one, quote_ident
from schemas.table import Column, TableSchema
from source_connectors.base import SourcePartReader
from source_connectors.mysql.snapshot import (
    INTEGER_TYPES,
    MysqlSnapshotSource,
    literal_percent,
)
from source_connectors.table_parts import key_text

log = logging.getLogger("sluice.polling")

ORDERABLE_TYPES = INTEGER_TYPES | {"decimal", "date", "datetime", "timestamp", "year"}


def location_param(column: Column, text: Any) -> Any:
    """A position value (JSON text) as the query parameter that compares exactly: DECIMAL as
    a ``Decimal`` (compared with a string, MySQL would go through DOUBLE and lose digits)."""
    if text is None:
        return None
    if column.data_type == "decimal":
        return Decimal(str(text))
    if column.data_type in INTEGER_TYPES or column.data_type == "year":
        return int(text)
    return text


def parse_location(column: Column, text: str, where: str) -> Any:
    """``startLocation`` checked against the column's type; a ``ConfigError`` naming
    ``where`` and the format expected otherwise."""
    kind = column.data_type
    try:
        if kind in INTEGER_TYPES or kind == "year":
            return int(text.strip())
        if kind == "decimal":
            value = Decimal(text.strip())
            if not value.is_finite():
                raise ValueError(text)
            return value
        if kind == "date":
            return dt.date.fromisoformat(text.strip()).isoformat()
        return dt.datetime.fromisoformat(text.strip()).isoformat(sep=" ")
    except (ValueError, InvalidOperation):
        expected = {
            "date": "a date 'YYYY-MM-DD'",
            "datetime": "a time 'YYYY-MM-DD hh:mm:ss[.ffffff]'",
            "timestamp": "a time 'YYYY-MM-DD hh:mm:ss[.ffffff]' (UTC)",
            "decimal": "a decimal number",
        }.get(kind, "an integer")
        raise ConfigError(
            f"{where}: {text!r} is not a value of increColumn {column.name!r} "
            f"({column.column_type}); expected {expected}"
        ) from None


class MysqlIncrementalSource(MysqlSnapshotSource):
    """``mysqlreader`` with ``increColumn`` set and ``polling`` off: bounded."""

    supports_resume = True
    bounded = True

    incre_name: str = ""
    """``increColumn`` in the table's own spelling (``check``)."""

    def _check_keys(self, conn: pymysql.connections.Connection) -> None:
        self._check_incre_column(conn)

    def _check_incre_column(self, conn: pymysql.connections.Connection) -> None:
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
            full = self._full_table(conn)
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
        if column.data_type not in ORDERABLE_TYPES:
            raise ConfigError(
                f"{where}: column {name!r} of {self._schema.qualified_name} is "
                f"{column.column_type}; increColumn must be an ascending integer, DECIMAL, "
                "DATE, DATETIME or TIMESTAMP column"
            )
        if self.config.startLocation is not None:
            parse_location(column, self.config.startLocation, f"{self.path}.startLocation")

    @property
    def incre_column(self) -> Column:
        assert self._schema is not None, "check() first"
        return self._schema.column(self.incre_name)

    def tie_break(self) -> tuple[str, ...] | None:
        """Key columns that order rows sharing one ``increColumn`` value; ``()`` when the
        column alone is the key; ``None`` when the table has no key at all."""
        assert self._schema is not None, "check() first"
        key = self._schema.primary_key
        if not key:
            return None
        return tuple(k for k in key if k != self.incre_name)

    def resume_key(self) -> tuple[str, ...]:
        return (self.incre_name, *(self.tie_break() or ()))

    def max_value(self) -> Any:
        """``MAX(increColumn)`` over the rows the job reads (``where`` applied)."""
        conn = self._connect()
        try:
            row = query_one(conn, self.max_sql())
        finally:
            conn.close()
        return row[0] if row else None

    def max_sql(self) -> str:
        col = quote_ident(self.incre_name)
        return f"SELECT MAX({col}) FROM {self._from_clause()}{self._where_clause()}"

    def list_parts(self) -> list[str]:
        """One part (one reader channel). ``useMaxFunc``: the end, fixed at planning, so
        every incarnation of the task reads up to the same value."""
        part: dict[str, Any] = {"i": 0, "n": 1, "incremental": True}
        if self.config.useMaxFunc and self.bounded:
            part["end"] = key_text(self.max_value())
            part["seen_ms"] = int(time.time() * 1000)
            log.info(
                "useMaxFunc: reading %s up to %s = %s (excluded); the next run continues "
                'with "startLocation": "%s"',
                self.table_name,
                self.incre_name,
                part["end"],
                part["end"],
            )
        return [json.dumps(part)]

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        from source_connectors.mysql.polling_reader import IncrementalPartReader

        if self._schema is None:
            self.check()
        return IncrementalPartReader(self, part_id, task, json.loads(part_id), resume_state or {})

    # -- the read query --------------------------------------------------------------------
    def read_query(
        self, last: list[Any] | None, upper: Any, upper_inclusive: bool
    ) -> tuple[str, list[Any]]:
        """Rows after ``last`` (a position: value + tie-break), else after ``startLocation``,
        up to ``upper`` (if not None), in position order."""
        schema = self._schema
        assert schema is not None
        from source_connectors.mysql.snapshot import select_expr

        col = self.incre_column
        c = quote_ident(col.name)
        tie = self.tie_break() or ()
        conds: list[str] = []
        args: list[Any] = []
        if self.config.where:
            conds.append(f"({literal_percent(self.config.where)})")
        if last is not None:
            value = location_param(col, last[0])
            if tie:
                ties = ", ".join(quote_ident(k) for k in tie)
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
        cols = ", ".join(select_expr(x) for x in schema.columns)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        order = ", ".join(quote_ident(k) for k in (col.name, *tie))
        return f"SELECT {cols} FROM {self._from_clause_escaped()}{where} ORDER BY {order}", args

    def position_of(self, row: tuple[Any, ...]) -> list[Any]:
        schema: TableSchema | None = self._schema
        assert schema is not None
        return [key_text(row[schema.column_index[k]]) for k in self.resume_key()]


class MysqlPollingSource(MysqlIncrementalSource):
    """``mysqlreader`` with ``polling: true``: endless, like a binlog reader; ``sluice run``
    stops it on SIGTERM/SIGINT after a checkpoint."""

    bounded = False


def incremental_source_class(config: Any) -> type[MysqlSnapshotSource] | None:
    """The source class for a ``mysqlreader`` config that reads incrementally, else None."""
    if not getattr(config, "increColumn", None):
        return None
    return MysqlPollingSource if config.polling else MysqlIncrementalSource
