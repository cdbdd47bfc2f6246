"""Metrics of a job run: what tasks measure, how they add up, and the Prometheus text format.

Tasks measure; the runner merges. Everything a task reports is a plain, picklable value
(it crosses a multiprocessing queue inside :class:`~coordinator.reporting.TaskCounters`), and
everything the runner publishes is a JSON-able dict (a *snapshot*), so the same snapshot
feeds ``/metrics``, ``sluice status`` and the run's summary.

End-to-end latency is a histogram with fixed, logarithmic buckets: p50/p99 of any set of
tasks is computable from the summed bucket counts, which is what makes it mergeable across
tasks and scrapes (as Prometheus' ``histogram_quantile`` does).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (ms) of the latency buckets: 1, 1.5, 2, 3, 5, 7 per decade, 1 ms .. ~3 h.
# Six per decade keeps an interpolated quantile within ~25% of the truth at any scale.
BUCKETS_MS: tuple[float, ...] = tuple(m * 10**d for d in range(7) for m in (1, 1.5, 2, 3, 5, 7)) + (
    10_000_000.0,
)


@dataclass
class LatencyHistogram:
    """Counts of observations per bucket of :data:`BUCKETS_MS`, the last one being +Inf."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    sum_ms: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, ms: float, n: int = 1) -> None:
        ms = max(0.0, ms)  # clocks of source and sink may disagree a little
        lo, hi = 0, len(BUCKETS_MS)
        while lo < hi:  # first bound >= ms
            mid = (lo + hi) // 2
            if BUCKETS_MS[mid] < ms:
                lo = mid + 1
            else:
                hi = mid
        self.counts[lo] += n
        self.sum_ms += ms * n

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.sum_ms += other.sum_ms

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1), interpolated linearly inside its bucket; None if empty."""
        total = self.count
        if not total:
            return None
        rank = q * total
        seen = 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                if i == len(BUCKETS_MS):
                    return BUCKETS_MS[-1]  # beyond the last bound: say so, do not invent
                lower = BUCKETS_MS[i - 1] if i else 0.0
                return lower + (BUCKETS_MS[i] - lower) * max(0.0, rank - seen) / c
            seen += c
        return BUCKETS_MS[-1]

    def to_json(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum_ms": self.sum_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LatencyHistogram:
        h = cls()
        if data and len(data.get("counts", ())) == len(h.counts):
            h.counts = [int(c) for c in data["counts"]]
            h.sum_ms = float(data.get("sum_ms", 0.0))
        return h


# FlinkX counts rejected rows as duplicateErrors, nullErrors, conversionErrors, otherErrors.
_ERROR_CLASSES = {
    1062: "duplicate",  # ER_DUP_ENTRY
    1048: "null",  # ER_BAD_NULL_ERROR
    1263: "null",  # ER_WARN_NULL_TO_NOTNULL
    1264: "conversion",  # ER_WARN_DATA_OUT_OF_RANGE
    1265: "conversion",  # WARN_DATA_TRUNCATED
    1292: "conversion",  # ER_TRUNCATED_WRONG_VALUE
    1366: "conversion",  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1406: "conversion",  # ER_DATA_TOO_LONG
}


def error_class(mysql_code: int | None) -> str:
    """A rejected row's class, FlinkX's way: duplicate, null, conversion or other."""
    return _ERROR_CLASSES.get(mysql_code or 0, "other")


@dataclass
class TaskView:
    """What the runner knows of one task when it takes a snapshot."""

    task: str
    kind: str  # "reader" or "writer"
    rows: int
    bytes: int
    errors: int
    restarts: int = 0
    errors_by_class: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    latency: LatencyHistogram | None = None
    failures: dict[str, int] = field(default_factory=dict)
    """Why the task stopped and was restarted: ``transient`` (an error worth another try)
    or ``crash`` (the process died)."""


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def job_snapshot(
    job: str,
    run: str,
    tasks: list[TaskView],
    *,
    elapsed_s: float,
    checkpoints: int = 0,
    checkpoint_ms: float | None = None,
    estimate_rows: int | None = None,
    state: str = "RUNNING",
    committed_rows: int | None = None,
) -> dict[str, Any]:
    """The run's metrics as a JSON-able dict: job totals under ``totals``, one entry per
    task. ``committed_rows`` (the writers' acks, exact even across restarts) is ``numWrite``
    when given; else the writer tasks' sum."""
    latency = LatencyHistogram()
    for t in tasks:
        if t.latency is not None:
            latency.merge(t.latency)
    read = sum(t.rows for t in tasks if t.kind == "reader")
    written = sum(t.rows for t in tasks if t.kind == "writer")
    if committed_rows is not None:
        written = committed_rows
    lags = [t.gauges["lag_ms"] for t in tasks if "lag_ms" in t.gauges]
    behind = [t.gauges["lag_bytes"] for t in tasks if "lag_bytes" in t.gauges]
    totals: dict[str, Any] = {
        "numRead": read,
        "numWrite": written,
        "byteRead": sum(t.bytes for t in tasks if t.kind == "reader"),
        "byteWrite": sum(t.bytes for t in tasks if t.kind == "writer"),
        "errors": sum(t.errors for t in tasks),
        "restarts": sum(t.restarts for t in tasks),
        "rows_per_s": _round(written / elapsed_s if elapsed_s > 0 else 0.0),
        "latency_p50_ms": _round(latency.quantile(0.5)),
        "latency_p99_ms": _round(latency.quantile(0.99)),
        "lag_ms": max(lags) if lags else None,
        "lag_bytes": max(behind) if behind else None,
        "checkpoints": checkpoints,
        "checkpoint_ms": _round(checkpoint_ms),
        # Bounded sources only: rows read against the table's row estimate (an estimate:
        # InnoDB's statistics may be off, so it is capped at 100).
        "snapshot_pct": _round(min(100.0, 100.0 * read / estimate_rows)) if estimate_rows else None,
        "elapsed_s": round(elapsed_s, 3),
    }
    return {
        "job": job,
        "run": run,
        "state": state,
        "ts_ms": int(time.time() * 1000),
        "totals": totals,
        "latency": latency.to_json(),
        "tasks": [
            {
                "task": t.task,
                "kind": t.kind,
                "rows": t.rows,
                "bytes": t.bytes,
                "errors": t.errors,
                "restarts": t.restarts,
                "errors_by_class": dict(t.errors_by_class),
                "failures": dict(t.failures),
                "gauges": dict(t.gauges),
                "latency": t.latency.to_json() if t.latency is not None else None,
            }
            for t in tasks
        ],
    }


# -- Prometheus text exposition format (version 0.0.4) ------------------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label_value(str(v))}"' for k, v in labels.items()) + "}"


def _num(v: float) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "+Inf"
    if isinstance(v, float) and not v.is_integer():
        return repr(v)
    return str(int(v))


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def sample(self, name: str, kind: str, help_: str, value: float, **labels: str) -> None:
        base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        family = base if kind == "histogram" else name
        if family not in self._declared:
            self._declared.add(family)
            self.lines.append(f"# HELP {family} {help_}")
            self.lines.append(f"# TYPE {family} {kind}")
        self.lines.append(f"{name}{_labels(**labels)} {_num(value)}")


_TASK_COUNTERS = (
    ("reader", "rows", "sluice_num_read_total", "Rows read from the source (numRead)."),
    ("reader", "bytes", "sluice_byte_read_total", "Bytes of encoded rows read (byteRead)."),
    ("writer", "rows", "sluice_num_write_total", "Rows committed to the sink (numWrite)."),
    ("writer", "bytes", "sluice_byte_write_total", "Bytes of rows committed (byteWrite)."),
)
_TASK_GAUGES = (
    ("lag_ms", "sluice_lag_milliseconds", "Now minus the event time of the last row read."),
    (
        "lag_bytes",
        "sluice_lag_binlog_bytes",
        "Binlog bytes between the reader and the source's end.",
    ),
    ("checkpoint_ms", "sluice_task_checkpoint_milliseconds", "Last two-phase commit's duration."),
    ("rows_per_s", "sluice_task_rows_per_second", "Rows per second since the task started."),
)
_JOB_GAUGES = (
    ("rows_per_s", "sluice_rows_per_second", "Rows written per second since the run started."),
    ("latency_p50_ms", "sluice_latency_p50_milliseconds", "Median end-to-end latency."),
    ("latency_p99_ms", "sluice_latency_p99_milliseconds", "99th percentile end-to-end latency."),
    ("checkpoints", "sluice_checkpoints_completed", "Checkpoints completed by this run."),
    ("checkpoint_ms", "sluice_checkpoint_milliseconds", "Last checkpoint, trigger to complete."),
    ("snapshot_pct", "sluice_snapshot_progress_percent", "Rows read / the source's estimate."),
)


def render_prometheus(snapshots: list[dict[str, Any]] | dict[str, Any]) -> str:
    """Snapshots (from :func:`job_snapshot`) as Prometheus text, labelled ``job`` and
    ``task``. Several jobs (a worker's) render into one exposition, each family once."""
    if isinstance(snapshots, dict):
        snapshots = [snapshots]
    out = _Exposition()
    families: dict[str, list[tuple[str, str, str, float, dict[str, str]]]] = {}

    def add(name: str, kind: str, help_: str, value: float | None, **labels: str) -> None:
        if value is not None:
            # Grouped by family: Prometheus wants each family's samples together.
            family = _LATENCY if name.startswith(_LATENCY) else name
            families.setdefault(family, []).append((name, kind, help_, value, labels))

    for snap in snapshots:
        job = str(snap.get("job", ""))
        totals = snap.get("totals", {})
        for key, name, help_ in _JOB_GAUGES:
            add(name, "gauge", help_, totals.get(key), job=job)
        for t in snap.get("tasks", []):
            labels = {"job": job, "task": t["task"]}
            for kind, key, name, help_ in _TASK_COUNTERS:
                if t["kind"] == kind:
                    add(name, "counter", help_, t[key], **labels)
            add(
                "sluice_task_restarts_total",
                "counter",
                "Times the task was restarted after a crash or transient error.",
                t.get("restarts", 0),
                **labels,
            )
            classes = t.get("errors_by_class") or {}
            if not classes and t.get("errors"):
                classes = {"other": t["errors"]}
            for cls, n in sorted(classes.items()):
                add(
                    "sluice_errors_total",
                    "counter",
                    "Rows the sink rejected (dirty data): duplicate, null, conversion, other.",
                    n,
                    **labels,
                    **{"class": cls},
                )
            for cls, n in sorted((t.get("failures") or {}).items()):
                add(
                    "sluice_task_failures_total",
                    "counter",
                    "Task stops that led to a restart: transient error or crash.",
                    n,
                    **labels,
                    **{"class": cls},
                )
            gauges = t.get("gauges") or {}
            for key, name, help_ in _TASK_GAUGES:
                add(name, "gauge", help_, gauges.get(key), **labels)
            if t.get("latency") is not None:
                _histogram(add, LatencyHistogram.from_json(t["latency"]), labels)
    for samples in families.values():
        for name, kind, help_, value, labels in samples:
            out.sample(name, kind, help_, value, **labels)
    return "\n".join(out.lines) + "\n"


_LATENCY = "sluice_end_to_end_latency_seconds"
_LATENCY_HELP = "Source commit to sink commit, per row (binlog event times are whole seconds)."


def _histogram(add: Any, h: LatencyHistogram, labels: dict[str, str]) -> None:
    cumulative = 0
    for bound, c in zip((*BUCKETS_MS, math.inf), h.counts, strict=True):
        cumulative += c
        le = "+Inf" if math.isinf(bound) else _num(bound / 1000.0)
        add(f"{_LATENCY}_bucket", "histogram", _LATENCY_HELP, cumulative, **labels, le=le)
    add(f"{_LATENCY}_sum", "histogram", _LATENCY_HELP, h.sum_ms / 1000.0, **labels)
    add(f"{_LATENCY}_count", "histogram", _LATENCY_HELP, h.count, **labels)
