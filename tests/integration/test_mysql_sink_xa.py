"""The MySQL sink's XA phases against real MariaDB, one writer driven by hand."""

from __future__ import annotations

import pymysql
import pytest

from coordinator.connectors import build_sink
from coordinator.job import build_job
from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import load_table_schema
from testkit.mysql import mysql_connect, mysql_job

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
    # XA ids are server-wide: this test's own, so other tests' transactions stay out of it.
    prefix = f"sl-{unique_name[-8:]}-writer-0-"
    yield w, conn, table, prefix
    for xid in _prepared(conn, prefix):
        with conn.cursor() as cur:
            cur.execute("XA ROLLBACK %s", (xid,))
    conn.close()


def _prepared(conn, prefix: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        xids = [(d if isinstance(d, str) else d.decode())[:g] for _f, g, _b, d in cur.fetchall()]
    return [x for x in xids if x.startswith(prefix)]


def test_a_failed_xa_commit_is_left_for_recovery_never_rolled_back(writer):
    """After the Kafka commit the transaction is decided: if XA COMMIT fails with the
    connection still up, the runner's abort() must not roll it back (that would lose rows
    Kafka already counts as written); recover() commits it on the next start."""
    w, conn, table, prefix = writer
    xid = f"{prefix}1"
    w.begin(xid)
    rows = [
        RowEvent(Op.INSERT, table, None, (i, f"v{i}"), SourcePosition("reader-0", seq=i), 0)
        for i in range(1, 4)
    ]
    assert w.write(rows) == []
    w.pre_commit(xid, {"topic:0": 3})
    real_exec = w._exec

    def failing_exec(sql, args=None):
        if sql.startswith("XA COMMIT"):
            raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded (injected)")
        return real_exec(sql, args)

    w._exec = failing_exec
    with pytest.raises(pymysql.MySQLError):
        w.commit(xid)
    w.abort()  # what writer_task's `finally` does when the task stops
    assert _prepared(conn, prefix) == [xid], "the decided transaction was rolled back"
    w._exec = real_exec
    assert w.recover(prefix, lambda txn: True) == [(xid, True)]
    with conn.cursor() as cur:
        cur.execute("SELECT id, v FROM t ORDER BY id")
        assert cur.fetchall() == ((1, "v1"), (2, "v2"), (3, "v3"))
