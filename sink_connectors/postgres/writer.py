"""``postgresqlwriter``: rows into a PostgreSQL table, committed with two-phase commit.

Each writer task keeps one transaction open between checkpoints. ``pre_commit`` writes the
task's Kafka offsets into ``_sluice_offsets`` (in the target table's schema) inside it and
runs ``PREPARE TRANSACTION``: from then on the transaction survives the loss of this process
and its connection, and only ``COMMIT PREPARED`` / ``ROLLBACK PREPARED`` (from any session)
decide it. ``recover`` finds this task's prepared transactions in ``pg_prepared_xacts``.

A row the table refuses for its data (SQLSTATE classes 22 and 23: a value out of range, too
long, a NOT NULL or unique violation) is a rejected row: every batch runs under a
savepoint, and a batch that fails that way is applied again row by row, each under its own,
so the rest of the transaction stands.

=========  =========================================  ==========================  =========
writeMode  SNAPSHOT / INSERT                          UPDATE                      DELETE
=========  =========================================  ==========================  =========
insert     ``INSERT``                                 ``UPDATE … WHERE key =      by key
                                                      before``
replace,   ``INSERT … ON CONFLICT (key) DO UPDATE``   delete the old key if it    by key
update                                                changed, then upsert
=========  =========================================  ==========================  =========

A table without a key is matched on its whole before image (``IS NOT DISTINCT FROM``), one
row per event.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg

from coordinator.errors import ConfigError, TaskFailed
from coordinator.jdbc import JdbcUrl
from coordinator.pg_client import (
    connect,
    is_row_error,
    load_table_schema,
    split_table,
    sql_failure,
    unique_keys,
)
from schemas.events import Op, RowEvent, SchemaChange, SourcePosition
from schemas.postgres_types import quote_ident, value_converter
from schemas.table import TableSchema
from sink_connectors.base import (
    Rejected,
    Sink,
    SinkContext,
    SinkWriter,
    TwoPhaseSinkWriter,
    follows_source_ddl,
)
from sink_connectors.mysql.statements import ColumnMapping, map_columns
from sink_connectors.postgres.evolve import (
    Evolution,
    apply_evolution,
    evolve_at_start,
    plan_change,
    plan_create,
)

log = logging.getLogger("sluice.sink.postgres")

OFFSETS_TABLE = "_sluice_offsets"
SAME_NAMES = "*"
"""``table: ["*"]`` (or ``["schema.*"]``): each source table's rows go to the table of the
same name, in that schema (``public`` without one)."""
UNDEFINED_OBJECT = "42704"  # COMMIT PREPARED of a gid that is gone: decided already


class PostgresSink(Sink):
    supports_precommit = True

    def __init__(self, config: Any, context: SinkContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].writer.parameter"
        conn0 = config.connection[0]
        self.url: JdbcUrl = conn0.url
        self.schema_name, self.table_name = split_table(conn0.table[0])
        self.same_names = self.table_name == SAME_NAMES
        self.update_key: list[str] | None = (config.updateKey or {}).get("key")
        self.targets: dict[str, TableSchema] = {}
        """Target tables by name, as the job began (``check``, ``check_input``)."""
        self.inputs: list[TableSchema] = []
        """The source's tables, as the job began (``check_input``)."""
        self.conflict_keys: dict[str, tuple[str, ...]] = {}
        """For replace/update: the unique key ON CONFLICT names, by target (check_input)."""

    def connect(self) -> psycopg.Connection[Any]:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.connection[0].jdbcUrl",
        )

    def not_idempotent(self) -> tuple[str, str] | None:
        mode = self.config.writeMode
        if mode in ("replace", "update"):
            return None
        return (
            f"{self.path}.writeMode",
            f"writeMode is {mode!r}; rows applied again are exact only with replace or update",
        )

    @property
    def batch_rows(self) -> int:
        return int(self.config.batchSize)

    def check(self) -> None:
        conn = self.connect()
        try:
            if self.context.exactly_once:
                with conn.cursor() as cur:
                    cur.execute("SHOW max_prepared_transactions")
                    row = cur.fetchone()
                if row is None or int(row[0]) == 0:
                    raise ConfigError(
                        f"{self.path}.connection[0].jdbcUrl: PostgreSQL at {self.url.host}:"
                        f"{self.url.port} has max_prepared_transactions = 0, so it cannot "
                        "prepare the transactions exactly-once delivery commits in two "
                        "phases; set it above the number of writer channels (postgresql.conf,"
                        ' then restart), or run the job with "delivery": "at-least-once"'
                    )
            if not self.same_names:  # else: by the source's tables, in check_input
                self.targets[self.table_name] = self.load_target(conn, self.table_name)
        finally:
            conn.close()

    def target_name(self, source_table: str) -> str:
        """The target table of a source table's rows."""
        return source_table if self.same_names else self.table_name

    def load_target(self, conn: psycopg.Connection[Any], name: str) -> TableSchema:
        try:
            return load_table_schema(conn, self.schema_name, name)
        except LookupError:
            suffix = ' (table "*": same name as the source table)' if self.same_names else ""
            raise ConfigError(
                f"{self.path}.connection[0].table[0]: table {self.schema_name}.{name} does "
                f"not exist in database {self.url.database!r}{suffix}"
            ) from None

    def mapping(self, source: TableSchema, target: TableSchema) -> ColumnMapping:
        columns = self.config.column_names
        if columns is None and self.config.schemaChange == "ignore":
            columns = [c for c in source.column_names if c in target.column_index] or None
        return map_columns(source, target, columns, self.path, self.update_key)

    def check_input(self, tables: list[TableSchema]) -> None:
        """Fail before any row moves if a source table cannot be mapped onto its target.
        With ``schemaChange: evolve`` a target may lack source columns: a fresh run adds
        them (:meth:`prepare_target`), a resumed one meets the change in the stream."""
        if not self.targets and not self.same_names:
            self.check()
        self.inputs = list(tables)
        conn = self.connect()
        try:
            for source in tables:
                name = self.target_name(source.table)
                target = self.targets.get(name)
                if target is None:
                    try:
                        target = self.targets[name] = self.load_target(conn, name)
                    except ConfigError:
                        if not (self.same_names and self._evolves):
                            raise
                        continue  # created by prepare_target, as a CREATE TABLE would be
                if self._evolves and any(c not in target.column_index for c in source.column_names):
                    continue
                self.conflict_key(conn, source, target)
        finally:
            conn.close()

    @property
    def _evolves(self) -> bool:
        return follows_source_ddl(self.config, self.context)

    def conflict_key(
        self, conn: psycopg.Connection[Any], source: TableSchema, target: TableSchema
    ) -> tuple[str, ...]:
        """For replace/update: the unique key of ``target`` that ``ON CONFLICT`` names, among
        the written columns; ``ConfigError`` when there is none. ``()`` for insert."""
        m = self.mapping(source, target)
        if self.config.writeMode not in ("replace", "update"):
            return ()
        usable = [
            k for k in unique_keys(conn, target.database, target.table)
            if all(c in m.target_columns for c in k)
            and (self.update_key is None or set(k) <= set(self.update_key))
        ]  # fmt: skip
        if not usable:
            raise ConfigError(
                f"{self.path}.writeMode: {self.config.writeMode!r} needs a PRIMARY KEY or "
                f"UNIQUE index on NOT NULL written columns in target table "
                f"{target.qualified_name}, which has none: it would append rows "
                "again on every replay; add a key, or use writeMode 'insert'"
            )
        self.conflict_keys[target.table] = usable[0]
        return usable[0]

    def _run_all(self, statements: list[str], key: str) -> None:
        """``preSql`` / ``postSql`` in one transaction: PostgreSQL's DDL is transactional,
        so a failing statement leaves the target exactly as it was."""
        if not statements:
            return
        conn = self.connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                for i, sql in enumerate(statements):
                    try:
                        cur.execute(sql.replace("%", "%%"), [])
                    except psycopg.Error as e:
                        first = (str(e).strip().splitlines() or [""])[0]
                        raise ConfigError(
                            f"{self.path}.{key}[{i}]: {first}; nothing of {key} was applied"
                        ) from None
        finally:
            conn.close()

    def prepare_target(self) -> None:
        self._run_all(list(self.config.preSql), "preSql")
        if self._evolves:
            # Rows may come from a snapshot, or from a position after the change that added
            # a column: a fresh run starts with targets that take every source column.
            conn = self.connect()
            try:
                for source in self.inputs:
                    name = self.target_name(source.table)
                    if name in self.targets:
                        evolve_at_start(conn, source, self.load_target(conn, name))
                    else:
                        create = SchemaChange(source.database, source.table, "(job start)",
                                              source, SourcePosition("", file="job start"), 0)  # fmt: skip
                        apply_evolution(conn, create, plan_create(create, self.schema_name, name))
                    self.targets[name] = self.load_target(conn, name)
            finally:
                conn.close()

    def finish_target(self) -> None:
        self._run_all(list(self.config.postSql), "postSql")

    def build_writer(self, task_id: str) -> SinkWriter:
        if not self.targets and not self.same_names:
            self.check()
        return PgTwoPhaseWriter(self, task_id)


class _Statements:
    """The SQL of one source table version on the target, and how to bind a row to it."""

    def __init__(
        self,
        sink: PostgresSink,
        source: TableSchema,
        target: TableSchema,
        conflict: tuple[str, ...],
    ) -> None:
        m = sink.mapping(source, target)
        self.m = m
        self.table = f"{quote_ident(target.database)}.{quote_ident(target.table)}"
        self.upsert = sink.config.writeMode in ("replace", "update")
        cols = [quote_ident(c) for c in m.target_columns]
        marks = ", ".join(["%s"] * len(cols))
        self.insert = f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({marks})"
        self.copy: str | None = None
        """The COPY plain inserts go through (insert mode): the bulk path PostgreSQL has."""
        if not self.upsert:
            self.copy = f"COPY {self.table} ({', '.join(cols)}) FROM STDIN"
        if self.upsert:
            non_key = [c for c in m.target_columns if c not in m.key_columns]
            action = (
                "DO UPDATE SET "
                + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in non_key)
                if non_key
                else "DO NOTHING"
            )
            on = ", ".join(quote_ident(c) for c in m.key_columns or conflict)
            self.insert += f" ON CONFLICT ({on}) {action}"
        self.convert = [value_converter(target.column(c).logical) for c in m.target_columns]
        keyed = m.key_columns or m.target_columns
        self.key_convert = [value_converter(target.column(c).logical) for c in keyed]
        self.key_index = m.key_source_index or m.source_index
        same = " AND ".join(f"{quote_ident(c)} IS NOT DISTINCT FROM %s" for c in keyed)
        sets = ", ".join(f"{c} = %s" for c in cols)
        if m.key_columns:
            self.update = f"UPDATE {self.table} SET {sets} WHERE {same}"
            self.delete = f"DELETE FROM {self.table} WHERE {same}"
        else:  # no key: one row of those equal to the before image
            one = f"ctid = (SELECT ctid FROM {self.table} WHERE {same} LIMIT 1)"
            self.update = f"UPDATE {self.table} SET {sets} WHERE {one}"
            self.delete = f"DELETE FROM {self.table} WHERE {one}"

    def values(self, row: tuple[Any, ...]) -> list[Any]:
        out = [row[i] for i in self.m.source_index]
        for j, conv in enumerate(self.convert):
            if conv is not None and out[j] is not None:
                out[j] = conv(out[j])
        return out

    def key(self, row: tuple[Any, ...]) -> list[Any]:
        out = [row[i] for i in self.key_index]
        for j, conv in enumerate(self.key_convert):
            if conv is not None and out[j] is not None:
                out[j] = conv(out[j])
        return out

    def for_event(self, ev: RowEvent) -> Iterator[tuple[str, list[Any]]]:
        """The statements one event becomes, with their parameters."""
        if ev.op in (Op.SNAPSHOT, Op.INSERT):
            assert ev.after is not None
            yield self.insert, self.values(ev.after)
        elif ev.op is Op.DELETE:
            assert ev.before is not None
            yield self.delete, self.key(ev.before)
        else:
            assert ev.before is not None and ev.after is not None
            if not self.upsert:
                yield self.update, self.values(ev.after) + self.key(ev.before)
                return
            if self.key(ev.before) != self.key(ev.after):
                yield self.delete, self.key(ev.before)
            yield self.insert, self.values(ev.after)


class PgTwoPhaseWriter(TwoPhaseSinkWriter):
    def __init__(self, sink: PostgresSink, task: str) -> None:
        self.sink = sink
        self.task = task
        self.exactly_once = sink.context.exactly_once
        self.conn = sink.connect()
        self.targets = dict(sink.targets)
        self.offsets_table = f"{quote_ident(sink.schema_name)}.{OFFSETS_TABLE}"
        with self.conn.cursor() as cur:
            for sql in sink.config.session:
                cur.execute(sql.replace("%", "%%"), [])
        with self.conn.transaction(), self.conn.cursor() as cur:
            # Writer tasks start together: one at a time creates the table.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('sluice._sluice_offsets'))")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.offsets_table} ("
                " job varchar(190) NOT NULL, topic_partition varchar(255) NOT NULL,"
                " next_offset bigint NOT NULL, task varchar(64) NOT NULL,"
                " txn varchar(64) NOT NULL, updated_at timestamptz NOT NULL,"
                " PRIMARY KEY (job, topic_partition))"
            )
        self.statements: dict[tuple[str, int, tuple[str, ...], str], _Statements] = {}
        self.txn: str | None = None
        self.started = False
        self.prepared = False

    def _exec(self, sql: str, args: list[Any] | tuple[Any, ...] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()"
                " AND starts_with(gid, %s) ORDER BY prepared",
                (txn_prefix,),
            )
            gids = [r[0] for r in cur.fetchall()]
        resolved = []
        for gid in gids:
            commit = is_committed(gid)
            self._decide(gid, commit)
            resolved.append((gid, commit))
        return resolved

    def _decide(self, gid: str, commit: bool) -> None:
        verb = "COMMIT PREPARED" if commit else "ROLLBACK PREPARED"
        try:
            self._exec(f"{verb} {_literal(gid)}")
        except psycopg.Error as e:
            if e.sqlstate != UNDEFINED_OBJECT:  # gone: another session decided it
                raise sql_failure(e, f"{self.task}: {verb} {gid}") from None

    def begin(self, txn_id: str) -> None:
        self.txn = txn_id
        self.started = False
        self.prepared = False

    def _start(self) -> None:
        self._exec("BEGIN ISOLATION LEVEL READ COMMITTED")
        self.started = True

    def target(self, name: str, reload: bool = False) -> TableSchema:
        """Target table ``name`` as it is now (loaded once, and again after DDL)."""
        target = None if reload else self.targets.get(name)
        if target is None:
            target = self.targets[name] = self.sink.load_target(self.conn, name)
        return target

    def _for(self, source: TableSchema) -> _Statements:
        name = self.sink.target_name(source.table)
        key = (source.qualified_name, source.version, source.column_names, name)
        s = self.statements.get(key)
        if s is None:
            target = self.target(name)
            conflict = self.sink.conflict_keys.get(name)
            if conflict is None:
                conflict = self.sink.conflict_key(self.conn, source, target)
            s = self.statements[key] = _Statements(self.sink, source, target, conflict)
        return s

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        if not events:
            return []
        if not self.started:
            self._start()
        rejected: list[Rejected] = []
        size = max(1, int(self.sink.config.batchSize))
        for lo in range(0, len(events), size):
            rejected += self._batch(events[lo : lo + size])
        return rejected

    def _batch(self, events: list[RowEvent]) -> list[Rejected]:
        """One savepoint for the batch; on a row error, again row by row."""
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                self._apply(cur, events)
            return []
        except psycopg.Error as e:
            if not is_row_error(e):
                raise self._failure(e, events) from None
        rejected = []
        for ev in events:
            try:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    self._apply(cur, [ev])
            except psycopg.Error as e:
                if not is_row_error(e):
                    raise self._failure(e, [ev]) from None
                first = (str(e).strip().splitlines() or [""])[0]
                rejected.append(Rejected(ev, first, 0))
        return rejected

    def _apply(self, cur: Any, events: list[RowEvent]) -> None:
        """Consecutive statements of the same SQL go to the server together; plain inserts
        as one COPY (a refused row fails the whole COPY, and _batch goes row by row)."""
        run_sql: str | None = None
        run: list[list[Any]] = []
        copy: dict[str, str] = {}
        for ev in events:
            statements = self._for(ev.table)
            if statements.copy is not None:
                copy[statements.insert] = statements.copy
            for sql, args in statements.for_event(ev):
                if sql != run_sql and run:
                    self._run(cur, run_sql, run, copy)
                    run = []
                run_sql = sql
                run.append(args)
        if run:
            self._run(cur, run_sql, run, copy)

    @staticmethod
    def _run(cur: Any, sql: Any, rows: list[list[Any]], copy: dict[str, str]) -> None:
        copy_sql = copy.get(sql)
        if copy_sql is None or len(rows) < 2:
            cur.executemany(sql, rows)
            return
        with cur.copy(copy_sql) as out:
            for row in rows:
                out.write_row(row)

    def _failure(self, e: psycopg.Error, events: list[RowEvent]) -> Exception:
        first, last = events[0].source, events[-1].source
        name = f"{self.sink.schema_name}.{self.sink.target_name(events[0].table.table)}"
        return sql_failure(
            e,
            f"{self.sink.path}: writing to {name} "
            f"(source {first.task} seq {first.seq}..{last.seq})",
        )

    def schema_change_needs_commit(self, change: SchemaChange) -> bool:
        return bool(self._evolution(change).statements)

    def schema_change(self, change: SchemaChange) -> None:
        evolution = self._evolution(change)
        for note in evolution.ignored:
            log.warning("%s: %s", self.task, note)
        if evolution.statements:
            apply_evolution(self.conn, change, evolution)
            self.target(self.sink.target_name(change.table), reload=True)
        self.statements.clear()

    def _evolution(self, change: SchemaChange) -> Evolution:
        """What ``schemaChange`` makes of ``change``, planned against the target as it is
        now (another writer task may have altered it already)."""
        cfg = self.sink.config
        if cfg.schemaChange == "fail":
            raise TaskFailed(
                f"{self.sink.path}.schemaChange: the source ran {change.ddl!r} on "
                f"{change.qualified_name} at {change.source.file}:{change.source.pos}; "
                'schemaChange is "fail". Alter the target yourself, then go on with '
                '"evolve" or "ignore"'
            )
        if cfg.schemaChange == "ignore" or cfg.column_names is not None:
            why = "schemaChange is 'ignore'" if cfg.schemaChange == "ignore" else "column lists"
            return Evolution((), (f"{change.qualified_name}: {change.ddl!r} not applied ({why})",))
        name = self.sink.target_name(change.table)
        try:
            target = self.target(name, reload=True)
        except ConfigError as e:
            if self.sink.same_names and change.new_schema is not None:
                return plan_create(change, self.sink.schema_name, name)  # a new source table
            return Evolution((), (f"{change.qualified_name}: {change.ddl!r} not applied: {e}",))
        return plan_change(change, target)

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:
        if not self.started:
            return
        rows = [(self.sink.context.job, tp, off, self.task, txn_id) for tp, off in offsets.items()]
        with self.conn.cursor() as cur:
            if rows:
                cur.executemany(
                    f"INSERT INTO {self.offsets_table} AS o (job, topic_partition, next_offset,"
                    " task, txn, updated_at) VALUES (%s, %s, %s, %s, %s, now())"
                    " ON CONFLICT (job, topic_partition) DO UPDATE SET"
                    " next_offset = EXCLUDED.next_offset, task = EXCLUDED.task,"
                    " txn = EXCLUDED.txn, updated_at = EXCLUDED.updated_at",
                    rows,
                )
            if self.exactly_once:
                cur.execute(f"PREPARE TRANSACTION {_literal(txn_id)}")
                self.prepared = True
            else:
                cur.execute("COMMIT")
            self.started = False

    def commit(self, txn_id: str) -> None:
        if not self.prepared:
            return
        # Kafka has decided: only COMMIT PREPARED may end it now. If this fails, the
        # transaction stays prepared and the next incarnation's recover() commits it.
        self.prepared = False
        self._decide(txn_id, True)

    def abort(self) -> None:
        try:
            if self.prepared and self.txn is not None:
                self._decide(self.txn, False)
            elif self.started:
                self._exec("ROLLBACK")
        except Exception as e:  # noqa: BLE001 - a lost session rolls back by itself
            log.warning("%s: rollback of %s: %s", self.task, self.txn, e)
        self.started = False
        self.prepared = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def _literal(text: str) -> str:
    """A transaction id as a string literal (PREPARE TRANSACTION takes no parameter)."""
    return "'" + text.replace("'", "''") + "'"
