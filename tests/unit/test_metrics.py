"""The latency histogram, the Prometheus exposition, log formatting and redaction (no
servers)."""

from __future__ import annotations

import json
import logging
import random
import urllib.request

import pytest

from coordinator.logs import JsonFormatter, RedactingFormatter, job_secrets, log4j_to_logging
from coordinator.metrics import (
    BUCKETS_MS,
    LatencyHistogram,
    TaskView,
    job_snapshot,
    render_prometheus,
)
from coordinator.metrics_http import MetricsServer


def test_quantiles_are_close_to_the_exact_ones():
    rng = random.Random(7)
    values = [rng.lognormvariate(5, 1.2) for _ in range(20_000)]  # ms, median ~150
    h = LatencyHistogram()
    for v in values:
        h.observe(v)
    values.sort()
    for q in (0.5, 0.99):
        exact = values[int(q * len(values))]
        assert h.quantile(q) == pytest.approx(exact, rel=0.25), q
    assert h.count == len(values)
    assert h.sum_ms == pytest.approx(sum(values))


def test_histograms_merge_into_the_histogram_of_all_observations():
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(1000):
        (a if i % 3 else b).observe(i * 7.3)
        both.observe(i * 7.3)
    a.merge(b)
    assert a.counts == both.counts
    assert a.quantile(0.99) == both.quantile(0.99)


def test_edges_empty_negative_and_beyond_the_last_bucket():
    h = LatencyHistogram()
    assert h.quantile(0.5) is None
    h.observe(-5)  # a sink clock slightly behind the source's
    assert h.counts[0] == 1
    h.observe(BUCKETS_MS[-1] * 10, n=100)
    assert h.quantile(0.99) == BUCKETS_MS[-1]
    assert LatencyHistogram.from_json(h.to_json()) == h


def _snapshot() -> dict:
    lat = LatencyHistogram()
    lat.observe(40, 90)
    lat.observe(900, 10)
    tasks = [
        TaskView("reader-0", "reader", 100, 5000, 0, gauges={"lag_ms": 12.0}),
        TaskView(
            "writer-0",
            "writer",
            100,
            5000,
            2,
            1,
            {"conversion": 2},
            {"checkpoint_ms": 30.5},
            lat,
        ),
    ]
    return job_snapshot("shop", "r1", tasks, elapsed_s=2.0, checkpoints=3, estimate_rows=200)


def test_snapshot_totals():
    t = _snapshot()["totals"]
    assert (t["numRead"], t["numWrite"], t["byteRead"], t["errors"]) == (100, 100, 5000, 2)
    assert t["rows_per_s"] == 50.0
    assert t["snapshot_pct"] == 50.0
    assert 30 < t["latency_p50_ms"] <= 50
    assert 700 < t["latency_p99_ms"] <= 1000
    json.dumps(_snapshot())  # it is published as JSON


def _parse(text: str) -> dict[str, float]:
    samples = {}
    families_seen: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            family = line.split()[2]
            assert family not in families_seen, f"family {family} declared twice"
            families_seen.append(family)
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_prometheus_exposition():
    snap = _snapshot()
    text = render_prometheus([snap, {**snap, "job": 'a"b'}])
    s = _parse(text)
    assert s['sluice_num_read_total{job="shop",task="reader-0"}'] == 100
    assert s['sluice_num_write_total{job="shop",task="writer-0"}'] == 100
    assert s['sluice_errors_total{job="shop",task="writer-0",class="conversion"}'] == 2
    assert s['sluice_lag_milliseconds{job="shop",task="reader-0"}'] == 12
    bucket = 'sluice_end_to_end_latency_seconds_bucket{job="shop",task="writer-0",le="%s"}'
    assert s[bucket % "0.05"] == 90
    assert s[bucket % "+Inf"] == 100
    assert s['sluice_end_to_end_latency_seconds_count{job="shop",task="writer-0"}'] == 100
    assert 'job="a\\"b"' in text  # label values escaped


def test_error_classes_and_task_failures():
    from coordinator.metrics import error_class

    assert [error_class(c) for c in (1062, 1048, 1406, 1264, 1213, None)] == [
        "duplicate",
        "null",
        "conversion",
        "conversion",
        "other",
        "other",
    ]
    view = TaskView("writer-0", "writer", 0, 0, 0, 2, failures={"transient": 1, "crash": 1})
    s = _parse(render_prometheus(job_snapshot("j", "r", [view], elapsed_s=1.0)))
    assert s['sluice_task_failures_total{job="j",task="writer-0",class="crash"}'] == 1
    assert s['sluice_task_restarts_total{job="j",task="writer-0"}'] == 2


def test_metrics_server_serves_the_latest_snapshot():
    snap = _snapshot()
    server = MetricsServer(lambda: [snap], 0, "127.0.0.1").start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = r.read().decode()
        assert 'sluice_num_read_total{job="shop",task="reader-0"} 100' in body
    finally:
        server.close()


def test_a_metrics_port_in_use_is_one_clear_error():
    from coordinator.errors import ConfigError

    first = MetricsServer(lambda: [], 0, "127.0.0.1")
    try:
        with pytest.raises(ConfigError, match=f"--metrics-port {first.port}: cannot listen"):
            MetricsServer(lambda: [], first.port, "127.0.0.1")
    finally:
        first.httpd.server_close()


def test_log4j_pattern_and_json_lines_and_redaction():
    fmt = log4j_to_logging("%d{yyyy-MM-dd HH:mm:ss} %-5p [%t] %c - %m%n 100%")
    assert fmt == "%(asctime)s %(levelname)-5s [%(threadName)s] %(name)s - %(message)s 100%%"
    record = logging.makeLogRecord(
        {"name": "sluice.x", "levelname": "INFO", "msg": "login %s ok", "args": ('p"w-s3cret',)}
    )
    line = RedactingFormatter(JsonFormatter(job="j", task="reader-0"), ['p"w-s3cret']).format(
        record
    )
    parsed = json.loads(line)
    assert parsed["message"] == "login *** ok"
    assert (parsed["job"], parsed["task"], parsed["level"]) == ("j", "reader-0", "INFO")
    assert "s3cret" not in line


def test_job_secrets_finds_every_password():
    from coordinator.job import build_job
    from testkit.mysql import mysql_job

    job = build_job(mysql_job("mysql://u:rd-pw@127.0.0.1:3306", "db", "a", "b", name="j"))
    job = job.with_parameter("writer", password="wr-pw")
    assert sorted(job_secrets(job)) == ["rd-pw", "wr-pw"]
