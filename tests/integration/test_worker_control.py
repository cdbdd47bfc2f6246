"""The worker control plane against real Kafka and MariaDB (issue 6): a config update through
the REST API reaches one job's tasks without restarting another job's; replay to a
checkpoint (CLI) and to the start (REST) after damaging the target leaves the target exact;
bad requests get a 4xx naming the field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, table_fingerprint
from testkit.wait import wait_until
from tests.integration.test_worker_support import REPO_ROOT, WorkerProc, http, job_status
from tests.integration.test_worker_support import wait_for_group as _wait_for_group

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(kafka_bootstrap, unique_name, mysql_database, tmp_path):
    # Killed before mysql_database drops the database its tasks write to.
    w = WorkerProc(unique_name, kafka_bootstrap, tmp_path / "worker.log")
    try:
        _wait_for_group([w])
        yield w
    finally:
        w.kill()


def insert(conn, table: str, start: int, count: int) -> None:
    execute(
        conn,
        f"INSERT INTO {table} SELECT seq, CONCAT('v', seq), 0 FROM seq_{start}_to_{start + count - 1}",
        f"UPDATE {table} SET n = n + 1, v = CONCAT(v, 'u') WHERE id % 3 = 0",
    )


def wait_same(conn, db: str, src: str, dst: str, what: str) -> None:
    wait_until(
        lambda: table_fingerprint(conn, db, src) == table_fingerprint(conn, db, dst), 60, what
    )


def states(url: str, name: str) -> dict[str, tuple[str, int, int]]:
    return {
        t["task"]: (t["state"], t["version"], t["started_ms"])
        for t in job_status(url, name)["tasks"]
    }


def test_config_update_replay_and_bad_requests(
    worker, mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    db, url = mysql_database, worker.url
    conn = mysql_connect(mysql_url, db)
    execute(
        conn,
        "CREATE TABLE rsrc (id BIGINT PRIMARY KEY, v VARCHAR(400), n INT)",
        "CREATE TABLE rdst LIKE rsrc",
        "CREATE TABLE osrc LIKE rsrc",
        "CREATE TABLE odst LIKE rsrc",
    )
    start = binlog_position(conn)
    a, b = f"{unique_name}_a", f"{unique_name}_b"
    job_a = cdc_job(
        mysql_url,
        db,
        ["rsrc"],
        db,
        "rdst",
        name=a,
        start=start,
        writers=2,
        writer_extra={"writeMode": "replace"},
    )
    job_b = cdc_job(mysql_url, db, ["osrc"], db, "odst", name=b, start=start, writers=1)
    for job in (job_a, job_b):
        code, body = http("POST", url + "/jobs", job)
        assert code == 201, body
    insert(conn, "rsrc", 1, 500)
    insert(conn, "osrc", 1, 300)
    wait_same(conn, db, "rsrc", "rdst", "job a to copy")
    wait_same(conn, db, "osrc", "odst", "job b to copy")

    # -- a config update reaches job a's tasks; job b's keep running untouched --------------
    b_before = states(url, b)
    updated = copy.deepcopy(job_a)
    updated["job"]["setting"]["restore"]["checkpointInterval"] = 300
    code, body = http("PUT", f"{url}/jobs/{a}/config", updated)
    assert code == 200 and body["version"] == 2, body
    wait_until(
        lambda: all(s == "RUNNING" and v == 2 for s, v, _ in states(url, a).values()),
        60,
        "job a's tasks to run version 2",
    )
    assert states(url, b) == b_before
    code, body = http("GET", f"{url}/jobs/{a}/config")
    assert body["job"]["setting"]["restore"]["checkpointInterval"] == 300
    insert(conn, "rsrc", 501, 300)
    wait_same(conn, db, "rsrc", "rdst", "job a to copy with its new config")

    # -- replay to a checkpoint (CLI), then to the start after damaging the target (REST) ---
    wait_until(
        lambda: (job_status(url, a)["checkpoint"]["checkpoint"] or 0) >= 3, 30, "checkpoint 3"
    )
    for to in ("cli", "rest"):
        code, _ = http("PUT", f"{url}/jobs/{a}/stop")
        assert code == 202
        wait_until(
            lambda: all(s == "STOPPED" for s, _v, _t in states(url, a).values()),
            60,
            "job a's tasks to stop",
        )
        before = http("GET", f"{url}/jobs/{a}/offsets")[1]["writers"]
        if to == "cli":
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "coordinator.cli",
                    "replay",
                    a,
                    "--to-checkpoint",
                    "2",
                    "--bootstrap-servers",
                    kafka_bootstrap,
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
        else:
            offsets = http("GET", f"{url}/jobs/{a}/offsets")[1]
            assert offsets["sources"]["reader-0"]["position"], offsets
            code, body = http("PATCH", f"{url}/jobs/{a}/offsets", {"sources": {"reader-9": {}}})
            assert (code, body["field"]) == (400, "sources.reader-9"), body
            execute(conn, "DELETE FROM rdst WHERE id % 2 = 0", "UPDATE rdst SET v = 'damaged'")
            code, body = http("PUT", f"{url}/jobs/{a}/replay", {"to_checkpoint": 0})
            assert code == 200, body
        after = http("GET", f"{url}/jobs/{a}/offsets")[1]["writers"]
        assert sum(after.values()) < sum(before.values()), (before, after)
        code, _ = http("PUT", f"{url}/jobs/{a}/resume")
        assert code == 202
        insert(conn, "rsrc", 801 + (300 if to == "rest" else 0), 300)
        wait_same(conn, db, "rsrc", "rdst", f"job a to be exact after replay ({to})")
        status = job_status(url, a)
        assert all(t["state"] == "RUNNING" for t in status["tasks"]), status
    assert states(url, b) == b_before  # job b never restarted

    # -- bad requests: 4xx with a JSON body naming the field --------------------------------
    code, body = http("PUT", f"{url}/jobs/{b}/replay", {"to_checkpoint": 1})
    assert (code, body["field"]) == (400, "job.content[0].writer.parameter.writeMode"), body
    code, body = http("PUT", f"{url}/jobs/{a}/replay", {"to_checkpoint": 1})
    assert (code, body["field"]) == (409, "state"), body  # a is running
    code, body = http("GET", f"{url}/jobs/nope/status")
    assert (code, body["field"]) == (404, "name"), body
    bad = copy.deepcopy(job_a)
    del bad["job"]["content"][0]["writer"]["parameter"]["connection"]
    code, body = http("POST", url + "/jobs", bad)
    assert code == 400 and body["field"] == "job.content[0].writer.parameter.connection", body
    code, body = http("POST", url + "/jobs", job_a)
    assert (code, body["field"]) == (409, "name"), body

    # -- SIGTERM: the worker waits for a checkpoint, stops its tasks, leaves, exits 0 --------
    before = job_status(url, a)["checkpoint"]
    assert worker.terminate(60) == 0
    out = worker.output()
    assert "waiting for the next checkpoint" in out and "left group" in out, out[-3000:]
    assert "no checkpoint completed" not in out, out[-3000:]
    status = job_status_via_kafka(kafka_bootstrap, a)
    after = status["checkpoint"]
    # A checkpoint completed after the signal: a newer one, or the one then in progress.
    newer = before["checkpoint"] + (1 if before["state"] == "COMPLETED" else 0)
    # One more may have started before the coordinator task stopped: checkpoints run one at
    # a time, so an IN_PROGRESS k says k - 1 completed.
    completed = after["checkpoint"] - (0 if after["state"] == "COMPLETED" else 1)
    assert completed >= newer, (before, after)
    assert {t["state"] for t in status["tasks"]} == {"UNASSIGNED"}, status
    conn.close()


def job_status_via_kafka(bootstrap: str, name: str) -> dict:
    """`sluice job-status` reads Kafka: it answers with every worker gone."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "job-status",
            name,
            "--bootstrap-servers",
            bootstrap,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
