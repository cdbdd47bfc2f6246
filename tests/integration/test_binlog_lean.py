"""Binlog events read without mysql-replication's event objects
(:mod:`source_connectors.mysql.binlog_lean`) give exactly the row events — values, source
positions, GTIDs, sequence numbers — and the resume position the library's reader gives,
over a binlog that has what makes the lean path step aside: a table the C decoder cannot
read (JSON), an ALTER between rows (a new TABLE_MAP), a rotation (table ids may be reused),
a table of another database, multi-row and multi-statement transactions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.job import build_job
from source_connectors.mysql import binlog_lean, binlog_native
from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(binlog_native._native is None, reason="_binlog_rows is not built"),
]

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


def test_lean_reader_gives_the_library_readers_events_and_position(
    mysql_url: str, mysql_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    monkeypatch.setattr(binlog_native, "enabled", False)  # the library's reader and decoding
    library, library_position = read_everything(mysql_url, db, start, expected)

    assert len(lean) == len(library) == expected
    for n, (a, b) in enumerate(zip(lean, library, strict=True)):
        assert a == b, f"event {n} differs:\nlean    {a}\nlibrary {b}"
    # Both resume right after the last row read, in its file. (Not byte-equal: MariaDB may
    # write a binlog checkpoint event between the two reads, which an idle reader moves past.)
    last_file, last_pos = lean[-1][4], lean[-1][5]
    for position in (lean_position, library_position):
        assert position["file"] == last_file and int(position["pos"]) > last_pos
        assert position["seq"] == str(expected)
