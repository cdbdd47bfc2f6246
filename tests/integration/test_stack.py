"""The servers the fixtures provide do what Sluice's exactly-once design relies on:
Kafka transactions hide aborted records from read_committed consumers, and MariaDB's binlog
carries row events keyed by real column names."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest

from testkit.kafka import new_topic
from testkit.mysql import mysql_connect, mysql_params
from testkit.servers import Servers

pytestmark = pytest.mark.integration


def _consume_until(bootstrap: str, topic: str, isolation: str, last: bytes) -> list[bytes]:
    """Every value of partition 0 from the start up to and including ``last``."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-{isolation}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while last not in values:
            assert time.monotonic() < deadline, f"{last!r} not consumed; got {values}"
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                values.append(msg.value() or b"")
    finally:
        consumer.close()
    return values


def test_read_committed_sees_committed_records_and_never_aborted_ones(
    kafka_bootstrap: str, unique_name: str
) -> None:
    from confluent_kafka import Producer

    topic = new_topic(kafka_bootstrap, unique_name)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{unique_name}-tx"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for value in (b"aborted-1", b"aborted-2"):
        producer.produce(topic, value=value)
    producer.flush(30)  # the records are in the log before the abort
    producer.abort_transaction(30)
    producer.begin_transaction()
    for value in (b"committed-1", b"committed-2"):
        producer.produce(topic, value=value)
    producer.commit_transaction(30)

    # The aborted records really are in the log: read_uncommitted returns all four ...
    assert _consume_until(kafka_bootstrap, topic, "read_uncommitted", b"committed-2") == [
        b"aborted-1",
        b"aborted-2",
        b"committed-1",
        b"committed-2",
    ]
    # ... and read_committed skips exactly the aborted ones.
    assert _consume_until(kafka_bootstrap, topic, "read_committed", b"committed-2") == [
        b"committed-1",
        b"committed-2",
    ]


def test_binlog_row_event_is_keyed_by_column_names(mysql_url: str, mysql_database: str) -> None:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import WriteRowsEvent

    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE account (id INT PRIMARY KEY, owner VARCHAR(40), balance DECIMAL(10,2))"
        )
        cur.execute("SHOW MASTER STATUS")
        log_file, log_pos = cur.fetchone()[:2]
        cur.execute("INSERT INTO account VALUES (7, 'ada', 12.50)")
    conn.close()

    stream = BinLogStreamReader(
        connection_settings=mysql_params(mysql_url),
        server_id=100_000 + int(time.time() * 1000) % 100_000,  # unique among replicas
        only_events=[WriteRowsEvent],
        only_schemas=[mysql_database],
        log_file=log_file,
        log_pos=log_pos,
        resume_stream=True,
        blocking=False,
    )
    try:
        rows: list[tuple[str, dict[str, Any]]] = [
            (event.table, row["values"]) for event in stream for row in event.rows
        ]
    finally:
        stream.close()
    assert rows == [("account", {"id": 7, "owner": "ada", "balance": Decimal("12.50")})]


def test_local_status_reports_both_servers_healthy(servers: Servers) -> None:
    if servers.local_stack is None:
        pytest.skip(f"servers come from {servers.source}, not from the local launcher")
    result = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "local", "status"]
        + ["--state-dir", str(servers.local_stack.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "ok: produced and consumed" in lines["kafka"]
    assert "binlog_format=ROW binlog_row_image=FULL" in lines["mariadb"]
