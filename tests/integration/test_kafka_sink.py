"""kafkawriter through real MariaDB and Kafka: binlog CDC in the Debezium envelope, a snapshot
with writer tasks killed inside and after their Kafka transaction, FlinkX's pavingData rows,
and bad configuration. Output is read back by a plain ``read_committed`` consumer, the way a
Debezium consumer would read it, and checked key by key: every change once, in order."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from schemas.registry import make_registry
from schemas.serde import EventSerde
from testkit.cdc import RunningJob, binlog_position, execute
from testkit.kafka import read_topic
from testkit.mysql import jdbc_url, mysql_connect, mysql_job, mysql_params

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    yield c
    c.close()


def binlog_kafka_job(
    mysql_url: str, db: str, table: str, name: str, start: dict, writer: dict, **reader: Any
) -> dict:
    p = mysql_params(mysql_url)
    return {
        "job": {
            "name": name,
            "content": [
                {
                    "reader": {
                        "name": "binlogreader",
                        "parameter": {
                            "jdbcUrl": jdbc_url(mysql_url, db),
                            "username": p["user"],
                            "password": p["password"],
                            "table": [table],
                            "start": start,
                            "heartbeatInterval": 100,
                            **reader,
                        },
                    },
                    "writer": {"name": "kafkawriter", "parameter": writer},
                }
            ],
            "setting": {
                "speed": {"readerChannel": 1, "writerChannel": 2},
                "restore": {"checkpointInterval": 300},
            },
        }
    }


def stop(job: RunningJob) -> None:
    code, out = job.stop()
    assert code == 0, f"sluice run exited {code}:\n{out[-4000:]}"


# --- (1) binlog → Debezium envelope -----------------------------------------------------------


def test_binlog_changes_arrive_once_each_in_the_debezium_envelope(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    db = mysql_database
    execute(
        conn,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), amount DECIMAL(10,2), at DATETIME(6))",
    )
    start = binlog_position(conn)
    topic_pattern = f"{unique_name}.${{schema}}.${{table}}"
    job = binlog_kafka_job(
        mysql_url, db, "t", unique_name, start, {"topic": topic_pattern, "serverName": "dbserver1"}
    )
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        for lo in range(1, 301, 100):  # three multi-row transactions
            values = ",".join(
                f"({i}, 'v{i}', {i}.25, '2024-05-01 12:00:00.{i:06d}')" for i in range(lo, lo + 100)
            )
            execute(conn, f"INSERT INTO t VALUES {values}")
        execute(conn, "UPDATE t SET v = CONCAT('u', id) WHERE id <= 100")
        execute(conn, "DELETE FROM t WHERE id BETWEEN 201 AND 250")
        execute(conn, "UPDATE t SET id = 1000 WHERE id = 300")
        execute(conn, "START TRANSACTION", "INSERT INTO t VALUES (5000, 'no', 0, NULL)", "ROLLBACK")
        # ids 1-100: c,u; 101-200 and 251-299: c; 201-250: c,d,tombstone; 300: c,d,tombstone;
        # 1000: c
        expected = 100 * 2 + 100 + 49 + 50 * 3 + 1 * 3 + 1
        topic = f"{unique_name}.{db}.t"
        records = read_topic(kafka_bootstrap, topic, expected)
        running.assert_running()
    finally:
        stop(running)
    by_key: dict[int, list[tuple[str | None, Any, Any]]] = defaultdict(list)
    for key, value in records:
        k = json.loads(key)
        assert set(k) == {"id"}, k
        if value is None:
            by_key[k["id"]].append((None, None, None))
            continue
        v = json.loads(value)
        assert set(v) == {"before", "after", "source", "op", "ts_ms", "transaction"}
        src = v["source"]
        assert src["connector"] == "mysql" and src["name"] == "dbserver1"
        assert (src["db"], src["table"], src["snapshot"]) == (db, "t", "false")
        assert src["file"].startswith(start["journalName"].split(".")[0]) and src["pos"] >= 4
        assert src["gtid"] and src["server_id"] > 0 and src["ts_ms"] > 0 and v["ts_ms"] > 0
        by_key[k["id"]].append((v["op"], v["before"], v["after"]))

    def row(i: int, v: str | None = None) -> dict:
        return {
            "id": i,
            "v": v or f"v{i}",
            "amount": f"{i}.25",
            "at": calendar.timegm((2024, 5, 1, 12, 0, 0)) * 10**6 + i,  # epoch µs, as UTC
        }

    want: dict[int, list[tuple[str | None, Any, Any]]] = {}
    for i in range(1, 300):
        want[i] = [("c", None, row(i))]
        if i <= 100:
            want[i].append(("u", row(i), row(i, f"u{i}")))
        if 201 <= i <= 250:
            want[i] += [("d", row(i), None), (None, None, None)]
    moved = row(300)
    want[300] = [("c", None, row(300)), ("d", row(300), None), (None, None, None)]
    want[1000] = [("c", None, {**moved, "id": 1000})]
    wrong = {k: (by_key.get(k), w) for k, w in want.items() if by_key.get(k) != w}
    extra = sorted(set(by_key) - set(want))
    assert not wrong and not extra, f"keys wrong: {dict(list(wrong.items())[:5])}, extra: {extra}"
    assert len(records) == expected


# --- (2) snapshot with writer crashes: exactly once ---------------------------------------------


def test_snapshot_with_writers_killed_in_and_after_the_kafka_transaction_is_exactly_once(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, monkeypatch
):
    rows = 10_000
    execute(conn, "CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(40), n INT)")
    for lo in range(0, rows, 5000):
        values = ",".join(f"({i}, 'name-{i}', {i % 97})" for i in range(lo + 1, lo + 5001))
        execute(conn, f"INSERT INTO src VALUES {values}")
    topic = f"{unique_name}.out"
    job = mysql_job(mysql_url, mysql_database, "src", "unused", name=unique_name, channel=2)
    job["job"]["content"][0]["writer"] = {
        "name": "kafkawriter",
        "parameter": {"topic": topic, "format": "json", "tableFields": ["id", "name"]},
    }
    job["job"]["setting"]["restore"] = {
        # Checkpoints triggered by rows read only, so every Kafka transaction carries rows.
        "checkpointInterval": 60_000,
        "maxRowNumForCheckpoint": 2500,
        "maxRestarts": 5,
    }
    # writer-0 dies inside its 1st Kafka transaction (records produced, not committed),
    # writer-1 right after its 1st commit: neither may lose or repeat a row.
    monkeypatch.setenv(
        "SLUICE_FAULTS", "writer-0:before_kafka_commit:1,writer-1:after_kafka_commit:1"
    )
    summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished" and summary.restarts == 2, summary
    records = read_topic(kafka_bootstrap, topic, rows)
    ids = Counter(json.loads(v)["after"]["id"] for _, v in records)
    missing = sorted(set(range(1, rows + 1)) - set(ids))
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    assert not missing and not duplicated, f"missing {missing[:20]}, duplicated {duplicated[:20]}"
    assert len(records) == rows
    sample = json.loads(dict(records)[b'{"id":42}'])
    assert sample["after"] == {"id": 42, "name": "name-42"} and sample["type"] == "INSERT"
    assert summary.numWrite == rows
    # The killed transaction's records did reach the log: only read_committed hides them.
    everything = read_topic(kafka_bootstrap, topic, rows, committed=False, timeout=20)
    assert len(everything) > len(records)


def test_at_least_once_delivery_writes_every_row(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    """Without Kafka transactions the records are produced and flushed before the offsets
    commit: nothing lost (a crash could repeat some, which is what at-least-once means)."""
    execute(conn, "CREATE TABLE src (id INT PRIMARY KEY, name VARCHAR(10))")
    execute(conn, "INSERT INTO src VALUES " + ",".join(f"({i}, 'n{i}')" for i in range(1, 1001)))
    job = mysql_job(mysql_url, mysql_database, "src", "unused", name=unique_name, channel=2)
    job["job"]["content"][0]["writer"] = {
        "name": "kafkawriter",
        "parameter": {"topic": f"{unique_name}.alo", "format": "avro", "partitions": 3},
    }
    job["job"]["setting"]["delivery"] = "at-least-once"
    summary = LocalJobRunner(build_job(job), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished"
    records = read_topic(kafka_bootstrap, f"{unique_name}.alo", 1000)
    keys = sorted(json.loads(k)["id"] for k, _ in records)
    assert keys == list(range(1, 1001))
    serde = EventSerde(make_registry(kafka_bootstrap, None))  # Sluice Avro, wire format
    rows = sorted(serde.decode(v).after for _, v in records)
    assert rows == [(i, f"n{i}") for i in range(1, 1001)]


# --- (3) FlinkX pavingData ---------------------------------------------------------------------


def test_paving_data_reader_gives_flinkx_flat_rows(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    execute(conn, "CREATE TABLE t1 (id INT PRIMARY KEY, value INT)")
    start = binlog_position(conn)
    job = binlog_kafka_job(
        mysql_url,
        mysql_database,
        "t1",
        unique_name,
        start,
        {"topic": {"t1": f"{unique_name}-flat"}},
        pavingData=True,
    )
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        execute(conn, "INSERT INTO t1 VALUES (222222, 2222222)")
        execute(conn, "UPDATE t1 SET value = 1 WHERE id = 222222")
        execute(conn, "DELETE FROM t1 WHERE id = 222222")
        records = read_topic(kafka_bootstrap, f"{unique_name}-flat", 3)
    finally:
        stop(running)
    rows = [json.loads(v) for _, v in records]
    assert [json.loads(k) for k, _ in records] == [{"id": 222222}] * 3
    for r in rows:
        assert r.pop("schema") == mysql_database and r.pop("table") == "t1"
        assert r.pop("ts") >> 22 == r.pop("opTime") > 0
    assert rows == [
        {
            "type": "INSERT",
            "before_id": None,
            "before_value": None,
            "after_id": 222222,
            "after_value": 2222222,
        },
        {
            "type": "UPDATE",
            "before_id": 222222,
            "before_value": 2222222,
            "after_id": 222222,
            "after_value": 1,
        },
        {
            "type": "DELETE",
            "before_id": 222222,
            "before_value": 1,
            "after_id": None,
            "after_value": None,
        },
    ]


# --- (4) bad configuration --------------------------------------------------------------------


def run_cli(job: dict, tmp_path: Path, bootstrap: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "run", str(path), "-q"]
        + ["--bootstrap-servers", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


@pytest.mark.parametrize(
    ("parameter", "path", "words"),
    [
        ({"tableFields": ["id", "nope"]}, "tableFields", "column 'nope' is not in table"),
        ({"bootstrapServers": "127.0.0.1:1"}, "bootstrapServers", "is not the job's Kafka"),
        ({"topic": {"other": "x"}}, "topic", "no topic for table"),
    ],
)
def test_bad_config_is_one_line_naming_the_json_path(
    conn, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path, parameter, path, words
):
    execute(conn, "CREATE TABLE src (id INT PRIMARY KEY, name VARCHAR(10))")
    job = mysql_job(mysql_url, mysql_database, "src", "unused", name=unique_name)
    job["job"]["content"][0]["writer"] = {
        "name": "kafkawriter",
        "parameter": {"topic": f"{unique_name}.never", **parameter},
    }
    out = run_cli(job, tmp_path, kafka_bootstrap)
    assert out.returncode != 0
    assert f"job.content[0].writer.parameter.{path}" in out.stderr and words in out.stderr, (
        out.stderr
    )
    assert "Traceback" not in out.stderr
    admin_topics = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "x"})
    try:
        topics = admin_topics.list_topics(timeout=10).topics
    finally:
        admin_topics.close()
    assert f"{unique_name}.never" not in topics, "nothing may be created for a job that fails"
