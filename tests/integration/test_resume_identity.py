"""Resuming a run with an edited job (issue 14): a run killed midway, resumed by a job that
now names another table, must be refused with one line — not resumed from the old table's
positions (which silently skipped rows). Unedited, or with harmless edits, it resumes exactly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from testkit.mysql import mysql_connect, mysql_job, table_fingerprint
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

ROWS = 3000


def _count(conn, db: str, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.`{table}`")
        return int(cur.fetchone()[0])


def _job(mysql_url, db, name, src, dst, *, record=600, interval=300):
    return mysql_job(
        mysql_url,
        db,
        src,
        dst,
        name=name,
        setting_extra={
            "restore": {
                "isRestore": True,
                "checkpointInterval": interval,
                "restoreColumnName": "id",
            },
            "speed": {"channel": 1, "record": record},
        },
    )


def _cmd(path, kafka_bootstrap, summary):
    return [
        sys.executable,
        "-m",
        "coordinator.cli",
        "run",
        str(path),
        "-q",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--summary-json",
        str(summary),
    ]


@pytest.fixture
def killed_run(mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path):
    """A run of r -> r_dst SIGKILLed (runner and tasks) once some rows, not all, landed."""
    conn = mysql_connect(mysql_url)
    db = mysql_database
    with conn.cursor() as cur:
        for t, n in (("r", ROWS), ("t", 1000)):
            cur.execute(f"CREATE TABLE `{db}`.{t} (id BIGINT PRIMARY KEY, v VARCHAR(20))")
            cur.execute(
                f"INSERT INTO `{db}`.{t} SELECT seq, CONCAT('{t}', seq) FROM `{db}`.seq_1_to_{n}"
            )
            cur.execute(f"CREATE TABLE `{db}`.{t}_dst (id BIGINT PRIMARY KEY, v VARCHAR(20))")
    path = tmp_path / "job.json"
    path.write_text(json.dumps(_job(mysql_url, db, unique_name, "r", "r_dst")))
    cmd = _cmd(path, kafka_bootstrap, tmp_path / "s1.json")
    first = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_until(lambda: _count(conn, db, "r_dst") >= 300, 120, "some rows landed")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    partial = _count(conn, db, "r_dst")
    assert 0 < partial < ROWS
    return conn, db, path, tmp_path


def _resume(path, kafka_bootstrap, tmp_path, job):
    path.write_text(json.dumps(job))
    summary = tmp_path / "s2.json"
    done = subprocess.run(
        _cmd(path, kafka_bootstrap, summary), capture_output=True, text=True, timeout=300
    )
    return done, summary


def test_resume_with_another_table_is_refused_then_unedited_resumes_exactly(
    killed_run, mysql_url, kafka_bootstrap, unique_name
):
    conn, db, path, tmp_path = killed_run
    before = {t: table_fingerprint(conn, db, t) for t in ("r_dst", "t_dst")}
    edited, _ = _resume(
        path, kafka_bootstrap, tmp_path, _job(mysql_url, db, unique_name, "t", "t_dst")
    )
    assert edited.returncode == 2, edited.stderr[-2000:]
    errors = [line for line in edited.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"sluice: error: job {unique_name}: cannot resume run "
        + re.search(r"run (r\d+):", edited.stderr).group(1)
        + ': reader table changed from "r" to "t" (job.content[0].reader.parameter.connection[0]'
        ".table); run without restore.isRestore to start over, or restore the job as it was"
    ], edited.stderr[-2000:]
    assert "Traceback" not in edited.stderr
    assert {t: table_fingerprint(conn, db, t) for t in ("r_dst", "t_dst")} == before

    again, summary = _resume(
        path, kafka_bootstrap, tmp_path, _job(mysql_url, db, unique_name, "r", "r_dst")
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming run" in again.stderr
    assert table_fingerprint(conn, db, "r_dst") == table_fingerprint(conn, db, "r")
    s = json.loads(summary.read_text())
    assert s["numRead"] == ROWS and s["numWrite"] == ROWS, s
    assert 0 < s["checkpoints"] < 1000, s


def test_resume_after_harmless_edits_is_exact(killed_run, mysql_url, kafka_bootstrap, unique_name):
    conn, db, path, tmp_path = killed_run
    job = _job(mysql_url, db, unique_name, "r", "r_dst", record=2000, interval=700)
    job["job"]["setting"]["errorLimit"] = {"record": 5}
    job["job"]["setting"]["log"] = {"level": "warn"}
    job["job"]["content"][0]["reader"]["parameter"]["fetchSize"] = 500
    done, summary = _resume(path, kafka_bootstrap, tmp_path, job)
    assert done.returncode == 0, done.stderr[-2000:]
    assert table_fingerprint(conn, db, "r_dst") == table_fingerprint(conn, db, "r")
    s = json.loads(summary.read_text())
    assert s["numRead"] == ROWS and s["numWrite"] == ROWS, s
    assert 0 < s["checkpoints"] < 1000, s


def test_worker_job_update_naming_another_table_is_refused(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    from coordinator.worker import jobs

    conn = mysql_connect(mysql_url)
    db = mysql_database
    with conn.cursor() as cur:
        for t in ("r", "t"):
            cur.execute(f"CREATE TABLE `{db}`.{t} (id BIGINT PRIMARY KEY, v VARCHAR(20))")
            cur.execute(f"CREATE TABLE `{db}`.{t}_dst (id BIGINT PRIMARY KEY, v VARCHAR(20))")
    group = f"g-{unique_name}"
    rec = jobs.create_job(kafka_bootstrap, group, _job(mysql_url, db, unique_name, "r", "r_dst"))
    try:
        with pytest.raises(jobs.ApiError) as e:
            jobs.update_job(
                kafka_bootstrap, group, unique_name, _job(mysql_url, db, unique_name, "t", "t_dst")
            )
        assert e.value.status == 409
        assert e.value.field == "job.content[0].reader.parameter.connection[0].table"
        assert f"cannot resume run {rec['run']}: reader table changed" in str(e.value)
        assert jobs.get_config(kafka_bootstrap, unique_name)["version"] == 1
        # A harmless edit (rate limit) is a config update as before.
        harmless = _job(mysql_url, db, unique_name, "r", "r_dst", record=50)
        updated, created = jobs.update_job(kafka_bootstrap, group, unique_name, harmless)
        assert not created and updated["version"] == 2
    finally:
        jobs.delete_job(kafka_bootstrap, unique_name)


def test_resuming_a_run_whose_writers_all_finished_counts_real_checkpoints(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    """Killed after every writer acked its final barrier but before the run was marked
    FINISHED: the resumed run's summary once said "checkpoints 4611686018427387904" (the
    FINAL marker taken for a checkpoint number)."""
    from confluent_kafka import Producer

    from coordinator.kafka_io import STATUS_TOPIC, latest_json_by_key, read_to_end

    conn = mysql_connect(mysql_url)
    db = mysql_database
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{db}`.r (id BIGINT PRIMARY KEY, v VARCHAR(20))")
        cur.execute(f"INSERT INTO `{db}`.r SELECT seq, CONCAT('r', seq) FROM `{db}`.seq_1_to_500")
        cur.execute(f"CREATE TABLE `{db}`.r_dst (id BIGINT PRIMARY KEY, v VARCHAR(20))")
    path = tmp_path / "job.json"
    job = _job(mysql_url, db, unique_name, "r", "r_dst", record=0)
    first, _ = _resume(path, kafka_bootstrap, tmp_path, job)
    assert first.returncode == 0, first.stderr[-2000:]
    key = f"job/{unique_name}"
    record = latest_json_by_key(read_to_end(kafka_bootstrap, STATUS_TOPIC))[key]
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(STATUS_TOPIC, json.dumps({**record, "state": "RUNNING"}).encode(), key.encode())
    p.flush(30)
    again, summary = _resume(path, kafka_bootstrap, tmp_path, job)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming run" in again.stderr
    s = json.loads(summary.read_text())
    assert 0 < s["checkpoints"] < 1000, s
    assert table_fingerprint(conn, db, "r_dst") == table_fingerprint(conn, db, "r")


def test_resume_after_offsets_reset_is_refused(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    """A reset makes the readers start over; resuming the same run into the target it
    already filled left rows deleted at the source in place, RUNNING with no error."""
    from coordinator.worker import jobs, replay

    conn = mysql_connect(mysql_url)
    db = mysql_database
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{db}`.r (id BIGINT PRIMARY KEY, v VARCHAR(20))")
        cur.execute(f"CREATE TABLE `{db}`.r_dst (id BIGINT PRIMARY KEY, v VARCHAR(20))")
    group = f"g-{unique_name}"
    jobs.create_job(kafka_bootstrap, group, _job(mysql_url, db, unique_name, "r", "r_dst"))
    try:
        jobs.set_state(kafka_bootstrap, unique_name, "stopped")
        replay.reset_offsets(kafka_bootstrap, unique_name)
        for restart in (False, True):
            with pytest.raises(jobs.ApiError) as e:
                jobs.set_state(kafka_bootstrap, unique_name, "running", restart=restart)
            assert e.value.status == 409
            assert "source offsets were reset" in str(e.value)
            assert "submit the job again" in str(e.value)
        assert jobs.get_config(kafka_bootstrap, unique_name)["state"] == "stopped"
    finally:
        jobs.delete_job(kafka_bootstrap, unique_name)
