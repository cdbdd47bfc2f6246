"""The MySQL sink's XA phases against real MariaDB, one writer driven by hand."""

from __future__ import annotations

import pymysql
import pytest

from coordinator.connectors import build_sink
from coordinator.job import build_job
from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import load_table_schema
from tests.support import mysql_connect, mysql_job

pytestmark = pytest.mark.integration


@pytest.fixture
def writer(mysql_url, mysql_database, unique_name):
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10))")
    job = build_job(mysql_job(mysql_url, mysql_database, "t", "t", name=unique_name))
    sink = build_sink(job)
    sink.check()
    w = sink.build_writer("writer-0")
    table = load_table_schema(conn, mysql_database, "t")
    yield w, conn, table
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        for _f, glen, _b, data in cur.fetchall():
            cur.execute("XA ROLLBACK %s", (data[:glen],))
    conn.close()


def _prepared(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        return [(d if isinstance(d, str) else d.decode())[:g] for _f, g, _b, d in cur.fetchall()]


def test_a_failed_xa_commit_is_left_for_recovery_never_rolled_back(writer):
    """After the Kafka commit the transaction is decided: if XA COMMIT fails with the
    connection still up, the runner's abort() must not roll it back (that would lose rows
    Kafka already counts as written); recover() commits it on the next start."""
    w, conn, table = writer
    w.begin("sl-test-writer-0-1")
    rows = [
        RowEvent(Op.INSERT, table, None, (i, f"v{i}"), SourcePosition("reader-0", seq=i), 0)
        for i in range(1, 4)
    ]
    assert w.write(rows) == []
    w.pre_commit("sl-test-writer-0-1", {"topic:0": 3})
    real_exec = w._exec

    def failing_exec(sql, args=None):
        if sql.startswith("XA COMMIT"):
            raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded (injected)")
        return real_exec(sql, args)

    w._exec = failing_exec
    with pytest.raises(pymysql.MySQLError):
        w.commit("sl-test-writer-0-1")
    w.abort()  # what writer_task's `finally` does when the task stops
    assert _prepared(conn) == ["sl-test-writer-0-1"], "the decided transaction was rolled back"
    w._exec = real_exec
    assert w.recover("sl-test-writer-0-", lambda txn: True) == [("sl-test-writer-0-1", True)]
    with conn.cursor() as cur:
        cur.execute("SELECT id, v FROM t ORDER BY id")
        assert cur.fetchall() == ((1, "v1"), (2, "v2"), (3, "v3"))
