"""``postgresqlreader`` with ``increColumn`` through real PostgreSQL and Kafka: the safety
window against an out-of-order commit, resuming among rows that share a timestamp (with and
without a key, and with customSql), a bounded ``useMaxFunc`` read, an endless polling job
under concurrent writers, and a bad ``increColumn`` as one line. (The logic is shared with
``mysqlreader``: tests/integration/test_polling.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.errors import ConfigError
from coordinator.job import build_job
from testkit.cdc import RunningJob
from testkit.postgres import pg_connect, pg_reader, pg_writer
from testkit.readers import (
    ids_read_restarting_after_every_batch,
    missing_and_duplicated,
    open_reader,
    read_for,
    read_until,
)
from testkit.wait import wait_until

pytestmark = pytest.mark.integration


def job_of(postgres_url: str, db: str, name: str, **reader: Any) -> dict[str, Any]:
    return {
        "job": {
            "name": name,
            "content": [{
                "reader": pg_reader(postgres_url, db, "public.src", **{"fetchSize": 50, **reader}),
                "writer": pg_writer(postgres_url, db, "public.dst"),
            }],
            "setting": {"speed": {"readerChannel": 1, "writerChannel": 2},
                        "restore": {"checkpointInterval": 300}},
        }
    }  # fmt: skip


def test_out_of_order_commit_is_read_within_the_safety_window(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """Txn A takes id 2 from the sequence and stays open; B takes 3 and commits first: the
    reader waits out the window and reads 2 once A commits, then 3."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE src (id bigserial PRIMARY KEY, v text)")
    conn.execute("INSERT INTO src (v) VALUES ('first')")
    job = job_of(postgres_url, db, unique_name, increColumn="id", polling=True,
                 pollingInterval=100, pollingSafetyWindow=1500)  # fmt: skip
    reader = open_reader(job)
    try:
        assert [r[0] for r in read_until(reader, 1, 10)] == [1]
        a = pg_connect(postgres_url, db)
        a.autocommit = False
        a.execute("INSERT INTO src (v) VALUES ('A, committed late')")
        conn.execute("INSERT INTO src (v) VALUES ('B, committed first')")
        early = read_for(reader, 0.6)
        a.commit()
        a.close()
        late = read_until(reader, 2, 10)
    finally:
        reader.close()
        conn.close()
    assert early == [], "a row was read before it was a safety window old"
    assert [r[0] for r in late] == [2, 3]


@pytest.mark.parametrize("shape", ["primary key", "no key", "customSql"])
def test_non_unique_timestamp_resumes_without_loss_or_duplicate(
    postgres_url: str, postgres_database: str, unique_name: str, shape: str
) -> None:
    """Rows sharing each timestamp, the reader restarted from its position after every batch
    (fetchSize 7 cuts through the groups): every row once."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    key = "PRIMARY KEY" if shape == "primary key" else ""
    conn.execute(f"CREATE TABLE src (id int NOT NULL {key}, ts timestamptz NOT NULL, v int)")
    conn.execute("INSERT INTO src SELECT g, timestamptz '2026-01-01 00:00+00' + (g / 25) *"
                 " interval '1 second', g * 7 FROM generate_series(1, 300) g")  # fmt: skip
    conn.close()
    extra = {"customSql": "SELECT id, ts, v FROM src WHERE v > 0"} if shape == "customSql" else {}
    job = job_of(postgres_url, db, unique_name, increColumn="ts", fetchSize=7, **extra)
    seen = ids_read_restarting_after_every_batch(job)
    assert sorted(seen) == list(range(1, 301)), missing_and_duplicated(seen, range(1, 301))


def test_use_max_func_reads_up_to_the_maximum_and_the_next_run_goes_on(
    postgres_url: str, postgres_database: str, unique_name: str, kafka_bootstrap: str
) -> None:
    """useMaxFunc from startLocation: [start, max) now, the rows at max and after in the next
    run started there; together every row exactly once (writeMode insert: a second copy of a
    row would be a duplicate key)."""
    from coordinator.local_run import LocalJobRunner

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE src (id int PRIMARY KEY, n numeric(20,4) NOT NULL, v text)")
    conn.execute("CREATE TABLE dst (id int PRIMARY KEY, n numeric(20,4) NOT NULL, v text)")
    conn.execute("INSERT INTO src SELECT g, g / 4.0, 'v' || g FROM generate_series(1, 400) g")

    def run(start: str, name: str) -> None:
        job = job_of(postgres_url, db, name, increColumn="n", useMaxFunc=True,
                     startLocation=start, pollingSafetyWindow=200)  # fmt: skip
        summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
        assert summary.status == "finished", summary

    run("10", f"{unique_name}_1")  # n in [10, 100): ids 40..399
    assert conn.execute("SELECT min(id), max(id), count(*) FROM dst").fetchone() == (40, 399, 360)
    conn.execute("INSERT INTO src SELECT g, g / 4.0, 'late' FROM generate_series(401, 420) g")
    run("100", f"{unique_name}_2")  # [100, 105): ids 400..419; 420 (n = 105) is left
    assert conn.execute("SELECT min(id), max(id), count(*) FROM dst").fetchone() == (40, 419, 380)
    conn.close()


def test_polling_job_copies_rows_written_by_concurrent_clients(
    postgres_url: str, postgres_database: str, unique_name: str, kafka_bootstrap: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """3 clients insert through a sequence (their commits interleave) while an endless
    polling job runs: the target ends equal to the source, each row once."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE src (id bigserial PRIMARY KEY, client int, at timestamptz)")
    conn.execute("CREATE TABLE dst (id bigint PRIMARY KEY, client int, at timestamptz)")
    job = job_of(postgres_url, db, unique_name, increColumn="id", polling=True,
                 pollingInterval=200, pollingSafetyWindow=500)  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)

    def client(n: int) -> None:
        c = pg_connect(postgres_url, db)
        for i in range(60):
            c.execute("INSERT INTO src (client, at) SELECT %s, now() FROM generate_series(1, %s)",
                      (n, 1 + i % 5))  # fmt: skip
            time.sleep(0.01)
        c.close()

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        query = "SELECT * FROM {} ORDER BY id"

        def copied() -> bool:
            running.assert_running()
            return (conn.execute(query.format("dst")).fetchall()
                    == conn.execute(query.format("src")).fetchall())  # fmt: skip

        wait_until(copied, 60, "the target to have every row")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    assert conn.execute("SELECT count(*) FROM dst").fetchone() == (
        3 * sum(1 + i % 5 for i in range(60)),
    )
    conn.close()


def test_a_bad_incre_column_is_one_line(postgres_url: str, postgres_database: str) -> None:
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE src (id int PRIMARY KEY, doc jsonb, ts timestamp)")
    conn.close()
    cases = [
        ({"increColumn": "nope"}, "column 'nope' does not exist in table public.src"),
        ({"increColumn": "doc"}, "increColumn must be an ascending integer"),
        ({"increColumn": "ts", "column": ["id"]}, "must be read too"),
        ({"increColumn": "ts", "startLocation": "yesterday"}, "startLocation: 'yesterday'"),
    ]
    for extra, fragment in cases:
        with pytest.raises(ConfigError) as refused:
            build_source(build_job(job_of(postgres_url, db, "bad", **extra))).check()
        assert fragment in str(refused.value), str(refused.value)
        assert "\n" not in str(refused.value)
