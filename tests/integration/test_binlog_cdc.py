"""Binlog CDC (``binlogreader``) MySQL → Kafka → MySQL through real MariaDB and Kafka.

Each test runs ``sluice run`` on an endless job in a child process, changes the source while
it runs, waits (with a deadline) until every target equals its source by row count and
CHECKSUM TABLE, then stops the job with SIGTERM. The writers run ``writeMode: insert``, so a
row delivered twice fails the job instead of hiding in an upsert.
"""

from __future__ import annotations

import inspect
import itertools
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
from confluent_kafka.admin import AdminClient

import coordinator.reader_task
from coordinator.plan import safe_name
from coordinator.positions import load_positions
from schemas.events import RowEvent
from schemas.registry import make_registry
from schemas.serde import EventSerde
from testkit.alltypes import COLUMNS, EDGE_ROWS, FILL
from testkit.cdc import NARROW, RunningJob, binlog_position, cdc_job, execute, wait_for_copy
from testkit.kafka import read_topic
from testkit.mysql import mysql_connect, table_fingerprint
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

SCHEMA_CHANGES_ROUTED = "take_schema_changes" in inspect.getsource(coordinator.reader_task)


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
    yield c
    c.close()


def stop(job: RunningJob) -> str:
    code, out = job.stop()
    assert code == 0, f"sluice run exited {code}:\n{out[-4000:]}"
    assert "stopped" in out, out[-2000:]
    return out


# --- (a) every type --------------------------------------------------------------------------


def test_every_type_through_insert_update_delete(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    execute(
        conn,
        f"CREATE TABLE `{db}`.src ({COLUMNS}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        f"CREATE TABLE `{db}`.dst LIKE `{db}`.src",
    )
    start = binlog_position(conn)
    job = RunningJob(
        cdc_job(mysql_url, db, ["src"], db, "dst", name=unique_name, start=start, writers=2),
        tmp_path / "job.json",
        kafka_bootstrap,
    )
    try:
        execute(
            conn,
            f"INSERT INTO `{db}`.src VALUES " + ", ".join(EDGE_ROWS),
            FILL.format(table=f"`{db}`.src", database=f"`{db}`", rows=3000),
            # every column changes in some rows: new values, NULLs, zero dates, empty SETs
            f"UPDATE `{db}`.src SET vc = CONCAT('u', IFNULL(vc, '')), st = IF(id % 2, '', 'a,d'),"
            " b64 = b'101', b1 = NULL, tm = '-01:02:03.5', dt = '0000-00-00', yr = 0,"
            " ts = IF(id % 2, '0000-00-00 00:00:00', ts), js = '{\"u\": 1}', bn = x'01',"
            " en = 'green', f = f / 3, d65 = -d65, biu = 18446744073709551615 WHERE id % 3 = 0",
            f"DELETE FROM `{db}`.src WHERE id % 5 = 0",
            f"UPDATE `{db}`.src SET id = id + 1000000 WHERE id % 7 = 1",  # key changes
        )
        wait_for_copy(conn, job, [((db, "src"), (db, "dst"))], timeout=120)
    finally:
        out = stop(job)
    assert "errors               0" in out


def test_a_key_change_travels_as_a_delete_of_the_old_key_and_an_insert_of_the_new(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    """Keys pick partitions and each partition has its own writer: an update that moves a
    row to a new key, published whole under the new key, reached a writer that had not seen
    the old key's INSERT — the old row came back and the new one was missing (CI, 2 writers).
    Every event must sit under its own row's key, so each key's history is in one partition."""
    db = mysql_database
    execute(conn, "CREATE TABLE src (id INT PRIMARY KEY, v INT)", "CREATE TABLE dst LIKE src")
    start = binlog_position(conn)
    job = RunningJob(
        cdc_job(mysql_url, db, ["src"], db, "dst", name=unique_name, start=start, writers=2),
        tmp_path / "job.json",
        kafka_bootstrap,
    )
    try:
        execute(
            conn,
            "INSERT INTO src VALUES " + ",".join(f"({i}, {i})" for i in range(1, 201)),
            "UPDATE src SET id = id + 1000 WHERE id % 2 = 0",  # key changes
            "UPDATE src SET v = v + 1 WHERE id % 3 = 0",  # in place
        )
        wait_for_copy(conn, job, [((db, "src"), (db, "dst"))], timeout=120)
    finally:
        stop(job)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    (topic,) = [
        t for t in admin.list_topics(timeout=30).topics
        if t.startswith(f"sluice.{safe_name(unique_name)}.") and t.endswith(".data")
    ]  # fmt: skip
    serde = EventSerde(make_registry(kafka_bootstrap, None))
    history: dict[int, list[str]] = {}
    for key, value in read_topic(kafka_bootstrap, topic, 200 + 100 * 2 + 67):
        event = serde.decode(value)
        if not isinstance(event, RowEvent):
            continue  # barriers
        row = event.after if event.after is not None else event.before
        assert row is not None and key == str(row[0]).encode(), (key, event)
        if event.before is not None and event.after is not None:
            assert event.before[0] == event.after[0], f"an update moved a key: {event}"
        history.setdefault(row[0], []).append(event.op.value)
    for i in range(2, 201, 2):
        assert history[i] == ["INSERT", "DELETE"], (i, history[i])
        moved = ["INSERT", "UPDATE"] if (i + 1000) % 3 == 0 else ["INSERT"]
        assert history[i + 1000] == moved, (i + 1000, history[i + 1000])


# --- (b) a concurrent workload ---------------------------------------------------------------


def workload(
    mysql_url: str,
    db: str,
    tables: list[str],
    threads: int,
    ops: int,
    seed: int,
    until: threading.Event | None = None,
) -> Callable[[], None]:
    """Start ``threads`` connections doing ``ops`` random changes each (single-row and
    multi-row transactions, some rolled back), and more until ``until`` is set; returns a
    function that waits for them."""
    errors: list[BaseException] = []

    def run(t: int) -> None:
        rnd = random.Random(seed * 100 + t)
        c = mysql_connect(mysql_url, db)
        next_id = seed * 10_000_000 + t * 1_000_000  # ids of its own, beyond the seed rows
        try:
            with c.cursor() as cur:
                for i in itertools.count():
                    if i >= ops and (until is None or until.is_set()):
                        break
                    if until is not None:
                        time.sleep(0.002)  # a steady trickle while the job works
                    table = rnd.choice(tables)
                    kind = rnd.random()
                    try:
                        if kind < 0.45:
                            next_id += 1
                            cur.execute(
                                f"INSERT INTO {table} (id, k, v, amount, at) "
                                "VALUES (%s, %s, %s, %s, NOW(6))",
                                (
                                    next_id,
                                    rnd.randint(0, 99),
                                    f"v{next_id}",
                                    rnd.randint(0, 10**6) / 100,
                                ),
                            )
                        elif kind < 0.70:
                            cur.execute(
                                f"UPDATE {table} SET v = CONCAT(v, 'u'), amount = amount + 1, "
                                "at = NOW(6) WHERE k = %s ORDER BY id DESC LIMIT 3",
                                (rnd.randint(0, 99),),
                            )
                        elif kind < 0.80:
                            cur.execute(
                                f"DELETE FROM {table} WHERE k = %s LIMIT 2", (rnd.randint(0, 99),)
                            )
                        else:  # a transaction over several tables, sometimes rolled back
                            cur.execute("BEGIN")
                            for other in tables:
                                next_id += 1
                                cur.execute(
                                    f"INSERT INTO {other} (id, k, v, amount, at) "
                                    "VALUES (%s, %s, 'txn', 1.5, NOW(6))",
                                    (next_id, rnd.randint(0, 99)),
                                )
                                cur.execute(
                                    f"UPDATE {other} SET k = k + 1 WHERE id = %s", (next_id - 7,)
                                )
                            cur.execute("ROLLBACK" if kind > 0.95 else "COMMIT")
                    except pymysql.err.OperationalError as e:
                        if e.args[0] not in (1205, 1213):  # lock wait timeout, deadlock
                            raise
                        cur.execute("ROLLBACK")
        except BaseException as e:  # noqa: BLE001 - reported by the waiter
            errors.append(e)
        finally:
            c.close()

    workers = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()

    def wait() -> None:
        for w in workers:
            w.join(120)
        if errors:
            raise errors[0]

    return wait


def three_tables(conn, db: str, target_db: str) -> list[str]:
    tables = ["t0", "t1", "t2"]
    for t in tables:
        execute(
            conn,
            f"CREATE TABLE `{db}`.{t} ({NARROW}) ENGINE=InnoDB",
            f"CREATE TABLE `{target_db}`.{t} LIKE `{db}`.{t}",
        )
    return tables


def test_concurrent_workload_on_three_tables(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    tables = three_tables(conn, db, target_db)
    start = binlog_position(conn)
    job = RunningJob(
        cdc_job(mysql_url, db, tables, target_db, "*", name=unique_name, start=start, writers=3),
        tmp_path / "job.json",
        kafka_bootstrap,
    )
    try:
        workload(mysql_url, db, tables, threads=4, ops=400, seed=1)()
        wait_for_copy(conn, job, [((db, t), (target_db, t)) for t in tables], timeout=60)
    finally:
        stop(job)


@pytest.mark.skipif(
    not SCHEMA_CHANGES_ROUTED,
    reason="coordinator/reader_task.py does not write SchemaChange records to the data topic "
    "yet (take_schema_changes); see the binlogreader section of README.md",
)
def test_alter_table_in_the_middle_of_a_workload(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    tables = three_tables(conn, db, target_db)
    start = binlog_position(conn)
    job = RunningJob(
        cdc_job(mysql_url, db, tables, target_db, "*", name=unique_name, start=start, writers=3),
        tmp_path / "job.json",
        kafka_bootstrap,
    )
    pairs = [((db, t), (target_db, t)) for t in tables]
    try:
        workload(mysql_url, db, tables, threads=4, ops=100, seed=2)()
        wait_for_copy(conn, job, pairs, timeout=60)  # the job runs and has caught up
        altered = threading.Event()
        more = workload(mysql_url, db, tables, threads=4, ops=150, seed=3, until=altered)
        time.sleep(0.2)
        execute(conn, f"ALTER TABLE `{db}`.t1 ADD COLUMN note VARCHAR(32) AFTER v")
        altered.set()
        execute(
            conn,
            f"INSERT INTO `{db}`.t1 SELECT seq, 1, 'new', 'n', 1, NOW(6) FROM `{db}`.seq_9000000_to_9000049",
            f"UPDATE `{db}`.t1 SET note = CONCAT('set', id) WHERE k < 50",
        )
        more()
        wait_for_copy(conn, job, pairs, timeout=60)
    finally:
        stop(job)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 't1' ORDER BY ORDINAL_POSITION",
            (target_db,),
        )
        assert [r[0] for r in cur.fetchall()] == ["id", "k", "v", "note", "amount", "at"]


# --- (c) initial snapshot while the source changes --------------------------------------------


def test_initial_snapshot_while_writes_continue(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    execute(
        conn,
        f"CREATE TABLE `{db}`.src ({NARROW}) ENGINE=InnoDB",
        f"INSERT INTO `{db}`.src SELECT seq, seq % 100, CONCAT('s', seq), seq / 100, NOW(6) "
        f"FROM `{db}`.seq_1_to_20000",
        f"CREATE TABLE `{db}`.dst LIKE `{db}`.src",
    )
    job = RunningJob(
        cdc_job(
            mysql_url,
            db,
            ["src"],
            db,
            "dst",
            name=unique_name,
            start={"mode": "initial"},
            writers=2,
            reader_extra={"fetchSize": 200},
        ),
        tmp_path / "job.json",
        kafka_bootstrap,
    )
    snapshot_half_done = threading.Event()
    # Writes from before the job plans until its snapshot is half copied, and a bit more.
    wait_writes = workload(
        mysql_url, db, ["src"], threads=2, ops=100, seed=3, until=snapshot_half_done
    )
    try:

        def half_copied() -> bool:
            job.assert_running()
            return table_fingerprint(conn, db, "dst")[0] >= 10_000

        try:
            wait_until(half_copied, 60, "half the snapshot to land")
        finally:
            snapshot_half_done.set()
            wait_writes()
        wait_for_copy(conn, job, [((db, "src"), (db, "dst"))], timeout=60)
    finally:
        stop(job)


def test_initial_snapshot_resumes_after_a_crash_midway(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    """Killed in the middle of its snapshot, a job resumes with a new snapshot of the rest;
    binlog events already in that snapshot are skipped, the others applied."""
    db = mysql_database
    execute(
        conn,
        f"CREATE TABLE `{db}`.src ({NARROW}) ENGINE=InnoDB",
        f"INSERT INTO `{db}`.src SELECT seq, seq % 100, CONCAT('s', seq), seq / 100, NOW(6) "
        f"FROM `{db}`.seq_1_to_30000",
        f"CREATE TABLE `{db}`.dst LIKE `{db}`.src",
    )
    spec = cdc_job(
        mysql_url, db, ["src"], db, "dst", name=unique_name, start={"mode": "initial"},
        writers=2, reader_extra={"fetchSize": 100}, restore=True,
    )  # fmt: skip
    # Throttled so the kill lands inside the snapshot however fast the reader and however slow
    # the position lookup (the offsets topic grows with the suite): 30,000 rows take >= 10 s.
    spec["job"]["setting"]["speed"]["record"] = 3000
    done = threading.Event()
    writes = workload(mysql_url, db, ["src"], threads=2, ops=50, seed=6, until=done)
    first = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    key = f"{safe_name(unique_name)}/"
    try:  # kill it as soon as the reader has committed part of its snapshot
        wait_until(
            lambda: first.assert_running() or bool(load_positions(kafka_bootstrap, key)),
            60,
            "the reader to commit a snapshot position",
        )
    finally:
        first.kill()
    saved = [p.position for p in load_positions(kafka_bootstrap, key).values()]
    assert [p.get("phase") for p in saved] == ["snapshot"], f"not stopped mid-snapshot: {saved}"
    second = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        time.sleep(0.5)
        done.set()
        writes()
        wait_for_copy(conn, second, [((db, "src"), (db, "dst"))], timeout=120)
    finally:
        stop(second)


# --- (d) stop, change, resume -----------------------------------------------------------------


def test_restart_resumes_from_the_saved_position(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path: Path
):
    db = mysql_database
    execute(
        conn,
        f"CREATE TABLE `{db}`.src ({NARROW}) ENGINE=InnoDB",
        f"CREATE TABLE `{db}`.dst LIKE `{db}`.src",
    )
    spec = cdc_job(
        mysql_url, db, ["src"], db, "dst", name=unique_name, start=binlog_position(conn),
        writers=2, restore=True,
    )  # fmt: skip
    first = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        workload(mysql_url, db, ["src"], threads=2, ops=200, seed=4)()
        wait_for_copy(conn, first, [((db, "src"), (db, "dst"))], timeout=60)
    finally:
        stop(first)
    # While nothing reads: more changes, including to rows the first run copied.
    workload(mysql_url, db, ["src"], threads=2, ops=200, seed=5)()
    second = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_for_copy(conn, second, [((db, "src"), (db, "dst"))], timeout=60)
    finally:
        out = stop(second)
    assert "errors               0" in out
