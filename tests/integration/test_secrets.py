"""Secrets by reference through real jobs (real MariaDB with a password user, real Kafka):
``sluice run`` with the password from ``${env:…}`` and ``${file:…:…}``, and a worker job
submitted over REST with a reference: rows copy exactly, the stored and shown config holds
the reference, and no Sluice topic, status record or log holds the value."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from testkit.mysql import mysql_connect, mysql_job, table_fingerprint
from testkit.wait import wait_until
from tests.integration.test_worker_support import REPO_ROOT, WorkerProc, http, wait_for_group

pytestmark = pytest.mark.integration


SHARED_TOPICS = ("sluice-configs", "sluice-status", "sluice-offsets")


def records_holding(bootstrap: str, needle: bytes, job: str) -> list[str]:
    """Records of Sluice's shared topics and of ``job``'s own topics whose keys or values
    contain ``needle``, as ``topic[partition]@offset``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics
              if t in SHARED_TOPICS or (t.startswith("sluice") and job in t)]  # fmt: skip
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"scan-{time.time_ns()}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"})  # fmt: skip
    found = []
    try:
        for topic in topics:
            meta = admin.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                tp = TopicPartition(topic, p, low)
                consumer.assign([tp])
                deadline = time.monotonic() + 30
                # Until the position passes the end: transaction markers are offsets too.
                while consumer.position([tp])[0].offset < high and time.monotonic() < deadline:
                    for m in consumer.consume(10_000, 0.5):  # whole fetches, not one by one
                        if m.error() is not None:
                            continue
                        if needle in (m.key() or b"") or needle in (m.value() or b""):
                            found.append(f"{topic}[{p}]@{m.offset()}")
    finally:
        consumer.close()
    return found


@pytest.fixture
def secret_user(mysql_url: str, mysql_database: str, unique_name: str) -> Any:
    password = "pw-" + secrets.token_hex(12)
    user = f"u{unique_name[-10:]}"
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'")
        cur.execute("CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(40))")
        cur.execute("CREATE TABLE dst (id INT PRIMARY KEY, v VARCHAR(40))")
        cur.execute("INSERT INTO src SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000")
    yield user, password, conn
    with conn.cursor() as cur:
        cur.execute(f"DROP USER '{user}'@'%'")
    conn.close()


def with_credentials(job: dict[str, Any], user: str, password: str) -> dict[str, Any]:
    for side in ("reader", "writer"):
        parameter = job["job"]["content"][0][side]["parameter"]
        parameter["username"], parameter["password"] = user, password
    return job


def test_sluice_run_takes_the_password_by_reference_and_writes_it_nowhere(
    secret_user: Any, mysql_url: str, mysql_database: str, kafka_bootstrap: str,
    unique_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    user, password, conn = secret_user
    props = tmp_path / "db.properties"
    props.write_text(f"password={password}\n")
    job = mysql_job(mysql_url, mysql_database, "src", "dst", name=unique_name, channel=2)
    job = with_credentials(job, "${env:SLUICE_TEST_DB_USER}", "${env:SLUICE_TEST_DB_PASSWORD}")
    job["job"]["content"][0]["writer"]["parameter"]["password"] = f"${{file:{props}:password}}"
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    env = {"SLUICE_TEST_DB_USER": user, "SLUICE_TEST_DB_PASSWORD": password}
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "run", str(path), "--bootstrap-servers",
         kafka_bootstrap], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
        env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert table_fingerprint(conn, mysql_database, "dst") == table_fingerprint(
        conn, mysql_database, "src"
    )
    assert password not in out.stdout + out.stderr
    assert records_holding(kafka_bootstrap, password.encode(), unique_name) == []
    # Without the variable: one line naming the path, and nothing read.
    missing = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "run", str(path), "--bootstrap-servers",
         kafka_bootstrap], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("SLUICE_TEST_DB")},
    )  # fmt: skip
    assert missing.returncode != 0
    errors = [line for line in missing.stderr.splitlines() if "error" in line.lower()]
    assert "job.content[0].reader.parameter.username" in missing.stderr, missing.stderr
    assert "'SLUICE_TEST_DB_USER' is not set" in missing.stderr, errors
    assert "Traceback" not in missing.stderr


def test_a_worker_job_keeps_the_reference_and_resolves_it_itself(
    secret_user: Any, mysql_url: str, mysql_database: str, kafka_bootstrap: str,
    unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    user, password, conn = secret_user
    monkeypatch.setenv("SLUICE_TEST_DB_PASSWORD", password)
    worker = WorkerProc(unique_name, kafka_bootstrap, tmp_path / "worker.log")
    try:
        wait_for_group([worker])
        job = mysql_job(mysql_url, mysql_database, "src", "dst", name=unique_name)
        job = with_credentials(job, user, "${env:SLUICE_TEST_DB_PASSWORD}")
        code, body = http("POST", worker.url + "/jobs", job)
        assert code in (200, 201), body
        wait_until(lambda: table_fingerprint(conn, mysql_database, "dst")
                   == table_fingerprint(conn, mysql_database, "src"), 90, "the copy")  # fmt: skip
        code, shown = http("GET", f"{worker.url}/jobs/{unique_name}")
        assert code == 200, shown
        text = json.dumps(shown)
        assert "${env:SLUICE_TEST_DB_PASSWORD}" in text and password not in text
        assert records_holding(kafka_bootstrap, password.encode(), unique_name) == []
        stored = records_holding(kafka_bootstrap, b"${env:SLUICE_TEST_DB_PASSWORD}", unique_name)
        assert any(r.startswith("sluice-configs") for r in stored), stored
        assert password not in worker.output()
    finally:
        worker.kill()
