"""A column's type changed under a running or replaying binlog CDC job (issue 14 item 8), against
real MariaDB and Kafka: ``ALTER TABLE … MODIFY n VARCHAR`` of an INT column with rows before
and after it, read live, read again from a position before it, and a table dropped and
created again with the old type after a job recorded the MODIFY in the shared schema history.

What a user must see: the target equal to the source (count and ``CHECKSUM TABLE``), the
target column changed as the source's was, and the job still running with no error.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.job import build_job
from schemas.introspect import load_table_schema
from testkit.alltypes import COLUMNS
from testkit.cdc import RunningJob, binlog_position, cdc_job, execute, wait_for_copy
from testkit.mysql import mysql_connect
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

H3 = "id INT NOT NULL PRIMARY KEY, n INT"
WARM = "id INT NOT NULL PRIMARY KEY"
BURST = (
    "INSERT INTO h3 VALUES (1, 1)",
    "ALTER TABLE h3 MODIFY n VARCHAR(20)",
    "INSERT INTO h3 VALUES (2, 'x')",
    "UPDATE h3 SET n = CONCAT(n, 'u') WHERE id = 1",
)


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    yield c
    c.close()


def tables(conn: Any, db: str, dst: str, *names: str) -> None:
    """Source tables and their targets, the same shape."""
    for name in names:
        execute(
            conn,
            f"CREATE TABLE `{db}`.{name} ({H3 if name == 'h3' else WARM})",
            f"CREATE TABLE `{dst}`.{name} LIKE `{db}`.{name}",
        )


def column_type(conn: Any, db: str, table: str, column: str) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME = %s",
            (db, table, column),
        )
        return str(cur.fetchone()[0])


def rows(conn: Any, db: str, table: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{db}`.`{table}` ORDER BY id")
        return list(cur.fetchall())


def job_for(mysql_url: str, db: str, dst: str, name: str, start: dict[str, Any]) -> Any:
    return cdc_job(mysql_url, db, ["h3", "warm"], dst, "*", name=name, start=start, writers=2)


def reading(conn: Any, job: RunningJob, db: str, dst: str, first_id: int) -> None:
    """Until the job copies rows of ``warm`` inserted now: it is reading the binlog (a job
    at ``latest`` misses rows written before it decided where that is, so insert again)."""
    deadline = time.monotonic() + 60
    key = first_id
    while True:
        execute(conn, f"INSERT INTO `{db}`.warm VALUES ({key})")
        until = time.monotonic() + 3
        while time.monotonic() < until:
            job.assert_running()
            with conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM `{dst}`.warm WHERE id >= {first_id}")
                if cur.fetchone()[0]:
                    return
            time.sleep(0.05)
        assert time.monotonic() < deadline, "the job copied nothing within 60 s"
        key += 1


def stopped_cleanly(job: RunningJob) -> None:
    code, out = job.stop()
    assert code == 0, out[-4000:]
    assert "errors               0" in out, out[-3000:]
    assert "cannot encode" not in out and "Traceback" not in out, out[-3000:]


def run_alter_live(
    conn: Any,
    mysql_url: str,
    db: str,
    dst: str,
    name: str,
    kafka: str,
    tmp_path: Path,
    row_first: bool = False,
) -> None:
    """(a): the burst while the job runs; the job has not met h3 before it, so it reads
    the INT row when the table is VARCHAR already. ``row_first``: the job copies the first
    row before the ALTER runs (it reads that row with the table as it was)."""
    tables(conn, db, dst, "h3", "warm")
    job = RunningJob(
        job_for(mysql_url, db, dst, name, binlog_position(conn)), tmp_path / "a.json", kafka
    )
    try:
        reading(conn, job, db, dst, 1)
        if row_first:
            execute(conn, BURST[0])
            wait_for_copy(conn, job, [((db, "h3"), (dst, "h3"))], timeout=60)
        execute(conn, *BURST[1 if row_first else 0 :])
        wait_for_copy(conn, job, [((db, "h3"), (dst, "h3"))], timeout=60)
    finally:
        stopped_cleanly(job)
    assert rows(conn, dst, "h3") == [(1, "1u"), (2, "x")]
    assert column_type(conn, dst, "h3", "n") == "varchar(20)"


def test_modify_int_to_varchar_while_the_job_runs(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    run_alter_live(
        conn, mysql_url, mysql_database, target_db, unique_name, kafka_bootstrap, tmp_path
    )


def test_modify_read_later_from_a_position_before_the_first_row(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    db, dst = mysql_database, target_db
    tables(conn, db, dst, "h3", "warm")
    start = binlog_position(conn)
    execute(conn, *BURST)  # all of it before the job starts: rows of INT read after the ALTER
    job = RunningJob(
        job_for(mysql_url, db, dst, unique_name, start), tmp_path / "b.json", kafka_bootstrap
    )
    try:
        wait_for_copy(conn, job, [((db, "h3"), (dst, "h3"))], timeout=60)
        execute(conn, "INSERT INTO h3 VALUES (3, 'after')")
        wait_for_copy(conn, job, [((db, "h3"), (dst, "h3"))], timeout=60)
    finally:
        stopped_cleanly(job)
    assert rows(conn, dst, "h3") == [(1, "1u"), (2, "x"), (3, "after")]
    assert column_type(conn, dst, "h3", "n") == "varchar(20)"


def test_a_table_recreated_after_a_recorded_modify_is_a_new_table(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    db, dst = mysql_database, target_db
    # a job records the MODIFY in the server's schema history, and is stopped
    run_alter_live(conn, mysql_url, db, dst, unique_name, kafka_bootstrap, tmp_path, True)
    # the table dropped and created again as it was, while no job runs; its target too
    execute(conn, "DROP TABLE h3", f"CREATE TABLE h3 ({H3})")
    execute(conn, f"DROP TABLE `{dst}`.h3", f"CREATE TABLE `{dst}`.h3 LIKE `{db}`.h3")
    spec = job_for(mysql_url, db, dst, f"{unique_name}-new", {"mode": "latest"})
    job = RunningJob(spec, tmp_path / "c.json", kafka_bootstrap)
    try:
        reading(conn, job, db, dst, 1000)
        execute(
            conn,
            "INSERT INTO h3 VALUES (10, 10), (11, NULL), (12, -2147483648)",
            "UPDATE h3 SET n = n + 1 WHERE id = 10",
        )
        wait_for_copy(conn, job, [((db, "h3"), (dst, "h3"))], timeout=60)
    finally:
        stopped_cleanly(job)
    assert rows(conn, dst, "h3") == [(10, 11), (11, None), (12, -2147483648)]
    assert column_type(conn, dst, "h3", "n") == "int(11)"


MORE_TYPES = (
    "l1 VARCHAR(10) CHARACTER SET latin1 NOT NULL DEFAULT '', ch3 CHAR(3) CHARACTER SET utf8mb3,"
    " tt TINYTEXT, mt MEDIUMTEXT, lt LONGTEXT, tb TINYBLOB, mb MEDIUMBLOB, lb LONGBLOB,"
    " d5 DECIMAL(5,0) NOT NULL DEFAULT 0, t0 TIME, d0 DATETIME, ts0 TIMESTAMP NULL,"
    " fu FLOAT UNSIGNED, bo BOOL, v300 VARCHAR(300), i6 INET6, uu UUID, b9 BIT(9)"
)


def test_every_type_is_decoded_with_the_live_schema(mysql_url, mysql_database, unique_name):
    """With nothing changed, every column type's declared schema fits its TABLE_MAP: rows
    carry the exact schema (not the approximate one rebuilt from the binlog)."""
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(conn, f"CREATE TABLE every ({COLUMNS}, {MORE_TYPES}) DEFAULT CHARSET=utf8mb4")
    start = binlog_position(conn)
    execute(conn, "INSERT INTO every (id) VALUES (1)", "UPDATE every SET i = 5 WHERE id = 1")
    live = load_table_schema(conn, db, "every")
    conn.close()
    spec = cdc_job(mysql_url, db, ["every"], db, "every", name=unique_name, start=start)
    source = build_source(build_job(spec))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    events: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(events) < 2:
            assert time.monotonic() < deadline, f"only {events} within 30 s"
            events.extend(reader.next_batch() or [])
    finally:
        reader.close()
    for event in events:
        assert event.table.columns == live.columns
        assert event.table.primary_key == live.primary_key


def test_a_type_change_the_target_cannot_take_stops_the_job_naming_it(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    """The target holds a value (written there by hand) its column cannot convert to the
    source's new type: the job stops with one line naming the statement, table, column and
    binlog position, and no retry; the target keeps its old type and rows."""
    db, dst = mysql_database, target_db
    execute(
        conn,
        f"CREATE TABLE h4 ({H3.replace('n INT', 'n VARCHAR(20)')})",
        f"CREATE TABLE `{dst}`.h4 LIKE h4",
        f"INSERT INTO `{dst}`.h4 VALUES (99, 'not a number')",
        f"CREATE TABLE warm ({WARM})",
        f"CREATE TABLE `{dst}`.warm LIKE warm",
    )
    spec = cdc_job(
        mysql_url, db, ["h4", "warm"], dst, "*", name=unique_name, start=binlog_position(conn)
    )
    job = RunningJob(spec, tmp_path / "d.json", kafka_bootstrap)
    try:
        reading(conn, job, db, dst, 1)
        execute(conn, "INSERT INTO h4 VALUES (1, '5')")
        at = binlog_position(conn)
        execute(conn, "ALTER TABLE h4 MODIFY n INT", "INSERT INTO h4 VALUES (2, 7)")
        wait_until(lambda: job.proc.poll() is not None, 60, "the job to stop at the ALTER")
    finally:
        code, out = job.stop()
    assert code != 0, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out[-3000:]
    line = errors[0]
    assert f"`{dst}`.`h4` MODIFY COLUMN IF EXISTS `n` int(11)" in line, line
    where = re.search(r"'ALTER TABLE h4 MODIFY n INT' at ([\w.]+):(\d+)\)$", line)
    assert where is not None, line  # the DDL's own event, right after its GTID event
    assert where[1] == at["journalName"] and 0 < int(where[2]) - at["position"] < 100, line
    assert "failed 4 times" not in line and "Traceback" not in out, out[-3000:]
    assert column_type(conn, dst, "h4", "n") == "varchar(20)"
    assert rows(conn, dst, "h4") == [(1, "5"), (99, "not a number")]
