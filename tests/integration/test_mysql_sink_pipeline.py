"""mysqlwriter runs its last statement while the runner decodes the next batch: rows the
table refuses still reach the runner (from the next write() or flush()), in order, and the
rows it takes are all applied — against real MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.connectors import build_sink
from coordinator.errors import TaskFailed
from coordinator.job import build_job
from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import load_table_schema
from testkit.mysql import mysql_connect, mysql_job

pytestmark = pytest.mark.integration


@pytest.fixture
def writer(mysql_url: str, mysql_database: str, unique_name: str) -> Any:
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(5) NOT NULL)")
    job = build_job(
        mysql_job(
            mysql_url,
            mysql_database,
            "t",
            "t",
            name=unique_name,
            writer_extra={"batchSize": 100},
            setting_extra={"errorLimit": {"record": 100}},
        )
    )
    sink = build_sink(job)
    sink.check()
    w = sink.build_writer("writer-0")
    table = load_table_schema(conn, mysql_database, "t")
    yield w, conn, table
    w.abort()
    w.close()
    conn.close()


def _rows(table: Any, ids: range, bad: set[int]) -> list[RowEvent]:
    return [
        RowEvent(
            Op.INSERT,
            table,
            None,
            (i, "too long!" if i in bad else f"v{i % 1000}"),
            SourcePosition("reader-0", seq=i),
            0,
        )
        for i in ids
    ]


def test_rows_refused_by_a_statement_in_flight_are_reported_once(writer: Any) -> None:
    w, conn, table = writer
    w.begin("sl-pipe-writer-0-1")
    rejected = w.write(_rows(table, range(1, 251), bad={7, 220}))
    rejected += w.write(_rows(table, range(251, 301), bad=set()))
    rejected += w.flush()
    assert sorted(r.event.source.seq for r in rejected) == [7, 220]
    assert all(r.code == 1406 for r in rejected)  # data too long
    assert w.flush() == []
    w.pre_commit("sl-pipe-writer-0-1", {"topic:0": 300})
    w.commit("sl-pipe-writer-0-1")
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(id) FROM t")
        count, total = cur.fetchone()
    assert count == 298
    assert total == sum(range(1, 301)) - 7 - 220


def test_pre_commit_refuses_to_drop_uncollected_rejections(writer: Any) -> None:
    w, _conn, table = writer
    w.begin("sl-pipe-writer-0-2")
    assert w.write(_rows(table, range(1, 11), bad={10})) == []  # refused in flight
    with pytest.raises(TaskFailed, match="1 rejected rows not collected"):
        w.pre_commit("sl-pipe-writer-0-2", {"topic:0": 10})
