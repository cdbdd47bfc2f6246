"""Misuse of the CLI, the worker and the REST API against the real servers (issue 14): one
line naming the flag / key / limit, a non-zero exit (or a 4xx), no traceback, nothing moved."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, table_fingerprint
from testkit.wait import wait_until
from tests.integration.test_worker_control import states, wait_same, worker  # noqa: F401
from tests.integration.test_worker_support import REPO_ROOT, http

pytestmark = pytest.mark.integration


def sluice(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert out.returncode != 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out.stderr
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    return errors[0]


def worker_args(kafka_bootstrap: str, group: str, *extra: str) -> list[str]:
    return [
        *("worker", "--group", group, "--bootstrap-servers", kafka_bootstrap),
        *("--rest-host", "127.0.0.1", "--slots", "2", *extra),
    ]


def test_worker_refuses_a_session_timeout_the_broker_refuses(kafka_bootstrap, unique_name):
    # Before: "joined group", /health UP, and never a slot.
    for ms in ("100", "1800001"):
        out = sluice(
            *worker_args(kafka_bootstrap, unique_name, "--rest-port", "0"),
            "--session-timeout-ms",
            ms,
            timeout=60,
        )
        one_error_line(out, f"--session-timeout-ms {ms}", "6000..1800000")


def test_worker_rest_port_out_of_range_or_in_use(kafka_bootstrap, unique_name):
    out = sluice(*worker_args(kafka_bootstrap, unique_name, "--rest-port", "70000"))
    one_error_line(out, "--rest-port 70000", "0..65535")
    with socket.socket() as taken:  # a second worker on the same host, same port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = sluice(*worker_args(kafka_bootstrap, unique_name, "--rest-port", port))
        one_error_line(out, f"--rest-port {port}", "already in use")


def test_run_metrics_port_out_of_range_or_in_use(tmp_path, kafka_bootstrap):
    job = tmp_path / "job.json"
    job.write_text("{}")  # never read: the port is checked first
    out = sluice("run", str(job), "--metrics-port", "70000", "--bootstrap-servers", kafka_bootstrap)
    one_error_line(out, "--metrics-port 70000", "0..65535")


def test_dirty_of_a_job_that_never_ran(kafka_bootstrap, unique_name):
    # Before: "0 rejected rows", exit 0.
    out = sluice("dirty", unique_name, "--bootstrap-servers", kafka_bootstrap)
    one_error_line(out, repr(unique_name), f"sluice-dirty-{unique_name}")
    out = sluice("dirty", "a/b", "--bootstrap-servers", kafka_bootstrap)
    one_error_line(out, "'a/b'", "letters, digits")


def test_submit_deeply_nested_job(tmp_path, kafka_bootstrap, unique_name):
    job = tmp_path / "deep.json"
    job.write_text('{"job": {"name": "x", "setting": ' + "[" * 10_000 + "]" * 10_000 + "}}")
    out = sluice("submit", str(job), "--group", unique_name, "--bootstrap-servers", kafka_bootstrap)
    one_error_line(out, "deep.json:1:", "nested deeper than 64")


def test_replay_refuses_offsets_outside_the_log_and_bad_timestamps(
    worker,  # noqa: F811 - the fixture
    mysql_url,
    mysql_database,
    kafka_bootstrap,
    unique_name,
):
    db, url = mysql_database, worker.url
    conn = mysql_connect(mysql_url, db)
    execute(
        conn,
        "CREATE TABLE src (id BIGINT PRIMARY KEY, v VARCHAR(40), n INT)",
        "CREATE TABLE dst LIKE src",
    )
    job = cdc_job(
        mysql_url,
        db,
        ["src"],
        db,
        "dst",
        name=unique_name,
        start=binlog_position(conn),
        writers=1,
        writer_extra={"writeMode": "replace"},
    )
    # A body nested 10,000 deep: before, HTTP 500 (RecursionError).
    deep = b'{"job": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    code, body = http_raw("POST", url + "/jobs", deep)
    assert code == 400 and "nested deeper than 64" in body["error"], body
    code, body = http("POST", url + "/jobs", job)
    assert code == 201, body
    execute(conn, "INSERT INTO src SELECT seq, CONCAT('v', seq), 0 FROM seq_1_to_200")
    wait_same(conn, db, "src", "dst", "the job to copy")
    code, _ = http("PUT", f"{url}/jobs/{unique_name}/stop")
    assert code == 202
    wait_until(
        lambda: all(s == "STOPPED" for s, _v, _t in states(url, unique_name).values()),
        60,
        "the tasks to stop",
    )
    offsets = http("GET", f"{url}/jobs/{unique_name}/offsets")[1]
    ((tp, end),) = offsets["writers"].items()
    topic = tp.rsplit(":", 1)[0]
    before = table_fingerprint(conn, db, "dst")
    b = ["--bootstrap-servers", kafka_bootstrap]
    # Before: accepted, and the writer reset to the beginning and applied everything again.
    out = sluice("replay", unique_name, "--to-offsets", f"{topic}:0:{end + 1000}", *b)
    one_error_line(out, "partition 0", "past the end", "the partition holds 0..")
    for ts in ("-1", "99999999999999"):
        out = sluice("replay", unique_name, "--to-timestamp", ts, *b)
        one_error_line(out, f"--to-timestamp) {ts}")
    code, body = http("PUT", f"{url}/jobs/{unique_name}/replay", {"to_timestamp": -1})
    assert code == 400 and body["field"] == "to_timestamp", body
    after = http("GET", f"{url}/jobs/{unique_name}/offsets")[1]
    assert after["writers"] == offsets["writers"]
    assert table_fingerprint(conn, db, "dst") == before
    # Where the writers are (within the log) is a valid target.
    out = sluice("replay", unique_name, "--to-offsets", f"{topic}:0:{end}", *b)
    assert out.returncode == 0, out.stderr
    conn.close()


def http_raw(method: str, url: str, data: bytes) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
