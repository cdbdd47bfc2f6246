"""``mysqlwriter``: rows into a MySQL/MariaDB table, committed with XA two-phase commit.

Each writer task keeps one XA transaction open between checkpoints. ``pre_commit`` writes
the task's Kafka offsets into ``_sluice_offsets`` inside that transaction and runs
``XA END`` + ``XA PREPARE``: from then on the transaction survives the loss of this process
and its connection, and only ``XA COMMIT`` / ``XA ROLLBACK`` (from any connection) decide it.
``recover`` finds this task's prepared transactions with ``XA RECOVER``.

Guarantees: exactly-once with the writer runner. Sessions use READ COMMITTED so parallel
writer channels do not deadlock on gap locks, and ``time_zone = '+00:00'`` like the reader.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pymysql
from pymysql.constants import SERVER_STATUS

from coordinator.errors import ConfigError, TaskFailed
from coordinator.jdbc import JdbcUrl, parse_jdbc_url
from coordinator.mysql_client import check_name, column_by_name, connect, qualified, sql_failure
from schemas.events import RowEvent, SchemaChange
from schemas.introspect import load_table_schema
from schemas.table import TableSchema
from sink_connectors.base import (
    Rejected,
    Sink,
    SinkContext,
    SinkWriter,
    TwoPhaseSinkWriter,
    follows_source_ddl,
)
from sink_connectors.mysql.evolve import (
    Evolution,
    apply_evolution,
    evolution_refused,
    evolve_at_start,
    plan_change,
    plan_create,
)
from sink_connectors.mysql.inflight import InFlight
from sink_connectors.mysql.keys import require_idempotent_key
from sink_connectors.mysql.presql import run_statements
from sink_connectors.mysql.statements import (
    StatementBuilder,
    fast_literal,
    map_columns,
    text_forms,
)

log = logging.getLogger("sluice.sink.mysql")

OFFSETS_TABLE = "_sluice_offsets"
# Errors about one row's data: the statement is undone, the transaction goes on, and the row
# goes to the dirty-data topic (FlinkX/DataX "dirty data", limited by setting.errorLimit).
ROW_ERRORS = frozenset(
    {
        1048,  # column cannot be null
        1062,  # duplicate entry
        1264,  # out of range
        1265,  # data truncated
        1292,  # incorrect date/time value
        1366,  # incorrect value for column
        1406,  # data too long
        1452,  # foreign key: parent row missing
        1690,  # value out of range
        3819,  # check constraint (MySQL)
        4025,  # check constraint (MariaDB)
    }
)


def _code(e: pymysql.MySQLError) -> int:
    return e.args[0] if e.args and isinstance(e.args[0], int) else 0


ER_XAER_NOTA = 1397  # unknown XID: already decided
SAME_NAMES = "*"
"""``table: ["*"]``: each source table's rows go to the target table of the same name."""


class MysqlSink(Sink):
    supports_precommit = True

    def __init__(self, config: Any, context: SinkContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].writer.parameter"
        conn0 = config.connection[0]
        self.url: JdbcUrl = parse_jdbc_url(conn0.jdbcUrl)
        self.table_name: str = conn0.table[0]
        self.same_names = self.table_name == SAME_NAMES
        self.inputs: list[TableSchema] = []
        """The source's tables, as the job began (``check_input``)."""
        self.target: TableSchema | None = None
        """The target table, unless ``table`` is ``"*"`` (one target per source table)."""
        self.update_key: list[str] | None = (config.updateKey or {}).get("key")

    def not_idempotent(self) -> tuple[str, str] | None:
        mode = self.config.writeMode
        if mode in ("replace", "update"):
            return None  # an upsert by key: a row applied twice is the row
        return (
            f"{self.path}.writeMode",
            f"writeMode is {mode!r}; rows applied again are exact only with replace or update",
        )

    def connect(self) -> pymysql.connections.Connection:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.connection[0].jdbcUrl",
        )

    def check(self) -> None:
        if self.same_names:
            return  # targets are checked against the source's tables in check_input
        conn = self.connect()
        try:
            self.target = self.load_target(conn, self.table_name)
        finally:
            conn.close()

    def target_name(self, source_table: str) -> str:
        """The target table of a source table's rows."""
        return source_table if self.same_names else self.table_name

    def load_target(self, conn: pymysql.connections.Connection, name: str) -> TableSchema:
        check_name(name, f"{self.path}.connection[0].table[0]")
        try:
            target = load_table_schema(conn, self.url.database, name)
        except LookupError:
            suffix = ' (table "*": same name as the source table)' if self.same_names else ""
            raise ConfigError(
                f"{self.path}.connection[0].table[0]: table "
                f"{self.url.database}.{name} does not exist{suffix}"
            ) from None
        names = self.config.column_names
        if names:
            unknown = [n for n in names if column_by_name(target.column_names, n) is None]
            if unknown:
                raise ConfigError(
                    f"{self.path}.column: {', '.join(map(repr, unknown))} not in target table "
                    f"{target.qualified_name} (columns: {', '.join(target.column_names)})"
                )
        return target

    @property
    def batch_rows(self) -> int:
        return int(self.config.batchSize)  # FlinkX: rows per INSERT statement

    def check_input(self, tables: list[TableSchema]) -> None:
        """Fail before any row moves if a source table cannot be mapped onto its target.

        With ``schemaChange: evolve`` a target may lack source columns: a fresh run adds
        them (:meth:`prepare_target`), a resumed one meets the DDL in the stream."""
        self.inputs = list(tables)
        conn = self.connect()
        try:
            for source in tables:
                target = self.target or self.load_target(conn, self.target_name(source.table))
                if self._evolves and any(c not in target.column_index for c in source.column_names):
                    continue
                mapping = map_columns(
                    source, target, self.config.column_names, self.path, self.update_key
                )
                require_idempotent_key(
                    conn,
                    target,
                    self.config.writeMode,
                    mapping.target_columns,
                    mapping.key_columns if self.update_key else None,
                    self.path,
                )
        finally:
            conn.close()

    @property
    def _evolves(self) -> bool:
        return follows_source_ddl(self.config, self.context)

    def _run_all(self, statements: list[str], key: str) -> None:
        run_statements(self.connect, statements, f"{self.path}.{key}")

    def prepare_target(self) -> None:
        self._run_all(list(self.config.preSql), "preSql")
        if self._evolves:
            # Rows may come from a snapshot, or from a binlog position after the DDL that
            # added a column: a fresh run starts with targets that take every source column.
            conn = self.connect()
            try:
                for source in self.inputs:
                    target = self.load_target(conn, self.target_name(source.table))
                    evolve_at_start(self.connect, source, target)
            finally:
                conn.close()

    def finish_target(self) -> None:
        self._run_all(list(self.config.postSql), "postSql")

    def build_writer(self, task_id: str) -> SinkWriter:
        if self.target is None and not self.same_names:
            self.check()
        return XaMysqlWriter(self, task_id)


class XaMysqlWriter(TwoPhaseSinkWriter):
    def __init__(self, sink: MysqlSink, task: str) -> None:
        self.sink = sink
        self.task = task
        self.targets: dict[str, TableSchema] = {}
        if sink.target is not None:
            self.targets[sink.target.table] = sink.target
        database = sink.url.database
        self.conn = sink.connect()
        self.exactly_once = sink.context.exactly_once
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            for sql in sink.config.session:
                cur.execute(sql)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {qualified(database, OFFSETS_TABLE)} ("
                " job VARCHAR(190) NOT NULL, topic_partition VARCHAR(255) NOT NULL,"
                " next_offset BIGINT NOT NULL, task VARCHAR(64) NOT NULL,"
                " txn VARCHAR(64) NOT NULL, updated_at TIMESTAMP(6) NOT NULL,"
                " PRIMARY KEY (job, topic_partition)) ENGINE=InnoDB"
            )
        self.builders: dict[tuple[str, int, tuple[str, ...]], StatementBuilder] = {}
        self.txn: str | None = None
        self.started = False
        self.prepared = False
        self.lit = fast_literal(self.conn.escape, self._no_backslash_escapes)
        # The last statement of a write() may still run while the task decodes the next
        # batch; whatever else uses the connection waits for it first (_settle).
        self.inflight = InFlight(self.conn)
        self.late: list[Rejected] = []
        """Rows refused by a statement that finished after its write() returned."""

    def _no_backslash_escapes(self) -> bool:
        return bool(self.conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)

    # -- phase helpers --------------------------------------------------------------------
    def _exec(self, sql: str, args: Any = None) -> None:
        self._settle()
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def _settle(self) -> None:
        """Wait for the statement in flight; rows it refused go to ``late``."""
        done = self.inflight.wait()
        if done is None:
            return
        (builder, events), error = done
        if error is None:
            return
        if not isinstance(error, pymysql.MySQLError):
            raise error
        if _code(error) not in ROW_ERRORS:
            raise self._failure(error, builder, events) from None
        # InnoDB undid just this statement: apply its rows one by one and set aside the
        # ones the table refuses.
        with self.conn.cursor() as cur:
            self.late += self._one_by_one(cur, builder, events)

    def flush(self) -> list[Rejected]:
        """Finish the statement in flight; the rows refused since the last write()."""
        self._settle()
        rejected, self.late = self.late, []
        return rejected

    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        resolved = []
        with self.conn.cursor() as cur:
            cur.execute("XA RECOVER")
            rows = cur.fetchall()
        for _fmt, gtrid_len, _bqual_len, data in rows:
            raw = data if isinstance(data, bytes) else str(data).encode()
            gtrid = raw[:gtrid_len].decode()
            if not gtrid.startswith(txn_prefix):
                continue
            commit = is_committed(gtrid)
            self._exec(f"XA {'COMMIT' if commit else 'ROLLBACK'} %s", (gtrid,))
            resolved.append((gtrid, commit))
        return resolved

    def begin(self, txn_id: str) -> None:
        self.txn = txn_id
        self.started = False
        self.prepared = False

    def _start(self) -> None:
        if self.exactly_once:
            self._exec("XA START %s", (self.txn,))
        else:
            self._exec("BEGIN")
        self.started = True

    def _builder(self, source: TableSchema) -> StatementBuilder:
        key = (source.qualified_name, source.version, source.column_names)
        b = self.builders.get(key)
        if b is None:
            self._settle()  # loading the target uses the connection
            cfg = self.sink.config
            target = self.target(self.sink.target_name(source.table))
            columns = cfg.column_names
            if columns is None and cfg.schemaChange == "ignore":
                # The target kept its shape: source columns it lacks are not written.
                columns = [c for c in source.column_names if c in target.column_index]
            mapping = map_columns(source, target, columns, self.sink.path, self.sink.update_key)
            b = StatementBuilder(target, mapping, cfg.writeMode, cfg.batchSize, text_forms(source))
            self.builders[key] = b
        return b

    def schema_change_needs_commit(self, change: SchemaChange) -> bool:
        self._settle()
        return bool(self._evolution(change).statements)

    def schema_change(self, change: SchemaChange) -> None:
        self._settle()
        evolution = self._evolution(change)
        for note in evolution.ignored:
            log.warning("%s: %s", self.task, note)
        if evolution.statements:
            apply_evolution(self.sink.connect, change, evolution)
            self.target(self.sink.target_name(change.table), reload=True)
            self.builders.clear()

    def _evolution(self, change: SchemaChange) -> Evolution:
        """What ``schemaChange`` makes of ``change``, planned against the target as it is
        now (another writer task may have altered it already)."""
        cfg = self.sink.config
        if cfg.schemaChange == "fail":
            raise evolution_refused(change)
        if cfg.schemaChange == "ignore" or cfg.column_names is not None:
            why = "schemaChange is 'ignore'" if cfg.schemaChange == "ignore" else "column lists"
            return Evolution((), (f"{change.qualified_name}: {change.ddl!r} not applied ({why})",))
        name = self.sink.target_name(change.table)
        try:
            target = self.target(name, reload=True)
        except ConfigError as e:
            if self.sink.same_names and change.new_schema is not None:
                return plan_create(change, self.sink.url.database, name)  # a new source table
            return Evolution((), (f"{change.qualified_name}: {change.ddl!r} not applied: {e}",))
        return plan_change(change, target)

    def target(self, name: str, reload: bool = False) -> TableSchema:
        """Target table ``name`` as it is now (loaded once, and again after DDL)."""
        target = None if reload else self.targets.get(name)
        if target is None:
            target = self.targets[name] = self.sink.load_target(self.conn, name)
        return target

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        if not events:
            return []
        if not self.started:
            self._start()
        # Events of one table are consecutive in practice; split on table changes.
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i].table is not events[start].table:
                run = events[start:i]
                builder = self._builder(run[0].table)
                for sql, lo, hi in builder.statements(run, self.lit):
                    self._settle()
                    self.inflight.submit(sql, (builder, run[lo:hi]))
                start = i
        # The last statement is still running: rows it refuses come with the next call.
        rejected, self.late = self.late, []
        return rejected

    def _one_by_one(
        self, cur: Any, builder: StatementBuilder, events: list[RowEvent]
    ) -> list[Rejected]:
        rejected = []
        for ev in events:
            try:
                for sql, _lo, _hi in builder.statements([ev], self.lit):
                    cur.execute(sql)
            except pymysql.MySQLError as e:
                if _code(e) not in ROW_ERRORS:
                    raise self._failure(e, builder, [ev]) from None
                rejected.append(Rejected(ev, str(e.args[-1]), _code(e)))
        return rejected

    def _failure(
        self, e: pymysql.MySQLError, builder: StatementBuilder, events: list[RowEvent]
    ) -> Exception:
        first, last = events[0].source, events[-1].source
        return sql_failure(
            e,
            f"{self.sink.path}: writing to {builder.table} "
            f"(source {first.task} seq {first.seq}..{last.seq})",
        )

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:
        self._settle()
        if self.late:  # the runner calls flush() first; refused rows must not vanish
            raise TaskFailed(
                f"{self.task}: {len(self.late)} rejected rows not collected before pre_commit"
            )
        if not self.started:
            return
        rows = [(self.sink.context.job, tp, off, self.task, txn_id) for tp, off in offsets.items()]
        with self.conn.cursor() as cur:
            if rows:
                cur.executemany(
                    f"INSERT INTO {qualified(self.sink.url.database, OFFSETS_TABLE)} "
                    "(job, topic_partition, next_offset, task, txn, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, NOW(6)) ON DUPLICATE KEY UPDATE "
                    "next_offset=VALUES(next_offset), task=VALUES(task), txn=VALUES(txn), "
                    "updated_at=VALUES(updated_at)",
                    rows,
                )
            if self.exactly_once:
                cur.execute("XA END %s", (txn_id,))
                cur.execute("XA PREPARE %s", (txn_id,))
                self.prepared = True
            else:
                cur.execute("COMMIT")
                self.started = False

    def commit(self, txn_id: str) -> None:
        if not self.prepared:
            return
        # Kafka has decided: from here only XA COMMIT may end this transaction, never
        # abort()'s rollback. If the commit fails, the transaction stays prepared in the
        # server and the next incarnation's recover() commits it.
        self.prepared = False
        self.started = False
        try:
            self._exec("XA COMMIT %s", (txn_id,))
        except pymysql.MySQLError as e:
            if e.args[0] != ER_XAER_NOTA:
                raise

    def abort(self) -> None:
        self.inflight.wait()  # its outcome no longer matters: everything is rolled back
        self.late.clear()
        try:
            if self.prepared:
                self._exec("XA ROLLBACK %s", (self.txn,))
            elif self.started and self.exactly_once:
                self._exec("XA END %s", (self.txn,))
                self._exec("XA ROLLBACK %s", (self.txn,))
            elif self.started:
                self._exec("ROLLBACK")
        except pymysql.MySQLError as e:
            # A lost connection rolls back an active transaction by itself; a prepared one is
            # resolved by recover() on the next start.
            log.warning("%s: rollback of %s: %s", self.task, self.txn, e)
        self.started = False
        self.prepared = False

    def close(self) -> None:
        # Closing a broken connection must not mask why it broke.
        with contextlib.suppress(Exception):
            self.inflight.close()
            self.conn.close()
