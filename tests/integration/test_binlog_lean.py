"""Binlog events read without mysql-replication's event objects
(:mod:`source_connectors.mysql.binlog_lean`) are the events the library's own reader reads —
kinds, positions, GTIDs, tables, and rows (decoded by Sluice from the lean frame, by the
library from its event) — over a binlog with an ALTER between rows (a new TABLE_MAP), a
rotation (table ids may be reused), a table of another database, a JSON column, multi-row
and multi-statement transactions; and a reader resumes right after the last row it read."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from coordinator.connectors import build_source
from coordinator.job import build_job
from source_connectors.mysql import binlog_lean
from source_connectors.mysql.binlog_rows import decode_rows, table_plan
from source_connectors.mysql.binlog_table_map import schema_from_table_map
from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_params

pytestmark = pytest.mark.integration
ROWS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)

SBTEST = "id INT NOT NULL PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60), KEY (k)"


def read_everything(
    mysql_url: str, db: str, start: dict[str, Any], expected: int
) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    spec = cdc_job(mysql_url, db, ["sb", "doc"], db, "sb", name="lean", start=start)
    source = build_source(build_job(spec))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    out: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 120
    try:
        while len(out) < expected:
            assert time.monotonic() < deadline, f"read {len(out)} of {expected} events"
            for e in reader.next_batch() or []:
                s = e.source
                out.append(
                    (e.op, e.table.table, e.before, e.after, s.file, s.pos, s.gtid, s.row, s.seq)
                )
        position = reader.snapshot()
    finally:
        reader.close()
    return out, position


def write_workload(conn: Any) -> dict[str, Any]:
    execute(
        conn,
        f"CREATE TABLE sb ({SBTEST})",
        "CREATE TABLE doc (id INT PRIMARY KEY, body JSON, n INT)",
        f"CREATE TABLE other ({SBTEST})",
        f"INSERT INTO sb SELECT seq, seq, REPEAT('c', 119), 'p' FROM seq_1_to_{200}",
    )
    start = binlog_position(conn)
    # sysbench's shape: one-row statements, four to a transaction, and autocommit ones
    for i in range(1, 101):
        execute(
            conn,
            "BEGIN",
            f"UPDATE sb SET k = k + 1 WHERE id = {i}",
            f"UPDATE sb SET c = 'x{i}' WHERE id = {i}",
            f"DELETE FROM sb WHERE id = {i}",
            f"INSERT INTO sb (id, k, c, pad) VALUES ({i}, {i}, 'y{i}', NULL)",
            "COMMIT",
        )
        execute(conn, f"INSERT INTO doc VALUES ({i}, JSON_OBJECT('i', {i}), {i})")
        execute(conn, f"UPDATE other SET k = k WHERE id = {i}")
        if i == 40:
            execute(conn, "ALTER TABLE sb ADD COLUMN extra INT DEFAULT 7")
        if i == 70:
            execute(conn, "FLUSH BINARY LOGS")
    execute(conn, "UPDATE sb SET k = k + 1 WHERE id <= 150", "DELETE FROM doc WHERE n % 3 = 0")
    return start


def lean_event(ev: Any, reader: Any) -> tuple[Any, ...] | None:
    if type(ev) is binlog_lean.LeanRows:
        assert ev.problem is None, ev.problem
        schema = schema_from_table_map(ev.table_map[ev.table_id], 1, ())
        images = 2 if ev.kind is UpdateRowsEvent else 1
        rows = decode_rows(table_plan(ev.columns, schema), ev.data, ev.start, ev.end, images)
        return (ev.kind.__name__, ev.schema, ev.table, ev.log_pos, rows, reader.log_pos)
    if type(ev) is binlog_lean.LeanGtid:
        return ("gtid", ev.gtid, ev.log_pos, reader.log_pos)
    if type(ev) is binlog_lean.LeanXid:
        return ("xid", ev.log_pos, reader.log_pos)
    return library_event(ev, reader)


def library_event(ev: Any, reader: Any) -> tuple[Any, ...] | None:
    if isinstance(ev, ROWS):
        if isinstance(ev, UpdateRowsEvent):
            rows: list[Any] = [
                (tuple(r["before_values"].values()), tuple(r["after_values"].values()))
                for r in ev.rows
            ]
        else:
            rows = [tuple(r["values"].values()) for r in ev.rows]
        return (type(ev).__name__, ev.schema, ev.table, ev.packet.log_pos, rows, reader.log_pos)
    if isinstance(ev, MariadbGtidEvent):
        return ("gtid", ev.gtid, ev.packet.log_pos, reader.log_pos)
    if isinstance(ev, XidEvent):
        return ("xid", ev.packet.log_pos, reader.log_pos)
    if isinstance(ev, QueryEvent):
        return ("query", ev.query, ev.packet.log_pos, reader.log_pos)
    return None  # rotations, checkpoints, GTID lists: framing the reader handles alike


def events_of(cls: type, mysql_url: str, db: str, start: dict[str, Any], server_id: int) -> Any:
    """Every event of ``db`` from ``start`` to the binlog's end, as ``cls`` reads them."""
    reader = cls(
        connection_settings=mysql_params(mysql_url),
        server_id=server_id,
        blocking=False,
        resume_stream=True,
        log_file=start["journalName"],
        log_pos=int(start["position"]),
        only_events=[*ROWS, MariadbGtidEvent, XidEvent, QueryEvent],
        only_schemas=[db],
    )
    see = lean_event if cls is binlog_lean.LeanStreamReader else library_event
    out = []
    try:
        for ev in reader:
            seen = see(ev, reader)
            if seen is not None:
                out.append(seen)
    finally:
        reader.close()
    return out


def test_lean_reader_reads_the_library_readers_events(mysql_url: str, mysql_database: str) -> None:
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    try:
        start = write_workload(conn)
    finally:
        conn.close()  # an open transaction would block the database's DROP
    expected = 100 * 4 + 100 + 150 + 33

    before = binlog_lean.events_read
    lean, lean_position = read_everything(mysql_url, db, start, expected)
    assert binlog_lean.events_read - before > 500, "the lean path was not taken"
    assert len(lean) == expected
    # It resumes right after the last row read, in its file.
    last_file, last_pos = lean[-1][4], lean[-1][5]
    assert lean_position["file"] == last_file and int(lean_position["pos"]) > last_pos
    assert lean_position["seq"] == str(expected)

    framed = events_of(binlog_lean.LeanStreamReader, mysql_url, db, start, 9001)
    library = events_of(BinLogStreamReader, mysql_url, db, start, 9002)
    assert sum(e[0] == "UpdateRowsEvent" for e in library) > 200
    assert len(framed) == len(library)
    for n, (a, b) in enumerate(zip(framed, library, strict=True)):
        assert a == b, f"event {n} differs:\nlean    {a}\nlibrary {b}"
