"""``pgwalreader``: change data capture from PostgreSQL's WAL through logical replication
(``pgoutput``), exactly once.

The WAL is one ordered stream, so the source has one part, read by one reader task. Whole
transactions arrive in commit order; each batch ends at a commit, and the part's position —
the LSN right after the last whole transaction — is committed with the batch in the Kafka
transaction, so a restarted task streams the next transaction: nothing skipped, nothing
repeated.

The slot's confirmed LSN, which lets PostgreSQL recycle WAL, moves only in
:meth:`PgWalPartReader.committed`: after the runner's Kafka commit of the position that
covers it. A crash anywhere leaves the slot at or before the last committed position, so the
WAL a restart needs is still there. (psycopg2 also moves it to a keepalive's WAL end when
every change received has been confirmed: nothing this reader has not committed lies before
that point.)

``start.mode initial``: the tables are read in the snapshot a temporary slot exports —
exactly the database as of that slot's consistent point P, no table lock, no long
transaction on the slot's connection — and the stream starts at P. A restart in the middle
of the snapshot takes a new snapshot at a later point P' for the rest (keys after the last
one sent) and skips the stream's changes before P' to those rows (a
:class:`~source_connectors.mysql.binlog_snapshot.SkipList`), as ``binlogreader`` does.

What the WAL holds depends on the table's ``REPLICA IDENTITY``: with ``FULL`` the before
image of an update or delete is the whole old row; with ``DEFAULT`` it is the primary key's
columns (the others None), and an update that does not change a TOASTed value does not carry
it — the reader then stops with an error naming the table and column rather than write a
row it cannot know.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import select
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Transformer
from psycopg.pq import Format

from coordinator.errors import ConfigError, TaskFailed, TransientError
from coordinator.pg_client import connect, load_table_schema, split_table
from schemas import types as t
from schemas.events import Op, RowEvent, SchemaChange, SourcePosition
from schemas.postgres_types import (
    BASE_AND_ELEMENT,
    ENUM_LABELS,
    catalog_column,
    column_from_catalog,
    quote_ident,
    select_expr,
)
from schemas.table import TableSchema
from source_connectors.base import Source, SourceContext, SourcePartReader
from source_connectors.mysql.binlog_snapshot import SkipList, row_key
from source_connectors.mysql.snapshot import after_key
from source_connectors.postgres import replication as repl
from source_connectors.postgres.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    decode,
    lsn_text,
)
from source_connectors.postgres.wal_config import PgWalReaderConfig

log = logging.getLogger("sluice.source.pgwal")

MAX_BATCH_EVENTS = 4096
MAX_BATCH_SECONDS = 0.1

# A column's type as a Relation message names it (type oid and modifier), described like a
# catalog column: its base type (a domain's), an enum's labels, an array's element, and the
# base type's oid (what the value's text is loaded by).
_TYPE_SQL = f"""
SELECT format_type(%(oid)s::oid, %(typmod)s), bt.typname, bt.typtype,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE %(typmod)s END,
       {ENUM_LABELS},
       et.typname, et.typtype, bt.oid,
       coalesce((SELECT a.attnotnull FROM pg_attribute a
                 WHERE a.attrelid = %(relid)s::oid AND a.attname = %(name)s
                 AND NOT a.attisdropped), false)
FROM pg_type t
{BASE_AND_ELEMENT}
WHERE t.oid = %(oid)s::oid
"""

_MONEY = re.compile(r"[^0-9.\-]")


def _money(text: str) -> Decimal:
    """``money``'s output (``-$1,234.56`` with ``lc_monetary=C``) → the numeric it holds."""
    return Decimal(_MONEY.sub("", text.replace("(", "-")))


def fingerprint(rel: Relation) -> list[list[Any]]:
    """What a Relation message says of its columns, as stored in the position: a change of
    it is a schema change the writers must hear of."""
    return [[c.name, c.type_oid, c.typmod] for c in rel.columns]


def catalog_fingerprint(conn: psycopg.Connection[Any], name: str) -> list[list[Any]]:
    """:func:`fingerprint` of a table as the catalog (or a snapshot of it) has it now."""
    schema, _, table = name.partition(".")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, a.atttypid::int8, a.atttypmod FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            (schema, table),
        )
        return [[r[0], int(r[1]), int(r[2])] for r in cur.fetchall()]


_KEY_SQL = (
    "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)"
    " ON true JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = %s::oid AND i.indisprimary ORDER BY k.pos"
)


def with_partial_images(schema: TableSchema, full_identity: bool) -> TableSchema:
    """The table as this reader's events describe it. Without ``REPLICA IDENTITY FULL`` the
    before image of an update or delete holds only the key, so every other column may be
    null in it: declared NULL-able here, or the events could not be written."""
    if full_identity:
        return schema
    key = set(schema.primary_key)
    columns = tuple(
        c if c.nullable or c.name in key else replace(c, nullable=True) for c in schema.columns
    )
    return replace(schema, columns=columns)


class WalTable:
    """A captured table as the stream currently describes it: its schema, and how each
    column's text becomes its neutral value."""

    def __init__(self, rel: Relation, schema: TableSchema, loads: list[Callable[[bytes], Any]]):
        self.rel = rel
        self.schema = schema
        self.loads = loads
        self.key_idx = [i for i, c in enumerate(rel.columns) if c.key]
        self.full_identity = rel.replica_identity == "f"

    def row(self, values: tuple[object, ...], lsn: int, fill: tuple[object, ...] | None = None
            ) -> tuple[object, ...]:  # fmt: skip
        out: list[object] = []
        for i, (load, v) in enumerate(zip(self.loads, values, strict=True)):
            if v is None:
                out.append(None)
            elif v is UNCHANGED:
                if fill is None or fill[i] is UNCHANGED:
                    col = self.schema.columns[i].name
                    raise TaskFailed(
                        f"pgwalreader: {self.schema.qualified_name} at LSN {lsn_text(lsn)}: "
                        f"an UPDATE left column {col!r}'s stored (TOASTed) value out of the "
                        "WAL, so the new row is not known; run ALTER TABLE "
                        f"{self.schema.qualified_name} REPLICA IDENTITY FULL, then restart "
                        "the job (start.mode initial re-reads the table)"
                    )
                out.append(fill[i])
            else:
                out.append(load(v))  # type: ignore[arg-type]
        return tuple(out)

    def key_image(self, row: tuple[object, ...]) -> tuple[object, ...]:
        """A before image from the key columns only (the others None)."""
        keep = set(self.key_idx)
        return tuple(v if i in keep else None for i, v in enumerate(row))


class PgWalSource(Source):
    supports_resume = True
    bounded = False

    def __init__(self, config: PgWalReaderConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].reader.parameter"
        self.url = config.jdbc
        self.slot = config.slot(context.job)
        self.publication = config.publication(context.job)
        self.names = [split_table(n) for n in config.tableList]
        self._tables: list[TableSchema] = []

    def connect(self) -> psycopg.Connection[Any]:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.url",
        )

    def replication(self) -> Any:
        return repl.replication_connection(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.url",
        )

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> None:
        cfg = self.config
        if self.context.reader_channels > 1:
            raise ConfigError(
                f"{self.path}: the WAL is one ordered stream read by one task; set "
                "setting.speed.readerChannel to 1 (writerChannel can stay higher)"
            )
        if cfg.temporary:
            raise ConfigError(
                f"{self.path}.temporary: a temporary slot is dropped when its connection "
                "ends, so after a crash the job could not go on where it stopped and would "
                "lose the changes in between; set temporary to false (Sluice keeps a "
                "permanent slot: drop it with pg_drop_replication_slot once the job is gone)"
            )
        conn = self.connect()
        try:
            repl.check_server(conn, self.url, cfg.username, self.path)
            published = repl.publication_tables(conn, self.publication)
            if not self.names:
                if published is None:
                    raise ConfigError(
                        f"{self.path}.tableList: empty, and publication "
                        f"{self.publication!r} does not exist to say which tables to capture"
                    )
                self.names = [split_table(n) for n in published]
            self._tables = [self._load(conn, s, n) for s, n in self.names]
            if published is None and not cfg.allowCreateSlot:
                raise ConfigError(
                    f"{self.path}.publicationName: publication {self.publication!r} does not "
                    "exist and allowCreateSlot is false (CREATE PUBLICATION "
                    f"{self.publication} FOR TABLE ...)"
                )
            if published is not None:
                missing = [f"{s}.{n}" for s, n in self.names if f"{s}.{n}" not in published]
                if missing:
                    raise ConfigError(
                        f"{self.path}.tableList: publication {self.publication!r} does not "
                        f"publish {', '.join(missing)} (ALTER PUBLICATION {self.publication} "
                        "ADD TABLE ...)"
                    )
            slot = repl.check_slot(conn, self.slot, self.url.database, self.path)
            if slot is None and not cfg.allowCreateSlot:
                raise ConfigError(
                    f"{self.path}.slotName: replication slot {self.slot!r} does not exist and "
                    "allowCreateSlot is false"
                )
            self._warn_toast(conn)
        finally:
            conn.close()
        if cfg.start_mode == "initial":
            keyless = [t.qualified_name for t in self._tables if not t.primary_key]
            if keyless:
                raise ConfigError(
                    f"{self.path}.start.mode: initial needs a primary key on every captured "
                    f"table to resume its snapshot; {', '.join(keyless)} has none"
                )

    def _load(self, conn: psycopg.Connection[Any], schema: str, table: str) -> TableSchema:
        try:
            return load_table_schema(conn, schema, table)
        except LookupError:
            raise ConfigError(
                f"{self.path}.tableList: table {schema}.{table} does not exist in database "
                f"{self.url.database} on {self.url.host}:{self.url.port}"
            ) from None

    def _warn_toast(self, conn: psycopg.Connection[Any]) -> None:
        """Tables whose updates may leave a TOASTed value out of the WAL (see module doc)."""
        with conn.cursor() as cur:
            for schema, table in self.names:
                cur.execute(
                    "SELECT c.relreplident, bool_or(t.typstorage <> 'p') FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
                    " AND NOT a.attisdropped JOIN pg_type t ON t.oid = a.atttypid"
                    " WHERE n.nspname = %s AND c.relname = %s GROUP BY c.relreplident",
                    (schema, table),
                )
                row = cur.fetchone()
                if row and row[0] != "f":
                    log.warning(
                        "%s.%s has REPLICA IDENTITY %s: before images of its updates and "
                        "deletes hold only the key%s",
                        schema, table, {"d": "DEFAULT", "n": "NOTHING", "i": "USING INDEX"}
                        .get(row[0], row[0]),
                        ", and an update leaving a large (TOASTed) value unchanged will stop "
                        "the reader; ALTER TABLE ... REPLICA IDENTITY FULL avoids both"
                        if row[1] else "",
                    )  # fmt: skip

    def tables(self) -> list[TableSchema]:
        return list(self._tables)

    # -- parts ------------------------------------------------------------------------------
    def list_parts(self) -> list[str]:
        """One part naming where this fresh run starts, decided now: the publication and
        slot are created here when missing (and allowed), before that point is taken."""
        cfg = self.config
        mode = cfg.start_mode
        conn = self.connect()
        try:
            if repl.publication_tables(conn, self.publication) is None:
                repl.create_publication(conn, self.publication, self.names, self.path)
                log.info("created publication %s", self.publication)
            slot = repl.check_slot(conn, self.slot, self.url.database, self.path)
            if slot is None:
                created = repl.create_slot(conn, self.slot, self.path)
                log.info("created replication slot %s at %s", self.slot, lsn_text(created))
                slot = repl.slot_info(conn, self.slot)
                assert slot is not None
            confirmed = slot.confirmed_flush_lsn or 0
            part: dict[str, Any] = {"mode": mode}
            if mode == "lsn":
                lsn = cfg.start_lsn
                assert lsn is not None
                if lsn < confirmed:
                    raise ConfigError(
                        f"{self.path}.lsn: {lsn_text(lsn)} is before {lsn_text(confirmed)}, "
                        f"where slot {self.slot!r} already is; PostgreSQL no longer has the "
                        "changes between them for this slot"
                    )
                part["lsn"] = lsn
            elif mode == "latest":
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_current_wal_lsn()::text")
                    row = cur.fetchone()
                assert row is not None
                part["lsn"] = max(confirmed, repl.parse_lsn(row[0]))
            part["tables"] = [[s, n] for s, n in self.names]
            # The tables as the writers were told of them (check): a change seen later in
            # the snapshot or the stream becomes a schema change.
            part["schemas"] = {f"{s}.{n}": catalog_fingerprint(conn, f"{s}.{n}")
                               for s, n in self.names}  # fmt: skip
        finally:
            conn.close()
        return [json.dumps(part, sort_keys=True)]

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        return PgWalPartReader(self, task, json.loads(part_id), resume_state)


class PgWalPartReader(SourcePartReader):
    """Reads the one WAL part: the initial snapshot first if the run has one, then the
    stream, and says after every batch where it is."""

    def __init__(
        self,
        source: PgWalSource,
        task: str,
        part: dict[str, Any],
        state: dict[str, str] | None,
    ) -> None:
        self.source = source
        self.task = task
        cfg = source.config
        self.ops = {Op(c.upper()) for c in cfg.cat}
        self.captured = {f"{s}.{n}" for s, n in part["tables"]}
        self.meta = source.connect()  # catalog lookups, the loaders' context, lag
        self.loaders = Transformer(self.meta)
        self.relations: dict[int, WalTable] = {}
        self.schemas: dict[str, WalTable] = {}
        self.seq = int(state.get("seq", 0)) if state else 0
        self.skip = SkipList.from_json(state.get("skip") if state else None)
        known = state.get("schemas") if state else None
        self.known: dict[str, list[list[Any]]] = (
            json.loads(known) if known else dict(part.get("schemas", {}))
        )
        self.snapshot_phase: WalSnapshot | None = None
        if state:
            self.lsn = int(state["lsn"])
            if state.get("phase") == "snapshot":
                self.snapshot_phase = WalSnapshot(self, json.loads(state["tables"]),
                                                  int(state["done"]), state.get("last"))  # fmt: skip
                self.snapshot_phase.mark_resumed(self.skip)
        elif part["mode"] == "initial":
            self.snapshot_phase = WalSnapshot(self, sorted(self.captured), 0, None)
            self.lsn = self.snapshot_phase.point
        else:
            self.lsn = int(part["lsn"])
        self.confirmed = 0
        self.conn: Any = None
        self.cursor: Any = None
        self.txn: list[RowEvent] = []
        self.txn_changes: list[SchemaChange] = []
        self.txn_known: dict[str, list[list[Any]]] = {}
        self.begin: Begin | None = None
        # Batches decided but not handed over yet: (events, schema changes before them,
        # the LSN after them, the schemas they come with).
        self.pending: list[tuple[list[RowEvent], list[SchemaChange], int, dict[str, Any]]] = []
        self._schema_changes: list[SchemaChange] = []

    # -- the stream ---------------------------------------------------------------------------
    def _open_stream(self) -> None:
        cfg = self.source.config
        slot = repl.check_slot(self.meta, self.source.slot, self.source.url.database,
                               self.source.path)  # fmt: skip
        if slot is None:
            raise TaskFailed(
                f"{self.source.path}.slotName: replication slot {self.source.slot!r} no longer "
                "exists; the changes since the last checkpoint cannot be read again (start a "
                "new run, start.mode initial)"
            )
        if slot.confirmed_flush_lsn is not None and slot.confirmed_flush_lsn > self.lsn:
            log.info("%s: slot %s is at %s, past this position %s: nothing committed in "
                     "between touched the captured tables", self.task, self.source.slot,
                     lsn_text(slot.confirmed_flush_lsn), lsn_text(self.lsn))  # fmt: skip
        self.conn = self.source.replication()
        self.cursor = repl.start_stream(
            self.conn, self.source.slot, self.source.publication, self.lsn,
            cfg.statusInterval / 1000.0, self.source.path,
        )  # fmt: skip
        if self.confirmed:
            self.cursor.send_feedback(flush_lsn=self.confirmed)

    def _table(self, rel: Relation) -> WalTable:
        """Describe a Relation message's table; a change from what the writers last heard
        of becomes a SchemaChange before the transaction that first uses it."""
        schema_name, table = rel.namespace, rel.name
        name = f"{schema_name}.{table}"
        if name not in self.captured:  # another table of the publication: never sent on
            return WalTable(rel, TableSchema(schema_name, table, (), ()), [])
        columns = []
        with self.meta.cursor() as cur:
            for c in rel.columns:
                cur.execute(_TYPE_SQL, {"oid": c.type_oid, "typmod": c.typmod,
                                        "relid": rel.relid, "name": c.name})  # fmt: skip
                row = cur.fetchone()
                if row is None:
                    raise TaskFailed(f"pgwalreader: {name}.{c.name}: type oid {c.type_oid} "
                                     "no longer exists")  # fmt: skip
                declared, typname, typtype, typmod, labels, element, el_type, base_oid, nn = row
                cat = catalog_column((c.name, declared, nn, typname, typtype, typmod, labels,
                                      element, el_type))  # fmt: skip
                columns.append((column_from_catalog(cat), typname, base_oid))
            # The primary key: with REPLICA IDENTITY FULL the message flags every column.
            cur.execute(_KEY_SQL, (rel.relid,))
            key = tuple(r[0] for r in cur.fetchall()) or tuple(
                c.name for c in rel.columns if c.key and rel.replica_identity != "f"
            )
        loads: list[Callable[[bytes], Any]] = []
        for col, typname, base_oid in columns:
            if col.logical.kind == t.OPAQUE:
                loads.append(lambda b: bytes(b).decode())
            elif typname == "money":
                loads.append(lambda b: _money(bytes(b).decode()))
            else:
                loads.append(self.loaders.get_loader(base_oid, Format.TEXT).load)
        previous = self.schemas.get(name)
        version = previous.schema.version + 1 if previous else 1
        schema = with_partial_images(
            TableSchema(schema_name, table, tuple(c for c, _, _ in columns), key, version),
            rel.replica_identity == "f",
        )
        wal_table = WalTable(rel, schema, loads)
        print_ = fingerprint(rel)
        if name in self.known and self.known[name] != print_:
            self.txn_changes.append(self._change(
                f"ALTER TABLE {name} -- now ({', '.join(c.column_type for c in schema.columns)})",
                schema, previous.schema if previous else None,
            ))  # fmt: skip
        # Remembered (in the position) only with the transaction it comes with: a restart
        # before that must find the change again.
        self.txn_known[name] = print_
        self.schemas[name] = wal_table
        return wal_table

    def _change(self, ddl: str, schema: TableSchema, old: TableSchema | None) -> SchemaChange:
        lsn = self.begin.final_lsn if self.begin else self.lsn
        source = SourcePosition(task=self.task, file=lsn_text(lsn), pos=lsn, seq=self.seq)
        return SchemaChange(schema.database, schema.table, ddl, schema, source,
                            int(time.time() * 1000), old)  # fmt: skip

    def _event(self, op: Op, table: WalTable, before: Any, after: Any) -> None:
        assert self.begin is not None
        schema = table.schema
        key = row_key(schema, after if after is not None else before)
        if self.skip and self.skip.covers(schema.qualified_name, key, (self.begin.final_lsn,)):
            return  # a resumed snapshot read this row after this change
        self.seq += 1
        lsn = self.begin.final_lsn
        self.txn.append(RowEvent(
            op, schema, before, after,
            SourcePosition(task=self.task, file=lsn_text(lsn), pos=lsn,
                           gtid=str(self.begin.xid), seq=self.seq),
            self.begin.commit_ts_ms,
        ))  # fmt: skip

    def _apply(self, payload: bytes, data_start: int) -> int | None:
        """One message; the commit's end LSN when it ended a transaction."""
        msg = decode(payload)
        if isinstance(msg, Begin):
            self.begin, self.txn, self.txn_changes, self.txn_known = msg, [], [], {}
        elif isinstance(msg, Commit):
            self.begin = None
            return msg.end_lsn
        elif isinstance(msg, Relation):
            table = self._table(msg)
            self.relations[msg.relid] = table
        elif isinstance(msg, Insert | Update | Delete):
            table = self.relations[msg.relid]
            if table.schema.qualified_name not in self.captured:
                return None
            if isinstance(msg, Insert):
                if Op.INSERT in self.ops:
                    self._event(Op.INSERT, table, None, table.row(msg.new, data_start))
            elif isinstance(msg, Update):
                if Op.UPDATE in self.ops:
                    old = table.row(msg.old, data_start) if msg.old is not None else None
                    new = table.row(msg.new, data_start, fill=old if not msg.old_is_key else None)
                    before = old if old is not None and not msg.old_is_key else (
                        table.key_image(old if old is not None else new))  # fmt: skip
                    self._event(Op.UPDATE, table, before, new)
            elif Op.DELETE in self.ops:
                old = table.row(msg.old, data_start)
                self._event(Op.DELETE, table, old if not msg.old_is_key else table.key_image(old),
                            None)  # fmt: skip
        elif isinstance(msg, Truncate):
            for relid in msg.relids:
                table = self.relations[relid]
                if table.schema.qualified_name in self.captured:
                    self.txn_changes.append(
                        self._change(f"TRUNCATE TABLE {table.schema.qualified_name}",
                                     table.schema, table.schema))  # fmt: skip
        return None

    def _read_stream(self) -> list[RowEvent]:
        if self.cursor is None:
            self._open_stream()
        cfg = self.source.config
        events: list[RowEvent] = []
        deadline = time.monotonic() + MAX_BATCH_SECONDS
        idle = cfg.heartbeatInterval / 1000.0
        while True:
            try:
                msg = self.cursor.read_message()
            except Exception as e:  # psycopg2 errors: the connection went away
                raise TransientError(f"{self.task}: WAL stream from {self.source.url.host}:"
                                     f"{self.source.url.port} broke: {str(e).strip()}") from None  # fmt: skip
            if msg is None:
                if self.begin is None and (events or time.monotonic() >= deadline):
                    return events
                wait = (
                    1.0
                    if self.begin is not None
                    else max(0.0, min(idle, deadline - time.monotonic()))
                )  # noqa: E501
                select.select([self.conn], [], [], wait)
                continue
            end = self._apply(msg.payload, msg.data_start)
            if end is None:
                continue
            txn, changes, known = self.txn, self.txn_changes, self.txn_known
            self.txn, self.txn_changes, self.txn_known = [], [], {}
            if changes:
                # The change goes before the transaction that first uses the new shape: the
                # batch so far ends here, the change follows alone, then the transaction.
                self.pending.append(([], changes, self.lsn, known))
                self.pending.append((txn, [], end, {}))
                return events if events else self._pop_pending()
            self.known.update(known)
            self.lsn = end
            if self.skip:
                self.skip.prune((end,))
            events.extend(txn)
            if len(events) >= MAX_BATCH_EVENTS:
                return events

    # -- SourcePartReader -------------------------------------------------------------------
    def next_batch(self) -> list[RowEvent] | None:
        for change in self._schema_changes:  # a runner that did not take them
            log.warning("%s: schema change of %s not passed on: %s", self.task,
                        change.qualified_name, change.ddl)  # fmt: skip
        self._schema_changes = []
        if self.snapshot_phase is not None:
            batch = self.snapshot_phase.next_batch()
            if batch is not None:
                return batch
            self.snapshot_phase = None
            return []
        if self.pending:
            return self._pop_pending()
        return self._read_stream()

    def _pop_pending(self) -> list[RowEvent]:
        txn, changes, end, known = self.pending.pop(0)
        self._schema_changes = changes
        self.known.update(known)
        self.lsn = end
        if self.skip:
            self.skip.prune((end,))
        return txn

    def take_schema_changes(self) -> list[SchemaChange]:
        changes, self._schema_changes = self._schema_changes, []
        return changes

    def snapshot(self) -> dict[str, str]:
        state = {"lsn": str(self.lsn), "seq": str(self.seq), "schemas": json.dumps(self.known)}
        if self.snapshot_phase is not None:
            state["phase"] = "snapshot"
            state.update(self.snapshot_phase.state())
        else:
            state["phase"] = "stream"
        if self.skip:
            state["skip"] = self.skip.to_json()
        return state

    def committed(self, state: dict[str, str]) -> None:
        """The runner committed ``state``: the slot may let PostgreSQL recycle the WAL
        before it (never earlier: a crash before this must find it all again)."""
        if state.get("phase") != "stream":
            return  # the snapshot's point stays where streaming will start
        lsn = int(state["lsn"])
        if lsn > self.confirmed:
            self.confirmed = lsn
            if self.cursor is not None:
                with contextlib.suppress(Exception):  # a broken stream fails the next read
                    self.cursor.send_feedback(flush_lsn=lsn, force=True)

    def bytes_behind(self) -> int | None:
        with self.meta.cursor() as cur:
            cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint",
                        (lsn_text(self.lsn),))  # fmt: skip
            row = cur.fetchone()
        return max(0, int(row[0])) if row else None

    def close(self) -> None:
        if self.snapshot_phase is not None:
            self.snapshot_phase.close()
        for c in (self.conn, self.meta):
            with contextlib.suppress(Exception):
                if c is not None:
                    c.close()


def _key_quote(schema: TableSchema) -> Callable[[str], str]:
    """Text keys compare byte-wise (``COLLATE "C"``), as Python compares them: the skip
    list decides "after the last key" in Python."""

    def quote(name: str) -> str:
        col = schema.column(name)
        text = col.logical.kind == t.STRING
        return quote_ident(name) + (' COLLATE "C"' if text else "")

    return quote


class WalSnapshot:
    """The captured tables as of a snapshot point, one after another, each by its primary
    key; state ``tables`` / ``done`` / ``last`` (key of the last row sent)."""

    def __init__(
        self, reader: PgWalPartReader, tables: list[str], done: int, last: str | None
    ) -> None:
        self.reader = reader
        self.tables = tables
        self.done = done
        self.last: list[Any] | None = json.loads(last) if last else None
        src = reader.source
        self.conn = src.connect()
        self.conn.autocommit = False
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        slot = repl.SnapshotSlot(src.url, src.config.username,
                                 src.config.password.get_secret_value(), src.path)  # fmt: skip
        try:
            self.conn.execute(f"SET TRANSACTION SNAPSHOT '{slot.snapshot_name}'")
        finally:
            slot.close()  # the snapshot lives on in this transaction; the slot is not needed
        self.point = slot.point
        self.cursor: Any = None
        self.schema: TableSchema | None = None

    def mark_resumed(self, skip: SkipList) -> None:
        for i in range(self.done, len(self.tables)):
            skip.add(self.tables[i], self.last if i == self.done else None, (self.point,))

    def _open_table(self) -> None:
        schema_name, _, table = self.tables[self.done].partition(".")
        try:
            self.schema = load_table_schema(self.conn, schema_name, table)
        except LookupError:
            self.schema = None  # dropped: nothing to read
            return
        with self.conn.cursor() as cur:
            cur.execute("SELECT relreplident FROM pg_class WHERE oid = %s::regclass",
                        (f"{quote_ident(schema_name)}.{quote_ident(table)}",))  # fmt: skip
            row = cur.fetchone()
        self.schema = with_partial_images(self.schema, row is not None and row[0] == "f")
        name = self.tables[self.done]
        seen = catalog_fingerprint(self.conn, name)
        if self.reader.known.get(name) != seen:
            # Altered since the writers were told of it: they hear of it before its rows.
            self.reader.known[name] = seen
            self.reader._schema_changes.append(self.reader._change(
                f"ALTER TABLE {name} -- as the snapshot reads it", self.schema, None))  # fmt: skip
        key = self.schema.primary_key
        quote = _key_quote(self.schema)
        cols = ", ".join(select_expr(c) for c in self.schema.columns)
        sql = f"SELECT {cols} FROM {quote_ident(schema_name)}.{quote_ident(table)}"
        args: list[Any] = []
        if self.last is not None:
            cond, args = after_key(key, self.last, quote, "IS NOT DISTINCT FROM")
            sql += f" WHERE {cond}"
        sql += " ORDER BY " + ", ".join(quote(k) for k in key)
        self.cursor = self.conn.cursor(name=f"sluice_wal_snapshot_{self.done}")
        self.cursor.itersize = self.reader.source.config.fetchSize
        self.cursor.execute(sql, args)

    def next_batch(self) -> list[RowEvent] | None:
        while self.done < len(self.tables):
            if self.cursor is None and self.schema is None:
                self._open_table()
                if self.reader._schema_changes:
                    return []  # the change first, in the transaction of the rows after it
            rows = (self.cursor.fetchmany(self.reader.source.config.fetchSize)
                    if self.cursor is not None else [])  # fmt: skip
            if rows:
                return self._events(rows)
            if self.cursor is not None:
                self.cursor.close()
            self.cursor, self.schema = None, None
            self.done += 1
            self.last = None
        self.close()
        return None

    def _events(self, rows: list[tuple[Any, ...]]) -> list[RowEvent]:
        schema = self.schema
        assert schema is not None
        now = int(time.time() * 1000)
        chunk = self.tables[self.done]
        reader = self.reader
        events = []
        for row in rows:
            reader.seq += 1
            source = SourcePosition(task=reader.task, chunk=chunk, file=lsn_text(self.point),
                                    pos=self.point, seq=reader.seq)  # fmt: skip
            events.append(RowEvent(Op.SNAPSHOT, schema, None, tuple(row), source, now))
        self.last = row_key(schema, events[-1].after)
        return events

    def state(self) -> dict[str, str]:
        state = {"tables": json.dumps(self.tables), "done": str(self.done)}
        if self.last is not None:
            state["last"] = json.dumps(self.last)
        return state

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
