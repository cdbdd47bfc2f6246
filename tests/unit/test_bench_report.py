"""BENCHMARKS.md from benchmark JSON lines: issue 9's targets judged right, ratios, failures
shown. No servers: the benchmarks themselves run only in ``make bench``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import anchor_report
from bench.report import render


def results(capture: int, debezium: int, p99_ms: int, seen: int = 150_000) -> list[dict]:
    return [
        {"bench": "machine", "cpu": "cpu", "cores": 2, "date": "d", "load_avg": [1.5, 1.0, 0.5]},
        {
            "bench": "snapshot",
            "config": "eo-ch1",
            "channel": 1,
            "delivery": "exactly-once",
            "interval_ms": 5000,
            "rows": 1_000_000,
            "seconds": 20.0,
            "rows_per_s": 50_000,
            "peak_memory_mib": 1,
            "peak_task_memory_mib": 1,
            "target_identical": True,
        },
        {"bench": "workload", "events": 1_000_000, "seconds": 40.0, "events_per_s": 25_000},
        {
            "bench": "sluice_capture",
            "events": 1_000_000,
            "startup_s": 3.0,
            "capture_seconds": 1e6 / capture,
            "capture_events_per_s": capture,
        },
        {
            "bench": "sluice_e2e",
            "events": 1_000_000,
            "startup_s": 5.0,
            "capture_seconds": 80.0,
            "capture_events_per_s": 12_500,
            "seconds": 100.0,
            "events_per_s": 10_000,
            "target_identical": True,
        },
        {
            "bench": "debezium",
            "version": "v",
            "events": 1_000_000,
            "startup_s": 30.0,
            "seconds": 1e6 / debezium,
            "events_per_s": debezium,
        },
        {
            "bench": "mariadb_binlog",
            "events": 1_000_000,
            "binlog_mib": 90.0,
            "seconds": 5.0,
            "events_per_s": 200_000,
        },
        {
            "bench": "producer_perf",
            "events": 1_000_000,
            "record_bytes": 120,
            "seconds": 4.0,
            "events_per_s": 250_000,
            "mib_per_s": 28.6,
        },
        {
            "bench": "latency",
            "rate": 5000,
            "offered_events_per_s": 5000,
            "seconds": 30,
            "checkpoint_interval_ms": 500,
            "events": 150_000,
            "seen": seen,
            "p50_ms": 400,
            "p99_ms": p99_ms,
            "max_ms": p99_ms + 50,
        },
    ]


@pytest.fixture(autouse=True)
def chart_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anchor_report, "CHART", tmp_path / "chart.png")


def target_row(md: str, starts: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {starts}"))


def test_targets_met_and_ratios() -> None:
    md = render(results(capture=30_000, debezium=15_000, p99_ms=900))
    assert target_row(md, "Snapshot e2e").endswith("| met |")
    assert "2.00×" in target_row(md, "CDC capture into Kafka")
    assert target_row(md, "CDC capture into Kafka").endswith("| met |")
    assert target_row(md, "p99").endswith("| met |")
    # Sluice capture ÷ mariadb-binlog and ÷ ProducerPerformance
    assert "| 0.15× |" in md and "| 0.12× |" in md
    assert "1.5/1.0/0.5" in md


def test_targets_not_met() -> None:
    md = render(results(capture=20_000, debezium=15_000, p99_ms=1200))
    assert target_row(md, "CDC capture into Kafka").endswith("| not met |")
    assert target_row(md, "p99").endswith("| not met |")
    # rows that never reached the target fail the latency target whatever the p99
    md = render(results(capture=20_000, debezium=15_000, p99_ms=100, seen=149_000))
    assert target_row(md, "p99").endswith("| not met |")


def test_failed_benchmark_is_shown() -> None:
    rows = results(capture=30_000, debezium=15_000, p99_ms=900)
    rows = [r for r in rows if r["bench"] != "debezium"]
    rows.append({"bench": "error", "command": "bench.anchor", "stderr": "Debezium died"})
    md = render(rows)
    assert "**Failed:** `bench.anchor`" in md and "Debezium died" in md
    assert target_row(md, "CDC capture into Kafka").endswith("| not met |")


def test_best_latency_configuration_counts() -> None:
    rows = results(capture=30_000, debezium=15_000, p99_ms=2400)
    fast = dict(rows[-1], checkpoint_interval_ms=200, p99_ms=800)
    md = render([*rows, fast])
    assert target_row(md, "p99").endswith("| met |")
    assert "p99 800 ms" in target_row(md, "p99") and "200 ms checkpoints" in md
    assert "| 2400 ms |" in md and "| 800 ms |" in md  # both runs in the latency table
