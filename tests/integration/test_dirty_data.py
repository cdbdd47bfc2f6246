"""errorLimit and the dirty-data topic: rows the sink rejects (too long, out of range) are
set aside with their reason and source position, the rest land, and past the limit the job
fails with a clear summary (issue 8)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from coordinator.errors import TaskFailed
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from testkit.mysql import mysql_connect, mysql_job

pytestmark = pytest.mark.integration

ROWS = 5000


@pytest.fixture
def tables(mysql_url, mysql_database):
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(40), qty INT)")
        cur.execute(
            "INSERT INTO src SELECT seq, IF(seq % 97 = 0, CONCAT('much-too-long-', seq), "
            f"CONCAT('n', seq)), seq % 300 FROM seq_1_to_{ROWS}"
        )
        # name VARCHAR(10) refuses the long names, qty TINYINT UNSIGNED refuses 256..299.
        cur.execute(
            "CREATE TABLE dst (id BIGINT PRIMARY KEY, name VARCHAR(10), qty TINYINT UNSIGNED)"
        )
        cur.execute("SELECT id FROM src WHERE id % 97 = 0 OR qty > 255 ORDER BY id")
        bad = [r[0] for r in cur.fetchall()]
    yield conn, mysql_database, bad
    conn.close()


def _job(mysql_url, db, name, error_limit):
    setting = {"errorLimit": error_limit} if error_limit is not None else {}
    return build_job(
        mysql_job(mysql_url, db, "src", "dst", name=name, channel=2, setting_extra=setting)
    )


def dirty_records(bootstrap: str, job: str, run: str | None = None) -> list[dict]:
    """What `sluice dirty JOB [--run R]` lists, one JSON record per rejected row."""
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "dirty", job]
        + (["--run", run] if run else [])
        + ["--bootstrap-servers", bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_rejected_rows_go_to_the_dirty_topic_and_the_rest_lands(
    tables, mysql_url, kafka_bootstrap, unique_name
):
    conn, db, bad = tables
    summary = LocalJobRunner(
        _job(mysql_url, db, unique_name, {"record": 1000}), kafka_bootstrap, quiet=True
    ).run()
    assert summary.status == "finished"
    assert summary.errors == len(bad)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM dst ORDER BY id")
        landed = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT COUNT(*) FROM src s JOIN dst d USING (id) WHERE s.name = d.name AND s.qty = d.qty"
        )
        (equal,) = cur.fetchone()
    assert landed == sorted(set(range(1, ROWS + 1)) - set(bad))
    assert equal == len(landed)
    assert summary.numWrite == len(landed), "numWrite counts rows written, not the rejected"
    records = dirty_records(kafka_bootstrap, unique_name, summary.run)
    assert sorted(r["row"]["id"] for r in records) == bad  # each exactly once
    by_id = {r["row"]["id"]: r for r in records}
    assert "too long" in by_id[97]["reason"].lower() and by_id[97]["code"] == 1406
    assert by_id[256]["code"] == 1264 and by_id[256]["table"] == f"{db}.src"
    assert by_id[256]["source"]["task"].startswith("reader-")


def test_past_the_error_limit_the_job_fails_with_a_summary(
    tables, mysql_url, kafka_bootstrap, unique_name
):
    conn, db, bad = tables
    with pytest.raises(TaskFailed) as failure:
        LocalJobRunner(
            _job(mysql_url, db, unique_name, {"record": 5}), kafka_bootstrap, quiet=True
        ).run()
    message = str(failure.value)
    assert "setting.errorLimit.record (5)" in message
    assert f"sluice dirty {unique_name}" in message
    # Both writers reject rows; the one that trips the limit first is not the whole story:
    # the line counts what every writer committed, as `sluice dirty` lists.
    said = int(re.search(r"(\d+) rows rejected", message).group(1))
    assert said == len(dirty_records(kafka_bootstrap, unique_name)) > 5


def test_a_rejected_row_near_the_record_limit_is_set_aside_cut_to_fit(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    """A 5 MiB blob fits a row event (8 MiB), but not the target's BLOB (64 KiB): rejected,
    its dirty record as JSON (bytes as hex) would be 10 MiB, which Kafka refuses on every
    retry of the checkpoint. The long value is cut, its full length kept, the rest lands.
    The job's dirty topic exists already with the broker's 1 MiB limit (an older Sluice made
    it): the run raises it, so a 1.5 MiB rejected row (3 MiB as JSON) is set aside whole."""
    conn = mysql_connect(mysql_url, mysql_database)
    size = 5 * 1024 * 1024
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id BIGINT PRIMARY KEY, b LONGBLOB, note VARCHAR(20))")
        cur.execute("INSERT INTO src VALUES (1, 'small', 'a'), (3, 'also small', 'c')")
        cur.execute("INSERT INTO src VALUES (2, REPEAT('x', %s), 'big')", (size,))
        cur.execute("INSERT INTO src VALUES (4, REPEAT('y', %s), 'mid')", (3 * 512 * 1024,))
        cur.execute("CREATE TABLE dst (id BIGINT PRIMARY KEY, b BLOB, note VARCHAR(20))")
    dirty_topic = f"sluice-dirty-{unique_name}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made = admin.create_topics(
        [NewTopic(dirty_topic, 1, 1, config={"max.message.bytes": "1048588"})]
    )
    made[dirty_topic].result(30)
    job = _job(mysql_url, mysql_database, unique_name, {"record": 10})
    summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    assert (summary.status, summary.errors, summary.numWrite) == ("finished", 2, 2)
    with conn.cursor() as cur:
        cur.execute("SELECT id, b, note FROM dst ORDER BY id")
        assert cur.fetchall() == ((1, b"small", "a"), (3, b"also small", "c"))
    records = dirty_records(kafka_bootstrap, unique_name, summary.run)
    by_id = {r["row"]["id"]: r for r in records}
    assert sorted(by_id) == [2, 4] and len(records) == 2
    whole = by_id[4]
    assert "cut" not in whole and whole["row"]["b"] == "0x" + "79" * (3 * 512 * 1024)
    record = by_id[2]
    assert record["row"]["note"] == "big"
    assert record["code"] == 1406 and record["table"] == f"{mysql_database}.src"
    assert record["cut"] == {"b": 2 + 2 * size}  # "0x" + hex, as the row would have shown
    assert record["row"]["b"] == "0x" + "78" * 511
    conn.close()
