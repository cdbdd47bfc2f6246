"""BENCHMARKS.md's sysbench lag row of the issue 9 targets and its section (``bench.sysbench_lag``)."""

from __future__ import annotations

from typing import Any

TARGET = "CDC keeps up with sysbench oltp_write_only at 4 threads, lag bounded 5 min"


def _runs(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("bench") == "sysbench_lag"]


def _s(ms: float | None) -> str:
    return "?" if ms is None else f"{ms / 1000:.1f} s"


def _n(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "?" if v is None else str(v)


def target_row(results: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(target, measured, status): the run the target is about is 4 threads, no rate cap."""
    run = next(
        (r for r in _runs(results) if r.get("threads") == 4 and not r.get("rate_limit_tps")),
        None,
    )
    if run is None:
        return TARGET, "not measured", "open"
    measured = (
        f"{_n(run.get('row_events_written_per_s'))} row events/s written ({run.get('tps')} tx/s) "
        f"for {run.get('seconds')} s; Sluice read {_n(run.get('capture_events_per_s'))}/s "
        f"meanwhile; lag {_s(run.get('lag_ms_early'))} in the second minute → "
        f"{_s(run.get('lag_ms_late'))} in the last; caught up "
        + (
            f"{run['drain_s']} s after sysbench stopped"
            if run.get("drain_s") is not None
            else "never"
        )
    )
    if run.get("bounded") is None or float(run.get("seconds", 0)) < 290:
        status = "open (run shorter than 5 min)"
    elif run["bounded"] and run.get("captured_all"):
        status = "met"
    else:
        status = "not met"
    return TARGET, measured, status


def section(results: list[dict[str, Any]]) -> list[str]:
    runs = _runs(results)
    if not runs:
        return []
    lines = [
        "## CDC under sysbench `oltp_write_only` (`python -m bench.sysbench_lag`)",
        "",
        "sysbench 1.0.20 writes to its sbtest tables (each transaction: UPDATE of an indexed",
        "column, UPDATE of a non-indexed one, DELETE and INSERT of one id = 4 row events) while",
        "`binlogreader` → Kafka captures them (writer: `streamwriter` discarding; exactly-once",
        "runs: `kafkawriter`, Debezium JSON). Lag is the job's",
        "`sluice_lag_milliseconds` sampled every 5 s; *early* is its mean over the second",
        "minute, *late* over the last; **bounded** = late ≤ early + 2 s + 25%. Drain: seconds",
        "from sysbench's end until the reader has read every row event. sysbench, MariaDB,",
        "Kafka and Sluice share the machine's cores (CPU seconds of each during the load).",
        "",
        "| threads | tps cap | delivery | seconds | tx/s | row events/s written | read/s during load | "
        "lag p50 / max | lag early → late | binlog behind max | drain | all read | bounded | "
        "CPU s sysbench / mariadbd / Sluice | load avg after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        cpu = r.get("cpu_s") or {}
        behind, drain = r.get("lag_bytes_max"), r.get("drain_s")
        lines.append(
            f"| {r.get('threads')} | {r.get('rate_limit_tps') or 'none'} | {r.get('delivery')} | "
            f"{r.get('seconds')} | {r.get('tps')} | {_n(r.get('row_events_written_per_s'))} | "
            f"{_n(r.get('capture_events_per_s'))} | {_s(r.get('lag_ms_p50'))} / "
            f"{_s(r.get('lag_ms_max'))} | {_s(r.get('lag_ms_early'))} → {_s(r.get('lag_ms_late'))} | "
            f"{'?' if behind is None else f'{behind / 2**20:.1f} MiB'} | "
            f"{'not caught up' if drain is None else f'{drain} s'} | "
            f"{r.get('captured_all')} | {r.get('bounded')} | "
            f"{cpu.get('sysbench', '?')} / {cpu.get('mariadbd', '?')} / {cpu.get('sluice', '?')} | "
            f"{(r.get('load_avg') or ['?'])[0]} |"
        )
    return lines + [""]
