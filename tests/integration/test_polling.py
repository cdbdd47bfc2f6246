"""Incremental reads and interval polling (``mysqlreader`` with ``increColumn``) through real
MariaDB and Kafka.

Reader-level tests drive the part reader directly against MariaDB (fast and deterministic:
they decide exactly when each transaction commits). End-to-end tests run ``sluice run`` with
``writeMode: insert`` (a row delivered twice fails the job) and compare target and source by
CHECKSUM TABLE, naming missing and extra keys otherwise.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.errors import ConfigError
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from testkit.cdc import RunningJob, wait_for_copy
from testkit.mysql import key_differences, mysql_connect, mysql_job, table_fingerprint
from testkit.readers import (
    ids_read_restarting_after_every_batch,
    missing_and_duplicated,
    open_reader,
    read_for,
    read_until,
)

pytestmark = pytest.mark.integration

TABLE = "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, v VARCHAR(40)"


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    yield c
    c.close()


def run_sql(c: Any, *statements: str) -> None:
    with c.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def polling_job(mysql_url: str, db: str, name: str, **reader: Any) -> dict[str, Any]:
    job = mysql_job(
        mysql_url, db, "src", "dst", name=name, split_pk=None,
        reader_extra={"increColumn": "id", "fetchSize": 50, **reader},
        setting_extra={
            "speed": {"readerChannel": 1, "writerChannel": 2},
            "restore": {"checkpointInterval": 300, "isRestore": True},
        },
    )  # fmt: skip
    return job


# --- the safety window ---------------------------------------------------------------------


@pytest.mark.parametrize("window_ms", [1500, 0])
def test_out_of_order_commit_is_read_within_the_safety_window(
    conn, mysql_url, mysql_database, unique_name, window_ms
):
    """Txn A takes id 2 and stays open; txn B takes id 3 and commits first. With a safety
    window, the reader waits and reads 2 once A commits; without one (window 0) it has
    already moved past 3 and skips 2 for ever — the failure the window exists for."""
    db = mysql_database
    run_sql(conn, f"CREATE TABLE src ({TABLE})", "INSERT INTO src (k, v) VALUES (1, 'first')")
    job = polling_job(
        mysql_url, db, unique_name, polling=True, pollingInterval=100,
        pollingSafetyWindow=window_ms,
    )  # fmt: skip
    reader = open_reader(job)
    try:
        assert [r[0] for r in read_until(reader, 1, window_ms / 1000 + 10)] == [1]
        a = mysql_connect(mysql_url, db)
        run_sql(a, "BEGIN", "INSERT INTO src (k, v) VALUES (2, 'A, committed late')")
        run_sql(conn, "INSERT INTO src (k, v) VALUES (3, 'B, committed first')")
        early = read_for(reader, 0.6)  # B is committed; A is not
        run_sql(a, "COMMIT")
        a.close()
        late = read_until(reader, 2, window_ms / 1000 + 10) if window_ms else read_for(reader, 1)
    finally:
        reader.close()
    ids = [r[0] for r in early + late]
    if window_ms:
        assert early == [], "a row was read before it was a safety window old"
        assert ids == [2, 3]
    else:
        assert ids == [3], "without a window the late row is expected to be skipped"


# --- positions: ties and restarts ------------------------------------------------------------


@pytest.mark.parametrize("shape", ["primary key", "no key", "customSql"])
def test_non_unique_timestamp_resumes_without_loss_or_duplicate(
    conn, mysql_url, mysql_database, unique_name, shape
):
    """Many rows share each DATETIME value; the reader is restarted from its snapshot after
    every batch (fetchSize 7 cuts through the groups). With a primary key the position has a
    tie-break; without any key (or with customSql) batches end only where the value changes."""
    db = mysql_database
    key = "PRIMARY KEY" if shape == "primary key" else ""
    run_sql(
        conn,
        f"CREATE TABLE src (id INT NOT NULL {key}, ts DATETIME NOT NULL, v INT)",
        "INSERT INTO src SELECT seq, '2026-01-01 00:00:00' + INTERVAL (seq DIV 25) SECOND, "
        "seq * 7 FROM seq_1_to_300",
    )
    extra = {"customSql": "SELECT id, ts, v FROM src WHERE v > 0"} if shape == "customSql" else {}
    job = polling_job(mysql_url, db, unique_name, increColumn="ts", fetchSize=7, **extra)
    seen = ids_read_restarting_after_every_batch(job)
    assert sorted(seen) == list(range(1, 301)), missing_and_duplicated(seen, range(1, 301))


def test_polling_a_second_precision_timestamp_while_rows_arrive(
    conn, mysql_url, mysql_database, unique_name
):
    """TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP, no key: rows inserted later in the same second
    as the last row read carry the same value. The safety window (longer than the column's
    precision) holds each second back until it is complete, so every row is read once."""
    db = mysql_database
    run_sql(conn, "CREATE TABLE src (n INT NOT NULL, ts TIMESTAMP(0) NOT NULL DEFAULT NOW())")
    job = polling_job(
        mysql_url, db, unique_name, increColumn="ts", polling=True, pollingInterval=100,
        pollingSafetyWindow=1200,
    )  # fmt: skip
    total = 120

    def insert() -> None:
        c = mysql_connect(mysql_url, db)
        for n in range(1, total + 1):
            run_sql(c, f"INSERT INTO src (n) VALUES ({n})")
            time.sleep(0.02)
        c.close()

    reader = open_reader(job)
    writer = threading.Thread(target=insert)
    writer.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(seen) < total and time.monotonic() < deadline:
            seen += [int(r[0]) for r in read_for(reader, 0.2)]
        seen += [int(r[0]) for r in read_for(reader, 1.5)]  # nothing more may come
    finally:
        writer.join()
        reader.close()
    assert sorted(seen) == list(range(1, total + 1)), {
        "missing": sorted(set(range(1, total + 1)) - set(seen)),
        "duplicated": sorted({i for i in seen if seen.count(i) > 1}),
    }


def test_bad_increcolumn_is_one_clear_error(conn, mysql_url, mysql_database, unique_name):
    db = mysql_database
    run_sql(conn, f"CREATE TABLE src ({TABLE})", "INSERT INTO src (k, v) VALUES (1, 'a')")
    path = "job.content[0].reader.parameter"
    cases = [
        ({"increColumn": "nope"}, f"{path}.increColumn: column 'nope' does not exist"),
        ({"increColumn": "v"}, f"{path}.increColumn: column 'v' of {db}.src is varchar(40)"),
        ({"increColumn": "k", "column": ["id", "v"]}, f"{path}.increColumn: column 'k' must be"),
        ({"startLocation": "ten"}, f"{path}.startLocation: 'ten' is not a value of increColumn"),
    ]
    for reader_extra, expected in cases:
        job = polling_job(mysql_url, db, unique_name, **reader_extra)
        with pytest.raises(ConfigError) as err:
            build_source(build_job(job)).check()
        assert str(err.value).startswith(expected), str(err.value)


# --- bounded incremental reads, end to end ---------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        ({"startLocation": "40"}, (41, 100)),
        # FlinkX's useMaxFunc: [startLocation, max) — the rows at the max are the next run's.
        ({"startLocation": "40", "useMaxFunc": True, "pollingSafetyWindow": 200}, (40, 99)),
    ],
)
def test_bounded_incremental_read(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, reader, expected
):
    db = mysql_database
    run_sql(
        conn,
        f"CREATE TABLE src ({TABLE})",
        "INSERT INTO src (id, k, v) SELECT seq, seq % 7, CONCAT('v', seq) FROM seq_1_to_100",
        "CREATE TABLE dst LIKE src",
    )
    summary = LocalJobRunner(
        build_job(polling_job(mysql_url, db, unique_name, **reader)), kafka_bootstrap, quiet=True
    ).run()
    assert summary.status == "finished"
    lo, hi = expected
    with conn.cursor() as cur:
        cur.execute("SELECT MIN(id), MAX(id), COUNT(*), COUNT(DISTINCT id) FROM dst")
        assert cur.fetchone() == (lo, hi, hi - lo + 1, hi - lo + 1)
        cur.execute(
            "SELECT COUNT(*) FROM dst d JOIN src s USING (id) WHERE d.k = s.k AND d.v <=> s.v"
        )
        assert cur.fetchone()[0] == hi - lo + 1
    assert summary.numRead == hi - lo + 1


# --- polling, end to end: concurrent writers, an out-of-order commit, a restart ---------------


def insert_rows(mysql_url: str, db: str, start: int, count: int, per_txn: int) -> None:
    c = mysql_connect(mysql_url, db)
    try:
        for i in range(start, start + count, per_txn):
            n = min(per_txn, start + count - i)
            values = ", ".join(f"({i + j}, 'w{i + j}')" for j in range(n))
            run_sql(c, "BEGIN", f"INSERT INTO src (k, v) VALUES {values}", "COMMIT")
    finally:
        c.close()


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "sigkill"])
def test_polling_job_with_concurrent_writers_and_a_restart(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path, crash
):
    """A polling job copies what three connections insert (one transaction holding a lower
    id commits after later ones). It is stopped — with SIGTERM after everything landed, or
    SIGKILLed while rows are in flight — more rows are inserted, and the resumed run
    (isRestore) must bring the target to exactly the source: nothing lost, nothing twice."""
    db = mysql_database
    run_sql(
        conn,
        f"CREATE TABLE src ({TABLE})",
        "INSERT INTO src (k, v) SELECT seq, CONCAT('v', seq) FROM seq_1_to_1000",
        "CREATE TABLE dst LIKE src",
    )
    spec = polling_job(
        mysql_url, db, unique_name, polling=True, pollingInterval=200, pollingSafetyWindow=1000
    )
    pair = [((db, "src"), (db, "dst"))]
    first = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_for_copy(conn, first, pair, timeout=60)
        # A transaction takes an id and stays open while three writers commit later ids.
        late = mysql_connect(mysql_url, db)
        run_sql(late, "BEGIN", "INSERT INTO src (k, v) VALUES (-1, 'committed late')")
        writers = [
            threading.Thread(target=insert_rows, args=(mysql_url, db, 10_000 * (t + 1), 300, n))
            for t, n in enumerate((1, 5, 20))
        ]
        for w in writers:
            w.start()
        time.sleep(0.3)
        run_sql(late, "COMMIT")
        late.close()
        for w in writers:
            w.join()
        if not crash:
            wait_for_copy(conn, first, pair, timeout=60)
    finally:
        if crash:
            first.kill()
        else:
            code, out = first.stop(group=True)  # the tasks get it too, and must not die of it
    if not crash:
        assert code == 0 and "stopped" in out, out[-3000:]
        assert "restart" not in out.lower(), out[-3000:]
    # While nothing reads: more rows. The resumed run must add exactly those.
    insert_rows(mysql_url, db, 50_000, 500, 10)
    second = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_for_copy(conn, second, pair, timeout=60)
    finally:
        code, out = second.stop()
    assert code == 0 and "stopped" in out, out[-3000:]
    assert "errors               0" in out
    assert key_differences(conn, db, "src", "dst") == {"missing": [], "extra": []}
    assert table_fingerprint(conn, db, "src") == table_fingerprint(conn, db, "dst")
    assert table_fingerprint(conn, db, "dst")[0] == 1000 + 1 + 900 + 500
