"""Crash tests of the exactly-once protocol (issue 4), against real Kafka and MariaDB.

A 200,000-row table is copied with 3 reader and 3 writer tasks while tasks are SIGKILLed at
the protocol's critical points — mid-transaction, between XA PREPARE and the Kafka commit,
between the Kafka commit and XA COMMIT — the broker is SIGKILLed for 10 s, and the whole
`sluice run` is killed and started again. The target has no unique key on ``id``, so a
duplicate would show as a second row: the check lists exactly which ids are missing and
which are duplicated, and both lists must be empty. Afterwards no XA transaction is left
prepared and no Kafka transaction is left open.

The short fixed-seed version runs in `make test`; `make chaos` (SLUICE_CHAOS_LONG=1) runs the
long randomized one and prints how many faults it injected and survived.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from coordinator.errors import TaskFailed
from coordinator.job import build_job
from coordinator.local.kafka import LocalKafka
from coordinator.local.stack import LocalStack
from coordinator.local_run import LocalJobRunner
from coordinator.plan import sink_txn_namespace
from testkit.mysql import mysql_connect, mysql_job

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS = 200_000
LONG = os.environ.get("SLUICE_CHAOS_LONG") == "1"


# -- workload and checks ------------------------------------------------------------------
def make_tables(conn, db: str, rows: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE `{db}`.src (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(20,4),"
            " at DATETIME(6))"
        )
        cur.execute(
            f"INSERT INTO `{db}`.src SELECT seq, CONCAT('name-', seq, IF(seq % 7 = 0, ' 😀', '')),"
            f" seq * 1.0001, TIMESTAMP('2020-01-01') + INTERVAL seq SECOND FROM `{db}`.seq_1_to_{rows}"
        )
        # No unique key on id: a row applied twice stays visible as a duplicate.
        cur.execute(
            f"CREATE TABLE `{db}`.dst (row_id BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL,"
            " name VARCHAR(40), amount DECIMAL(20,4), at DATETIME(6), KEY (id))"
        )


def differences(conn, db: str) -> dict[str, list[int]]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT s.id FROM `{db}`.src s LEFT JOIN `{db}`.dst d ON d.id = s.id WHERE d.id IS NULL ORDER BY 1"
        )
        missing = [r[0] for r in cur.fetchall()]
        cur.execute(f"SELECT id FROM `{db}`.dst GROUP BY id HAVING COUNT(*) > 1 ORDER BY 1")
        duplicated = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"SELECT s.id FROM `{db}`.src s JOIN `{db}`.dst d ON d.id = s.id "
            "WHERE NOT (s.name <=> d.name AND s.amount <=> d.amount AND s.at <=> d.at) ORDER BY 1 LIMIT 20"
        )
        changed = [r[0] for r in cur.fetchall()]
    return {"missing": missing, "duplicated": duplicated, "changed": changed}


def assert_exact(conn, db: str) -> None:
    diff = differences(conn, db)
    summary = {k: (len(v), v[:20]) for k, v in diff.items()}
    assert diff == {"missing": [], "duplicated": [], "changed": []}, f"target != source: {summary}"


def assert_no_prepared_xa(conn, run_base: str) -> None:
    """No XA transaction of this run (``sluice.<job>.<run>``) is left prepared. Only this
    run's: other jobs on the same server may hold theirs for a moment."""
    namespace = sink_txn_namespace(run_base).encode()
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        assert [r[3] for r in cur.fetchall() if r[3].startswith(namespace)] == []


def assert_no_open_kafka_transaction(bootstrap: str, topic: str, partitions: int) -> None:
    """A marker written now must be readable by a read_committed consumer: an open (hung)
    transaction would hold the last stable offset back and hide it."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        producer.produce(topic, b"not-avro-marker", b"marker", partition=p)
    producer.flush(30)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}.marker",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), cached=False)[1]
            for p in range(partitions)
        }
        consumer.assign([TopicPartition(topic, p, max(0, ends[p] - 1)) for p in range(partitions)])
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seen) < partitions and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None and m.value() == b"not-avro-marker":
                seen.add(m.partition())
        assert seen == set(range(partitions)), (
            f"markers hidden on partitions {set(range(partitions)) - seen}"
        )
    finally:
        consumer.close()


def job_dict(
    mysql_url: str, db: str, name: str, *, restore: bool = False, rows_per_s: int = 0
) -> dict:
    job = mysql_job(
        mysql_url,
        db,
        "src",
        "dst",
        name=name,
        channel=3,
        write_mode="insert",
        writer_extra={"column": ["id", "name", "amount", "at"], "batchSize": 1000},
        setting_extra={
            "restore": {
                "checkpointInterval": 300,
                "maxRestarts": 20,
                "isRestore": restore,
                "restoreColumnName": "id",
            },
            # A cap (speed.record) keeps a run long enough to be killed midway.
            "speed": {"channel": 3, "record": rows_per_s},
        },
    )
    return job


def target_rows(conn, db: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.dst")
        return int(cur.fetchone()[0])


def local_kafka(bootstrap: str) -> tuple[LocalStack, LocalKafka] | None:
    """The broker process, if the test Kafka is the project's local one (we may kill it)."""
    stack = LocalStack.from_env(root=REPO_ROOT)
    for server in stack.servers:
        if (
            isinstance(server, LocalKafka)
            and server.bootstrap == bootstrap
            and server.running_pid()
        ):
            return stack, server
    return None


def kill_and_restart_broker(stack: LocalStack, kafka: LocalKafka, down_s: float) -> None:
    pid = kafka.running_pid()
    assert pid is not None
    # Restarted the way it was started: servers the test session started stay its to stop.
    for_tests = "kafka" in stack.started_for_tests()
    os.kill(pid, signal.SIGKILL)
    time.sleep(down_s)
    stack.up(for_tests=for_tests, only=["kafka"])


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# -- the tests ------------------------------------------------------------------------------
FIXED_FAULTS = (
    "reader-0:mid_txn:30,reader-2:after_commit:4,"
    "writer-0:after_prepare:2,writer-1:after_kafka_commit:2,writer-2:mid_write:6"
)


def test_task_and_broker_kills_lose_nothing_and_duplicate_nothing(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch
):
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, ROWS)
    monkeypatch.setenv("SLUICE_FAULTS", FIXED_FAULTS)
    # The faults count checkpoints (reader-2 dies after its 4th commit): at 30,000 rows/s the
    # copy spans ~20 checkpoints, where an uncapped one on a fast machine could finish in
    # three and leave a fault unfired.
    job = build_job(job_dict(mysql_url, mysql_database, unique_name, rows_per_s=30_000))
    broker = local_kafka(kafka_bootstrap)
    killer = None
    if broker is not None:

        def kill_broker_midway() -> None:
            wait_for(
                lambda: target_rows(conn2, mysql_database) >= ROWS // 4,
                300,
                "a quarter of the rows",
            )
            kill_and_restart_broker(*broker, down_s=10)  # issue 8: a broker away for 10 s

        conn2 = mysql_connect(mysql_url)
        killer = threading.Thread(target=kill_broker_midway, daemon=True)
        killer.start()
    summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    if killer is not None:
        killer.join(timeout=120)
    assert summary.status == "finished"
    assert summary.restarts >= 5, "every injected task fault must have fired and been survived"
    assert summary.numRead == ROWS and summary.numWrite == ROWS
    assert_exact(conn, mysql_database)
    assert_no_prepared_xa(conn, f"sluice.{unique_name}.{summary.run}")
    data_topic = f"sluice.{unique_name}.{summary.run}.data"
    assert_no_open_kafka_transaction(kafka_bootstrap, data_topic, 3)


def test_killed_run_resumes_from_its_last_checkpoint(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, ROWS)
    path = tmp_path / "job.json"
    # 200,000 rows take ~4 s unthrottled: at 25,000 rows/s the kill at a third lands midway.
    job = job_dict(mysql_url, mysql_database, unique_name, restore=True, rows_per_s=25_000)
    path.write_text(json.dumps(job))
    cmd = [
        sys.executable,
        "-m",
        "coordinator.cli",
        "run",
        str(path),
        "-q",
        "--bootstrap-servers",
        kafka_bootstrap,
    ]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: target_rows(conn, mysql_database) >= ROWS // 3, 300, "a third of the rows")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    partial = target_rows(conn, mysql_database)
    assert 0 < partial < ROWS
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = re.search(r"resuming run (\S+) of job", second.stderr)
    assert resumed, second.stderr[-3000:]
    assert_exact(conn, mysql_database)
    assert_no_prepared_xa(conn, f"sluice.{unique_name}.{resumed.group(1)}")


@pytest.mark.skipif(not LONG, reason="long randomized chaos: make chaos")
def test_randomized_chaos(mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch):
    seed = int(os.environ.get("SLUICE_CHAOS_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    rows = int(os.environ.get("SLUICE_CHAOS_ROWS", "1000000"))
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, rows)
    points = {
        "reader": ["mid_txn", "after_commit"],
        "writer": ["mid_write", "after_prepare", "after_kafka_commit"],
    }
    faults = []
    for kind, n_tasks in (("reader", 3), ("writer", 3)):
        for i in range(n_tasks):
            point = rng.choice(points[kind])
            faults.append(f"{kind}-{i}:{point}:{rng.randint(1, 12)}")
    monkeypatch.setenv("SLUICE_FAULTS", ",".join(faults))
    broker = local_kafka(kafka_bootstrap)
    broker_kills = 0
    conn2 = mysql_connect(mysql_url)

    def kill_broker_at_random() -> None:
        nonlocal broker_kills
        for fraction in sorted(rng.uniform(0.1, 0.9) for _ in range(rng.randint(1, 3))):
            wait_for(
                lambda f=fraction: target_rows(conn2, mysql_database) >= rows * f, 900, "progress"
            )
            assert broker is not None
            kill_and_restart_broker(*broker, down_s=rng.uniform(1, 10))
            broker_kills += 1

    killer = threading.Thread(target=kill_broker_at_random, daemon=True) if broker else None
    if killer:
        killer.start()
    job = build_job(job_dict(mysql_url, mysql_database, unique_name))
    summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    if killer:
        killer.join(timeout=300)
    print(
        json.dumps(
            {
                "seed": seed,
                "rows": rows,
                "task_faults": faults,
                "task_restarts": summary.restarts,
                "broker_kills": broker_kills,
                "survived": True,
            }
        )
    )
    assert summary.status == "finished"
    assert_exact(conn, mysql_database)
    assert_no_prepared_xa(conn, f"sluice.{unique_name}.{summary.run}")


def test_at_least_once_mode_loses_nothing_but_may_duplicate(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch
):
    """The comparison mode: no XA, no Kafka transactions. A writer killed after its sink
    commit but before its offsets commit re-applies that batch: nothing is lost, and the
    duplicates this check finds are what exactly-once mode exists to prevent."""
    rows = 50_000
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, rows)
    monkeypatch.setenv("SLUICE_FAULTS", "writer-1:after_prepare:1")
    job = job_dict(mysql_url, mysql_database, unique_name)
    job["job"]["setting"]["delivery"] = "at-least-once"
    summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished" and summary.restarts == 1
    diff = differences(conn, mysql_database)
    assert diff["missing"] == [] and diff["changed"] == []
    assert diff["duplicated"], "the killed writer's last batch should have been applied twice"


def test_unconfirmed_kafka_commit_is_settled_not_rolled_back(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch
):
    """Kafka committed a checkpoint but the writer only saw a timeout (a broker bounce does
    that). Rolling the prepared XA back would lose those rows for good — their offsets are
    committed. The writer must restart and let recovery commit them."""
    rows = 30_000
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, rows)
    monkeypatch.setenv("SLUICE_FAULTS", "writer-1:commit_unconfirmed:1")
    job = build_job(job_dict(mysql_url, mysql_database, unique_name))
    summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished" and summary.restarts == 1
    assert_exact(conn, mysql_database)
    assert_no_prepared_xa(conn, f"sluice.{unique_name}.{summary.run}")


def test_connections_killed_by_the_server_are_retried(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    """KILL every connection of the job from the MariaDB side mid-copy (readers' streaming
    queries, writers' open XA transactions): the tasks restart and the target is exact."""
    rows = 100_000
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, rows)
    killed: list[int] = []

    def kill_connections() -> None:
        admin = mysql_connect(mysql_url)
        wait_for(
            lambda: target_rows(admin, mysql_database) >= rows // 4, 300, "a quarter of the rows"
        )
        deadline = time.monotonic() + 30
        with admin.cursor() as cur:
            # Between two statements a task may hold no connection: look again until the
            # job's connections are there to kill.
            while not killed and time.monotonic() < deadline:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST"
                    " WHERE DB = %s AND ID <> CONNECTION_ID()",
                    (mysql_database,),
                )
                for (conn_id,) in cur.fetchall():
                    cur.execute(f"KILL {int(conn_id)}")
                    killed.append(conn_id)
                time.sleep(0.05)

    killer = threading.Thread(target=kill_connections, daemon=True)
    killer.start()
    # The cap keeps the copy running for ~10 s: on a fast machine an uncapped copy could
    # commit everything at its final checkpoint and close its connections before the
    # killer sees a quarter of the rows.
    job = job_dict(mysql_url, mysql_database, unique_name, rows_per_s=10_000)
    summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    killer.join(timeout=60)
    assert killed, "no connection of the job was found to kill"
    assert summary.status == "finished" and summary.restarts >= 1
    assert_exact(conn, mysql_database)
    assert_no_prepared_xa(conn, f"sluice.{unique_name}.{summary.run}")


def test_a_fresh_run_settles_what_a_failed_run_left_prepared(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch
):
    """A run that dies for good between a writer's Kafka commit and its XA COMMIT, and is not
    resumed, leaves a decided XA transaction prepared: its rows invisible and their locks
    held. The job's next fresh run commits it before it touches the target."""
    rows = 20_000
    conn = mysql_connect(mysql_url)
    make_tables(conn, mysql_database, rows)
    with conn.cursor() as cur:  # replace mode: the second, fresh run copies everything again
        cur.execute(f"ALTER TABLE `{mysql_database}`.dst DROP PRIMARY KEY, DROP COLUMN row_id")
        cur.execute(f"ALTER TABLE `{mysql_database}`.dst DROP KEY id, ADD PRIMARY KEY (id)")
    job = job_dict(mysql_url, mysql_database, unique_name)
    job["job"]["content"][0]["writer"]["parameter"]["writeMode"] = "replace"
    job["job"]["setting"]["restore"]["maxRestarts"] = 0
    monkeypatch.setenv("SLUICE_FAULTS", "writer-1:after_kafka_commit:1")
    with pytest.raises(TaskFailed):
        LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        left = [r[3] for r in cur.fetchall() if r[3].startswith(b"sl-")]
    assert left, "the failed run should have left its decided transaction prepared"

    monkeypatch.delenv("SLUICE_FAULTS")
    summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished"
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        assert not {r[3] for r in cur.fetchall()} & set(left)
    assert_exact(conn, mysql_database)
