"""The committed binlog position of a CDC job moves on while its own tables are quiet (real
MariaDB and Kafka): writes to tables it does not capture, and binlog rotations, must not leave
the saved position behind — a restart would re-read all of it, or find it purged."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pymysql
import pytest

from coordinator.connectors import build_source
from coordinator.job import build_job
from coordinator.plan import safe_name
from coordinator.positions import load_positions
from testkit.cdc import NARROW, RunningJob, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, table_fingerprint
from testkit.wait import wait_until

pytestmark = pytest.mark.integration


def saved_position(bootstrap: str, job: str) -> tuple[str, int]:
    saved = load_positions(bootstrap, f"{safe_name(job)}/")
    pos = [p.position for p in saved.values() if p.position.get("file")]
    return (pos[0]["file"], int(pos[0]["pos"])) if pos else ("", 0)


def test_position_moves_past_changes_of_tables_not_captured(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(
        conn,
        f"CREATE TABLE a ({NARROW})",
        f"CREATE TABLE a_dst ({NARROW})",
        f"CREATE TABLE b ({NARROW})",
    )
    spec = cdc_job(
        mysql_url, db, ["a"], db, "a_dst", name=unique_name, start=binlog_position(conn),
        writers=2, restore=True,
    )  # fmt: skip
    job = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        execute(conn, "INSERT INTO a (id, k) VALUES (1, 1)")
        wait_until(
            lambda: job.assert_running() or table_fingerprint(conn, db, "a_dst")[0] == 1,
            60,
            "the captured row",
        )
        first = saved_position(kafka_bootstrap, unique_name)
        # 50,000 rows of a table the job does not capture: one big transaction and many
        # small ones, then a binlog rotation
        execute(
            conn,
            "INSERT INTO b SELECT seq, seq % 10, 'b', 1, NOW(6) FROM seq_1_to_45000",
            "BEGIN NOT ATOMIC FOR i IN 45001..50000 DO "
            "INSERT INTO b (id, k) VALUES (i, 1); END FOR; END",
        )
        after_b = tuple(binlog_position(conn).values())
        assert after_b > first

        def moved_past(point: tuple[str, int]) -> bool:
            job.assert_running()
            return saved_position(kafka_bootstrap, unique_name) >= point

        wait_until(lambda: moved_past(after_b), 60, f"the saved position to pass {after_b}")
        execute(conn, "FLUSH BINARY LOGS")
        rotated = tuple(binlog_position(conn).values())
        wait_until(lambda: moved_past(rotated), 60, f"the saved position to pass {rotated}")
        assert table_fingerprint(conn, db, "a_dst")[0] == 1  # and nothing of b leaked in
    finally:
        code, out = job.stop()
        conn.close()
    assert code == 0, out[-4000:]


@pytest.mark.parametrize("start", ["gtid", "file"])
def test_a_lost_replication_connection_neither_repeats_nor_skips(
    mysql_url, mysql_database, unique_name, start
):
    """The server drops the replication connection in the middle of a backlog: the reader
    goes on from its last whole transaction — every row exactly once (mysql-replication on
    its own would reconnect from the start GTID, or mid-transaction)."""
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(conn, "CREATE TABLE src (id INT PRIMARY KEY, pad TEXT)")
    where = binlog_position(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        (gtid,) = cur.fetchone()
    execute(
        # 3,000 one-row transactions, far more than the socket buffers hold (48 MB): were the
        # server to send it all before the kill, its non-blocking dump thread would be gone.
        conn,
        "BEGIN NOT ATOMIC FOR i IN 1..3000 DO "
        "INSERT INTO src VALUES (i, REPEAT(CHAR(65 + i % 26), 16000)); END FOR; END",
    )
    spec = cdc_job(
        mysql_url, db, ["src"], db, "src", name=unique_name,
        start={"gtid": gtid.split(",")[0]} if start == "gtid" else where,
    )  # fmt: skip
    source = build_source(build_job(spec))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    ids: list[int] = []
    try:
        while len(ids) < 100:
            ids.extend(e.after[0] for e in reader.next_batch() or [])
        stream = reader.stream._reader  # the open replication connection, mid-backlog
        assert stream is not None
        link = stream._stream_connection
        try:
            execute(conn, f"KILL CONNECTION {link.thread_id()}")
        except pymysql.err.OperationalError as e:
            if e.args[0] != 1094:  # unknown thread: the server already sent its whole part
                raise
            # Where loopback buffers hold the whole backlog (a CI machine with big TCP
            # buffers), cut the connection on our side instead: still lost mid-backlog.
            link._sock.shutdown(socket.SHUT_RDWR)
        idle = 0
        while idle < 50:  # until nothing more comes
            batch = reader.next_batch() or []
            ids.extend(e.after[0] for e in batch)
            idle = 0 if batch else idle + 1
            time.sleep(0.01)
    finally:
        reader.close()
        conn.close()
    assert sorted(ids) == list(range(1, 3001)), f"{len(ids)} rows, {len(set(ids))} distinct"
