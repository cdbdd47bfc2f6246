"""``binlogreader``: change data capture from the MySQL/MariaDB binlog, exactly once.

The binlog is one ordered stream, so the source has one part, read by one reader task. Each
batch ends on a source-transaction boundary, and the part's position — binlog file and
offset right after the last whole transaction, that transaction's GTID, the sequence number
of the last event — is committed with the batch, so a restarted task resumes with the next
transaction: nothing skipped, nothing repeated.

Where a fresh run starts (``start``) is decided once per run, in :meth:`list_parts`, and
travels in the part id: a task that restarts before its first commit starts from the same
place, not from whatever "latest" means by then. Mode ``initial`` first reads a consistent
snapshot of the tables (:mod:`.binlog_snapshot`) and says in its position whether that phase
is done.

Guarantees: exactly once for tables with a primary key (or a unique NOT NULL key), with the
server at ``binlog_format=ROW``, ``binlog_row_image=FULL``, ``binlog_row_metadata=FULL``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pymysql.connections import Connection

from coordinator.errors import ConfigError
from coordinator.mysql_client import connect
from schemas.events import Op, RowEvent, SchemaChange
from schemas.introspect import TableNotFound, load_table_schema
from schemas.table import TableSchema
from source_connectors.base import Source, SourceContext, SourcePartReader, StateStores
from source_connectors.mysql import binlog_server as server
from source_connectors.mysql.binlog_config import BinlogReaderConfig
from source_connectors.mysql.binlog_history import SchemaHistory
from source_connectors.mysql.binlog_schema import SchemaTracker, TableFilter
from source_connectors.mysql.binlog_snapshot import InitialSnapshot, SkipList
from source_connectors.mysql.binlog_start import first_file_at
from source_connectors.mysql.binlog_stream import BinlogStream, StreamPosition

log = logging.getLogger("sluice.source.binlog")

MAX_BATCH_EVENTS = 4096
MAX_BATCH_SECONDS = 0.1


class BinlogSource(Source):
    supports_resume = True
    bounded = False

    def __init__(self, config: BinlogReaderConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.path = "job.content[0].reader.parameter"
        self.url = config.url
        self.server = server.server_name(self.url)
        self.filter = TableFilter(
            config.tables, self.url.database, config.tableRegex, config.excludeTable
        )
        self.server_id = config.server_id(context.job)
        self._tables: list[TableSchema] = []

    def connect(self) -> Connection:
        return connect(
            self.url,
            self.config.username,
            self.config.password.get_secret_value(),
            where=f"{self.path}.jdbcUrl",
        )

    @property
    def stream_settings(self) -> dict[str, Any]:
        cfg = self.config
        return server.stream_settings(self.url, cfg.username, cfg.password.get_secret_value())

    # -- checks -------------------------------------------------------------------------------
    def check(self) -> None:
        cfg = self.config
        if self.context.reader_channels > 1:
            raise ConfigError(
                f"{self.path}: a binlog is one ordered stream read by one task; set "
                "setting.speed.readerChannel to 1 (writerChannel can stay higher)"
            )
        conn = self.connect()
        try:
            server.check_settings(conn, self.url)
            self._tables = self._load_tables(conn)
        finally:
            conn.close()
        if cfg.start.effective_mode == "initial":
            keyless = [t.qualified_name for t in self._tables if not t.primary_key]
            if keyless:
                raise ConfigError(
                    f"{self.path}.start.mode: initial needs a primary key (or a unique NOT NULL "
                    f"key) on every captured table to resume its snapshot; {', '.join(keyless)} "
                    "has none"
                )
        server.probe_replication(
            self.url, cfg.username, cfg.password.get_secret_value(), self.server_id
        )

    def _load_tables(self, conn: Connection) -> list[TableSchema]:
        """The captured tables that exist now. Named ones must; patterns may match none yet
        (tables created later are captured from their first row)."""
        found: list[TableSchema] = []
        for db, table in sorted(self.filter.names):
            try:
                found.append(load_table_schema(conn, db, table))
            except TableNotFound:
                raise ConfigError(
                    f"{self.path}.table: table {db}.{table} does not exist on {self.server}"
                ) from None
        if self.filter.regex is not None:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                    "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN "
                    "('mysql', 'information_schema', 'performance_schema', 'sys')"
                )
                pairs = [(str(d), str(t)) for d, t in cur.fetchall()]
            for db, table in sorted(pairs):
                if self.filter(db, table) and (db, table) not in self.filter.names:
                    found.append(load_table_schema(conn, db, table))
        return found

    def tables(self) -> list[TableSchema]:
        return list(self._tables)

    # -- parts ------------------------------------------------------------------------------
    def list_parts(self) -> list[str]:
        """One part, naming where this run starts (decided now, once). A ``journalName`` +
        ``position`` is refused here unless the file is on the server and the position is a
        transaction boundary in it: only a fresh run starts there (a resumed run continues
        from its saved position, so a start file purged since does not matter)."""
        start = self.config.start
        mode = start.effective_mode
        part: dict[str, Any] = {"mode": mode}
        if mode in ("latest", "earliest"):
            conn = self.connect()
            try:
                user = self.config.username
                if mode == "latest":
                    part["file"], part["pos"] = server.current_position(conn, user, self.server)
                else:
                    logs = server.binary_logs(conn, user, self.server)
                    part["file"], part["pos"] = logs[0].name, 4
                part["gtid"] = server.gtid_at(conn, part["file"], part["pos"])
            finally:
                conn.close()
        elif mode == "file":
            assert start.journalName is not None
            part["file"], part["pos"] = start.journalName, start.position or 4
            conn = self.connect()
            try:
                server.check_start_position(
                    conn,
                    self.config.username,
                    self.server,
                    part["file"],
                    part["pos"],
                    f"{self.path}.start",
                )
            finally:
                conn.close()
        elif mode == "gtid":
            part["gtid"] = start.gtid
        elif mode == "timestamp":
            part["timestamp"] = start.timestamp
        return [json.dumps(part, sort_keys=True)]

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        return BinlogPartReader(self, task, json.loads(part_id), resume_state)


class BinlogPartReader(SourcePartReader):
    """Reads the one binlog part: the initial snapshot first if the run has one, then the
    binlog, and says after every batch where it is."""

    def __init__(
        self,
        source: BinlogSource,
        task: str,
        part: dict[str, Any],
        state: dict[str, str] | None,
    ) -> None:
        self.source = source
        self.task = task
        cfg = source.config
        self.tracker = SchemaTracker(source.connect)
        self.snapshot_phase: InitialSnapshot | None = None
        self.seq = int(state.get("seq", 0)) if state else 0
        self.skip = SkipList.from_json(state.get("skip") if state else None)
        not_before: int | None = None
        if state and state.get("phase") == "snapshot":
            self.snapshot_phase = self._snapshot(state)
            self.snapshot_phase.mark_resumed(self.skip)
            position = StreamPosition(state["file"], int(state["pos"]), state.get("gtid", ""))
        elif state:
            position = StreamPosition(
                state.get("file") or None,
                int(state["pos"]) if state.get("pos") else None,
                state.get("gtid", ""),
            )
        elif part["mode"] == "initial":
            tables = [t.qualified_name for t in source.tables() or self._check_tables()]
            self.snapshot_phase = self._snapshot({"tables": json.dumps(tables), "done": "0"})
            file, pos = self.snapshot_phase.position
            position = StreamPosition(file, pos, self._gtid_at(file, pos))
        elif part["mode"] == "timestamp":
            not_before = int(part["timestamp"])
            position = StreamPosition(*self._file_at(not_before), "")
        else:
            position = StreamPosition(part.get("file"), part.get("pos"), part.get("gtid", ""))
        if position.file is not None:
            self._check_present(position, "the saved position" if state else "the start position")
        ops = {Op(c.upper()) for c in cfg.cat}
        self.stream = BinlogStream(
            settings=source.stream_settings,
            server_id=source.server_id,
            server=source.server,
            user=cfg.username,
            task=task,
            tables=source.filter,
            tracker=self.tracker,
            ops=ops,
            position=position,
            seq=self.seq,
            skip=self.skip,
            idle_s=cfg.heartbeatInterval / 1000.0,
            not_before_ms=not_before,
        )
        self._schema_changes: list[SchemaChange] = []

    def attach_stores(self, stores: StateStores) -> None:
        """Keep the schema history (:mod:`.binlog_history`) in the runner's store, unless
        ``schemaHistory`` is off."""
        if self.source.config.schemaHistory:
            self.tracker.history = SchemaHistory(stores, self.source.server).load()

    def _check_tables(self) -> list[TableSchema]:
        self.source.check()
        return self.source.tables()

    def _snapshot(self, state: dict[str, str]) -> InitialSnapshot:
        return InitialSnapshot(
            self.source.connect,
            self._live_schema,
            self.task,
            self.source.config.fetchSize,
            state,
        )

    def _live_schema(self, db: str, table: str) -> TableSchema | None:
        held = self.tracker.tables.get((db, table))
        return held.schema if held else self.tracker.after_ddl(db, table)

    def _with_conn(self, fn: Any, *args: Any) -> Any:
        conn = self.source.connect()
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    def _gtid_at(self, file: str, pos: int) -> str:
        result: str = self._with_conn(server.gtid_at, file, pos)
        return result

    def _file_at(self, ts_ms: int) -> tuple[str, int]:
        cfg = self.source
        result: tuple[str, int] = self._with_conn(
            first_file_at, cfg.stream_settings, cfg.server_id, cfg.server, ts_ms
        )
        return result

    def _check_present(self, position: StreamPosition, what: str) -> None:
        assert position.file is not None and position.pos is not None
        self._with_conn(
            server.check_file_present,
            self.source.config.username,
            self.source.server,
            position.file,
            position.pos,
            what,
        )

    # -- SourcePartReader -------------------------------------------------------------------
    def next_batch(self) -> list[RowEvent] | None:
        for change in self._schema_changes:  # a runner that does not route DDL
            log.warning(
                "%s: schema change of %s not passed on to the writers: %s",
                self.task,
                change.qualified_name,
                change.ddl,
            )
        self._schema_changes = []
        if self.snapshot_phase is not None:
            batch = self.snapshot_phase.next_batch(self.seq)
            if batch is not None:
                self.seq = batch[-1].source.seq
                return batch
            self.snapshot_phase = None  # done: the binlog from the snapshot's position
            self.stream.seq = self.seq
            return []
        batch = self.stream.read_batch(MAX_BATCH_EVENTS, MAX_BATCH_SECONDS)
        self.seq = self.stream.seq
        self._schema_changes, self.stream.schema_changes = self.stream.schema_changes, []
        return batch

    def take_schema_changes(self) -> list[SchemaChange]:
        changes, self._schema_changes = self._schema_changes, []
        return changes

    def bytes_behind(self) -> int | None:
        """Binlog bytes between where this reader is and the server's end (``SHOW BINARY
        LOGS``: the last file's size is the current end). For the runner's lag metric."""
        pos = self.stream.position
        if pos.file is None or pos.pos is None:
            return None
        files = self._with_conn(server.binary_logs, self.source.config.username, self.source.server)
        names = [f.name for f in files]
        if pos.file not in names:
            return None
        i = names.index(pos.file)
        return max(0, files[i].size - pos.pos) + sum(f.size for f in files[i + 1 :])

    def snapshot(self) -> dict[str, str]:
        pos = self.stream.position
        state = {"seq": str(self.seq), "gtid": pos.gtid}
        if pos.file is not None:
            state["file"], state["pos"] = pos.file, str(pos.pos)
        if self.snapshot_phase is not None:
            state["phase"] = "snapshot"
            state.update(self.snapshot_phase.state())
        else:
            state["phase"] = "binlog"
        if self.skip:
            state["skip"] = self.skip.to_json()
        return state

    def close(self) -> None:
        self.stream.close()
        self.tracker.close()
        if self.snapshot_phase is not None:
            self.snapshot_phase.close()
