"""The pure part of ``bench.sysbench_lag``: reading sysbench's and ``/metrics``' text, and
deciding whether the lag stayed bounded. No servers here, so ``tests/unit`` covers it."""

from __future__ import annotations

import re
from typing import Any

# oltp_write_only with its defaults (--index_updates=1 --non_index_updates=1
# --delete_inserts=1) changes 4 rows per transaction: UPDATE of k, UPDATE of c, then DELETE and
# INSERT of the same id. A deadlocked transaction is rolled back and retried by sysbench, so
# committed transactions × 4 is exactly the row events the binlog gets (sysbench's "write"
# count also holds the statements of the rolled-back attempts).
ROWS_PER_TRANSACTION = 4

# Lag is a per-task gauge: the job's lag is its worst task's, not a sum.
_MAX_FAMILIES = ("sluice_lag_milliseconds", "sluice_lag_binlog_bytes")

# "Bounded" allows the late lag to exceed the early lag by this much: binlog event times are
# whole seconds (up to 1 s of error in each lag sample) and the reader's Kafka commits and the
# runner's metrics refresh add up to another second.
SLACK_MS = 2000.0
SLACK_FRACTION = 0.25


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → value per metric family: the lag families' maximum over tasks, every
    other family's sum (e.g. ``sluice_num_read_total`` of all readers)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0]
        try:
            v = float(value)
        except ValueError:
            continue
        if name in _MAX_FAMILIES:
            out[name] = max(out.get(name, v), v)
        else:
            out[name] = out.get(name, 0.0) + v
    return out


def _number(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise ValueError(f"sysbench's output has no {what} (pattern {pattern!r})")
    return float(m.group(1))


def parse_sysbench(output: str) -> dict[str, Any]:
    """The figures of ``sysbench oltp_write_only ... run``'s final report, and its interval
    reports (``--report-interval``) as ``[seconds, tps]`` pairs."""
    transactions = int(_number(r"transactions:\s+(\d+)", output, "transactions"))
    return {
        "transactions": transactions,
        "tps": _number(r"transactions:\s+\d+\s+\(([\d.]+) per sec", output, "tps"),
        "writes": int(_number(r"write:\s+(\d+)", output, "write count")),
        "ignored_errors": int(_number(r"ignored errors:\s+(\d+)", output, "ignored errors")),
        "total_time_s": _number(r"total time:\s+([\d.]+)s", output, "total time"),
        "latency_p95_ms": _number(r"95th percentile:\s+([\d.]+)", output, "95th percentile"),
        "row_events": transactions * ROWS_PER_TRANSACTION,
        "intervals": [
            [int(s), float(tps)]
            for s, tps in re.findall(r"\[\s*(\d+)s \] thds: \d+ tps: ([\d.]+)", output)
        ],
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over t (lag units per second of load)."""
    if len(points) < 2:
        return None
    mt = sum(t for t, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / var


def lag_trend(samples: list[dict[str, Any]], seconds: float, key: str = "lag_ms") -> dict[str, Any]:
    """Is the lag (``key`` of samples taken at ``t`` s into a ``seconds``-long load) bounded?

    Window W = min(60 s, seconds / 5). *Early* is the mean lag over [W, 2W) — after start-up,
    e.g. the second minute of a 5-minute run — and *late* the mean over the last W. A reader
    that keeps up has about the same lag early and late; one that captures a fraction f of
    what is written falls (1 - f) s behind per second, so its late lag is several times its
    early one. ``bounded``: late <= early + 2 s + 25% of early (``SLACK_MS``,
    ``SLACK_FRACTION``), which catches a reader falling behind by more than about 1.3% over
    5 minutes. ``None`` when a window holds no sample (a run shorter than 10 samples or so).
    """
    w = min(60.0, seconds / 5)
    points = [(float(s["t"]), float(s[key])) for s in samples if s.get(key) is not None]
    early = _mean([y for t, y in points if w <= t < 2 * w])
    late = _mean([y for t, y in points if t >= seconds - w])
    slope = _slope([(t, y) for t, y in points if t >= w])
    bounded = None
    if early is not None and late is not None:
        bounded = late <= early + SLACK_MS + SLACK_FRACTION * early
    return {
        "window_s": round(w, 1),
        "early": None if early is None else round(early),
        "late": None if late is None else round(late),
        "slope_per_s": None if slope is None else round(slope, 1),
        "bounded": bounded,
    }
