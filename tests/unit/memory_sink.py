"""``memorywriter``: a two-phase sink in memory, for driving the writer task without MySQL.

:class:`MemoryDatabase` behaves like an XA database as far as the protocol can tell: a
transaction is active (writes buffered), then prepared (survives the writer's death, and can
still be committed or rolled back by anyone), then committed or rolled back; an active
transaction dies with its connection. It keeps what a test asks afterwards: the rows
visible after commit, every row ever applied (a table without a unique key, so a duplicate
shows), the offsets stored in committed transactions, and a log of what happened to each
transaction id.

The test registers the plugin (``MEMORYWRITER``) and names a database in the job's
``writer.parameter.database``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from coordinator.job.base import PluginConfig
from coordinator.plugins import Plugin
from schemas.events import Op, RowEvent
from sink_connectors.base import Rejected, Sink, SinkWriter, TwoPhaseSinkWriter
from tests.unit.fake_kafka import ProcessKilled

DATABASES: dict[str, MemoryDatabase] = {}
"""Databases by name: the job's ``parameter.database`` picks one."""


class MemoryWriterConfig(PluginConfig):
    database: str


@dataclass
class _Prepared:
    events: list[RowEvent]
    offsets: dict[str, int]


@dataclass
class MemoryDatabase:
    rows: dict[object, tuple[object, ...]] = field(default_factory=dict)
    """Primary key → row, after every committed transaction."""
    applied: list[str] = field(default_factory=list)
    """Event id of every row a committed transaction applied, in order."""
    offsets: dict[str, int] = field(default_factory=dict)
    """``topic:partition`` → next offset, stored by the last committed transaction."""
    prepared: dict[str, _Prepared] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    """``(what, xid)``: prepare, commit, rollback, and recover-commit / recover-rollback."""
    connections: list[MemoryConnection] = field(default_factory=list)

    def connect(self) -> MemoryConnection:
        conn = MemoryConnection(self)
        self.connections.append(conn)
        return conn

    def kill_connections(self) -> None:
        """The writer's process died: so did its connections, and their active transactions."""
        for conn in self.connections:
            conn.alive = False

    def xids(self, what: str) -> list[str]:
        return [x for w, x in self.history if w == what]

    def _commit(self, xid: str) -> None:
        txn = self.prepared.pop(xid)
        for e in txn.events:
            key = e.table.primary_key[0]
            values = e.after if e.after is not None else e.before
            assert values is not None
            pk = values[e.table.column_index[key]]
            if e.op is Op.DELETE:
                self.rows.pop(pk, None)
            else:
                self.rows[pk] = values
            self.applied.append(e.event_id)
        self.offsets.update(txn.offsets)


class MemoryConnection:
    """Dies with the writer's process: then every call raises, and an active transaction is
    gone (a prepared one stays in the database)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db
        self.alive = True

    def check(self) -> MemoryDatabase:
        if not self.alive:
            raise ProcessKilled("the writer's connection died with its process")
        return self.db


class MemoryWriter(TwoPhaseSinkWriter):
    def __init__(self, conn: MemoryConnection) -> None:
        self.conn = conn
        self.txn = ""
        self.events: list[RowEvent] = []
        self.prepared = False

    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        db = self.conn.check()
        resolved = []
        for xid in sorted(db.prepared):
            if not xid.startswith(txn_prefix):
                continue
            commit = is_committed(xid)
            if commit:
                db._commit(xid)
            else:
                del db.prepared[xid]
            db.history.append(("recover-commit" if commit else "recover-rollback", xid))
            resolved.append((xid, commit))
        return resolved

    def begin(self, txn_id: str) -> None:
        self.conn.check()
        self.txn, self.events, self.prepared = txn_id, [], False

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        self.conn.check()
        self.events.extend(events)
        return []

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:
        db = self.conn.check()
        assert txn_id == self.txn, (txn_id, self.txn)
        if not self.events:
            return  # like XA: a transaction that wrote nothing was never started
        db.prepared[txn_id] = _Prepared(list(self.events), dict(offsets))
        db.history.append(("prepare", txn_id))
        self.prepared = True

    def commit(self, txn_id: str) -> None:
        db = self.conn.check()
        if not self.prepared:
            return
        self.prepared = False
        if txn_id in db.prepared:
            db._commit(txn_id)
            db.history.append(("commit", txn_id))

    def abort(self) -> None:
        db = self.conn.check()
        if self.prepared and self.txn in db.prepared:
            del db.prepared[self.txn]
            db.history.append(("rollback", self.txn))
        self.events, self.prepared = [], False


class MemorySink(Sink):
    supports_precommit = True

    def check(self) -> None:
        return None

    def not_idempotent(self) -> tuple[str, str] | None:
        return None

    def build_writer(self, task_id: str) -> SinkWriter:
        return MemoryWriter(DATABASES[self.config.database].connect())


MEMORYWRITER = Plugin(
    name="memorywriter",
    kind="writer",
    config=MemoryWriterConfig,
    factory=MemorySink,
    idempotent=False,
)
