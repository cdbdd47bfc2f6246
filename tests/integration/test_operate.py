"""Operating a job (issue 8): ``/metrics`` while ``sluice run`` runs, ``sluice status``, rate
limits that hold, JSON log lines, and no password in any log, status record or error."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from coordinator.job import build_job
from coordinator.kafka_io import STATUS_TOPIC, read_to_end
from coordinator.local_run import LocalJobRunner
from testkit.mysql import mysql_connect, mysql_job, table_fingerprint

pytestmark = pytest.mark.integration

SLUICE = [sys.executable, "-m", "coordinator.cli"]


def _tables(conn, rows: int) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(40), qty INT)")
        cur.execute(
            f"INSERT INTO src SELECT seq, CONCAT('name-', seq), seq % 1000 FROM seq_1_to_{rows}"
        )
        cur.execute("CREATE TABLE dst LIKE src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix + "{"))


def test_metrics_endpoint_while_running_then_status_and_summary(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    rows = 6000
    conn = mysql_connect(mysql_url, mysql_database)
    _tables(conn, rows)
    # 2,000 rows/s: the run lasts ~3 s, long enough to watch it.
    doc = mysql_job(
        mysql_url,
        mysql_database,
        "src",
        "dst",
        name=unique_name,
        channel=2,
        reader_extra={"fetchSize": 200},
        setting_extra={"speed": {"channel": 2, "record": 2000}},
    )
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(doc))
    port = _free_port()
    proc = subprocess.Popen(
        [
            *SLUICE,
            "run",
            str(job_file),
            "-q",
            "--metrics-port",
            str(port),
            "--summary-json",
            str(tmp_path / "summary.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # writer-1 crashes once with rows applied but not prepared: its restart must not
        # lose or double what the metrics count.
        env={**os.environ, "SLUICE_FAULTS": "writer-1:mid_write:2"},
    )
    scrapes = []
    try:
        while proc.poll() is None:
            s = _scrape(port)
            if s is not None:
                scrapes.append(s)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert table_fingerprint(conn, mysql_database, "dst") == table_fingerprint(
        conn, mysql_database, "src"
    )
    assert len(scrapes) >= 5, f"only {len(scrapes)} scrapes while the job ran"
    read = [_total(s, "sluice_num_read_total") for s in scrapes]
    written = [_total(s, "sluice_num_write_total") for s in scrapes]
    assert read == sorted(read) and written == sorted(written)  # counters never go back
    assert any(0 < r < rows for r in read), read  # seen mid-run
    assert max(read) <= rows and max(written) <= rows
    with_latency = [s for s in scrapes if _total(s, "sluice_end_to_end_latency_seconds_count")]
    assert with_latency, "no latency observed in any scrape"
    last = with_latency[-1]
    inf = 'sluice_end_to_end_latency_seconds_bucket{job="%s",task="writer-%d",le="+Inf"}'
    assert sum(last.get(inf % (unique_name, i), 0) for i in range(2)) == _total(
        last, "sluice_end_to_end_latency_seconds_count"
    )
    assert f'sluice_snapshot_progress_percent{{job="{unique_name}"}}' in last

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["numRead"] == summary["numWrite"] == rows
    assert 0 <= summary["latency_p50_ms"] <= summary["latency_p99_ms"] < 60_000
    assert "latency p50" in out

    # The final snapshot in sluice-status: every row read, written and timed.
    status = subprocess.run(
        [*SLUICE, "status", unique_name, "--json"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    records = json.loads(status.stdout)
    assert records["job"]["state"] == "FINISHED"
    metrics = records["metrics"]
    assert (metrics["totals"]["numRead"], metrics["totals"]["numWrite"]) == (rows, rows)
    assert sum(sum(t["latency"]["counts"]) for t in metrics["tasks"] if t["latency"]) == rows
    assert sum(t["rows"] for t in metrics["tasks"] if t["kind"] == "writer") == rows
    writer1 = next(t for t in metrics["tasks"] if t["task"] == "writer-1")
    assert (writer1["restarts"], writer1["failures"]) == (1, {"crash": 1})
    table = subprocess.run(
        [*SLUICE, "status", unique_name], capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0, table.stderr
    assert f"numRead {rows:,}" in table.stdout
    assert re.search(r"^writer-1\s+[\d,]+\s", table.stdout, re.M), table.stdout
    assert re.search(r"^reader-0\s+3,000\b", table.stdout, re.M), table.stdout


def _row_times(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(Kafka timestamp ms, value size) of every row on the data topic (barriers have no key)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, eof = [], set()
    deadline = time.monotonic() + 30
    while len(eof) < len(parts) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            eof.add(m.partition())
            continue
        if m.key() is not None:
            out.append((m.timestamp()[1], len(m.value())))
    c.close()
    return sorted(out)


@pytest.mark.parametrize("limit", ["record", "bytes"])
def test_rate_limit_holds_within_ten_percent(
    limit, mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    rows = 10_000
    conn = mysql_connect(mysql_url, mysql_database)
    _tables(conn, rows)
    # Rows here encode to ~125 bytes: 250,000 B/s is also about 2,000 rows/s, ~5 s.
    rate = 2000 if limit == "record" else 250_000
    job = build_job(
        mysql_job(
            mysql_url,
            mysql_database,
            "src",
            "dst",
            name=unique_name,
            reader_extra={"fetchSize": 100},
            setting_extra={"speed": {"channel": 1, limit: rate}},
        )
    )
    summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    assert summary.numWrite == rows
    times = _row_times(kafka_bootstrap, f"sluice.{unique_name}.{summary.run}.data")
    assert len(times) == rows
    span_s = (times[-1][0] - times[0][0]) / 1000
    # Everything after the first row's batch was paid for during the span.
    amount = rows - 1 if limit == "record" else sum(n for _t, n in times[1:])
    achieved = amount / span_s
    print(f"{limit}: {achieved:.0f}/s over {span_s:.1f}s (limit {rate})")
    assert achieved == pytest.approx(rate, rel=0.10), f"{achieved:.0f}/s over {span_s:.1f}s"


def test_no_password_in_logs_status_summary_or_errors(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    conn = mysql_connect(mysql_url, mysql_database)
    _tables(conn, 2000)
    user, password = f"pw_{uuid.uuid4().hex[:12]}", f"Pw-{uuid.uuid4().hex}!"
    log_dir = tmp_path / "logs"
    try:
        with conn.cursor() as cur:
            for h in ("localhost", "127.0.0.1", "%"):
                cur.execute(f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT ALL ON `{mysql_database}`.* TO '{user}'@'{h}'")
                cur.execute(f"GRANT SUPER ON *.* TO '{user}'@'{h}'")  # for XA RECOVER
        doc = mysql_job(
            mysql_url,
            mysql_database,
            "src",
            "dst",
            name=unique_name,
            setting_extra={
                "log": {"isLogger": True, "path": str(log_dir), "format": "json", "level": "debug"}
            },
        )
        for side in ("reader", "writer"):
            param = doc["job"]["content"][0][side]["parameter"]
            param.update({"username": user, "password": password})
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps(doc))
        summary_file = tmp_path / "summary.json"
        ok = subprocess.run(
            [*SLUICE, "-v", "run", str(job_file), "--summary-json", str(summary_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ok.returncode == 0, ok.stderr
        assert table_fingerprint(conn, mysql_database, "dst") == table_fingerprint(
            conn, mysql_database, "src"
        )
        # Failing runs: a wrong password, and a password put into the JDBC URL.
        wrong_pw = f"Wrong-{uuid.uuid4().hex}"
        bad = json.loads(json.dumps(doc))
        bad["job"]["content"][0]["writer"]["parameter"]["password"] = wrong_pw
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        failed = subprocess.run(
            [*SLUICE, "run", str(tmp_path / "bad.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert failed.returncode != 0 and "access denied" in failed.stderr.lower(), failed.stderr
        in_url = json.loads(json.dumps(doc))
        conn_spec = in_url["job"]["content"][0]["writer"]["parameter"]["connection"][0]
        conn_spec["jdbcUrl"] += f"&password={password}"
        (tmp_path / "url.json").write_text(json.dumps(in_url))
        refused = subprocess.run(
            [*SLUICE, "run", str(tmp_path / "url.json")], capture_output=True, text=True, timeout=60
        )
        assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
    finally:
        with conn.cursor() as cur:
            for h in ("localhost", "127.0.0.1", "%"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{h}'")
    log_file = log_dir / f"{unique_name}.log"
    lines = log_file.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {p["task"] for p in parsed if "task" in p} >= {"reader-0", "writer-0"}
    assert all(p["job"] == unique_name and p["level"] and "message" in p for p in parsed)
    assert any(p["level"] == "DEBUG" for p in parsed)
    status = [
        (k or b"").decode() + (v or b"").decode()
        for k, v, _p, _o in read_to_end(kafka_bootstrap, STATUS_TOPIC)
        if unique_name.encode() in (k or b"") + (v or b"")
    ]
    assert status
    places = {
        "log file": log_file.read_text(),
        "stdout/stderr": ok.stdout + ok.stderr,
        "summary": summary_file.read_text(),
        "status topic": "\n".join(status),
        "errors": failed.stdout + failed.stderr + refused.stdout + refused.stderr,
    }
    for where, text in places.items():
        assert password not in text, f"the password appears in the {where}"
        assert wrong_pw not in text, f"the wrong password appears in the {where}"
    assert os.path.getsize(log_file) > 0


def test_cdc_latency_and_lag_while_running(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    """Binlog CDC: every change is timed source commit → sink commit, and the reader says
    how far behind the binlog's end it is."""
    from testkit.cdc import binlog_position, cdc_job, execute
    from testkit.wait import wait_until

    conn = mysql_connect(mysql_url, mysql_database)
    execute(
        conn,
        "CREATE TABLE src (id BIGINT PRIMARY KEY, v INT)",
        "CREATE TABLE dst (id BIGINT PRIMARY KEY, v INT)",
    )
    job = cdc_job(
        mysql_url,
        mysql_database,
        ["src"],
        mysql_database,
        "dst",
        name=unique_name,
        start=binlog_position(conn),
        writers=2,
    )
    (tmp_path / "cdc.json").write_text(json.dumps(job))
    port = _free_port()
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        [*SLUICE, "run", str(tmp_path / "cdc.json"), "-q", "--metrics-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def scraped(check) -> bool:
            assert proc.poll() is None, f"sluice run ended: {(tmp_path / 'run.log').read_text()}"
            s = _scrape(port)
            return s is not None and check(s)

        started = time.monotonic()
        wait_until(lambda: scraped(lambda s: "sluice_lag_binlog_bytes" in str(s)), 60, "a reader")
        print(f"reader reporting after {time.monotonic() - started:.1f}s")
        # One change first, so that the writers are up before the timed ones.
        execute(conn, "INSERT INTO src VALUES (-1, 0)")
        wait_until(
            lambda: scraped(lambda s: _total(s, "sluice_end_to_end_latency_seconds_count") == 1),
            60,
            "the first change to land",
        )
        for t in range(5):  # 5 transactions of 100 rows, a little apart
            execute(
                conn,
                "BEGIN",
                *(f"INSERT INTO src VALUES ({t * 100 + i}, {i})" for i in range(100)),
                "COMMIT",
            )
            time.sleep(0.3)
        execute(conn, "UPDATE src SET v = v + 1 WHERE id % 7 = 0")
        changes = 1 + 500 + len(range(0, 500, 7))
        counters = (
            "sluice_end_to_end_latency_seconds_count",
            "sluice_num_read_total",
            "sluice_num_write_total",
        )
        # Each task reports to the runner on its own: the three agree once all have spoken,
        # and none may ever pass the number of changes made.
        wait_until(
            lambda: scraped(lambda s: all(_total(s, c) >= changes for c in counters)),
            60,
            f"{changes} changes timed, read and written",
        )
        s = _scrape(port)
        assert s is not None
        assert {c: _total(s, c) for c in counters} == dict.fromkeys(counters, changes)
        assert table_fingerprint(conn, mysql_database, "dst") == table_fingerprint(
            conn, mysql_database, "src"
        )
        p99_key = f'sluice_latency_p99_milliseconds{{job="{unique_name}"}}'
        # The job's quantiles are refreshed once a second.
        wait_until(lambda: scraped(lambda s: p99_key in s), 10, "the job's p99")
        s = _scrape(port)
        p50 = s[f'sluice_latency_p50_milliseconds{{job="{unique_name}"}}']
        p99 = s[p99_key]
        print(f"CDC latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        # Whole-second event times and a 500 ms checkpoint interval: between 0 and a few s.
        assert 0 < p50 <= p99 < 10_000, (p50, p99)
        # The reader asks the server how far the binlog's end is every 5 s; once caught up it
        # is less than the last few transactions behind (a missing gauge must fail here).
        lag_key = "sluice_lag_binlog_bytes{"
        wait_until(lambda: scraped(lambda s: any(k.startswith(lag_key) for k in s)), 15, "lag")
        s = _scrape(port)
        assert s is not None
        lags = [v for k, v in s.items() if k.startswith(lag_key)]
        assert lags and all(0 <= v < 1_000_000 for v in lags), lags
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
