"""``sluice status JOB``: a job's latest run, checkpoint and metrics, from ``sluice-status``.

The runner of a job (``sluice run``, or a worker) publishes three kinds of records to the
compacted ``sluice-status`` topic: ``job/<job>`` (its latest run and state),
``checkpoint/<job>/<run>`` (the latest checkpoint) and ``metrics/<job>/<run>`` (a metrics
snapshot, see ``coordinator.metrics``). This command reads them and prints a table;
:func:`status_text` renders it from already-read records, for other front ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from coordinator.progress import human_bytes


def add_commands(sub: Any) -> None:
    status = sub.add_parser("status", help="a job's latest run: state, checkpoint, metrics")
    status.add_argument("job", help="job name (job.name, or the job file's name without .json)")
    status.add_argument("--run", help="this run instead of the latest")
    status.add_argument("--json", action="store_true", help="the raw records as JSON")
    status.add_argument(
        "--bootstrap-servers",
        default=None,
        help="Kafka bootstrap (default: $SLUICE_KAFKA_BOOTSTRAP or 127.0.0.1:9092)",
    )
    status.set_defaults(handler=cmd_status)


def job_status_records(bootstrap: str, job: str, run: str | None = None) -> dict[str, Any]:
    """``{"job": ..., "checkpoint": ..., "metrics": ...}`` (each a dict or None) of ``job``'s
    run ``run`` (default: its latest)."""
    from coordinator.errors import ConfigError
    from coordinator.kafka_io import STATUS_TOPIC, latest_json_by_key, read_to_end
    from coordinator.plan import safe_name

    state = latest_json_by_key(read_to_end(bootstrap, STATUS_TOPIC))
    name = safe_name(job)
    latest = state.get(f"job/{name}")
    run = run or (latest.get("run") if isinstance(latest, dict) else None)
    if run is None:
        known = sorted({k.split("/")[1] for k in state if k.startswith("job/")})
        raise ConfigError(
            f"no job {job!r} in topic {STATUS_TOPIC}"
            + (f"; known jobs: {', '.join(known[:20])}" if known else "")
        )
    job_record = latest if isinstance(latest, dict) and latest.get("run") == run else None
    return {
        "job": job_record or {"job": job, "run": run},
        "checkpoint": state.get(f"checkpoint/{name}/{run}"),
        "metrics": state.get(f"metrics/{name}/{run}"),
    }


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), *(fmt.format(*r) for r in rows)]


def status_text(records: dict[str, Any], now_ms: int | None = None) -> str:
    from coordinator.metrics import LatencyHistogram

    now_ms = now_ms or int(time.time() * 1000)
    job, ckpt, metrics = records["job"], records.get("checkpoint"), records.get("metrics")
    lines = [f"job {job.get('job')}  run {job.get('run')}  state {job.get('state', '?')}"]
    if ckpt:
        took = f", {ckpt['duration_ms']} ms" if "duration_ms" in ckpt else ""
        lines.append(
            f"checkpoint {ckpt.get('checkpoint')} {ckpt.get('state')}{took}  "
            f"rows committed {ckpt.get('rows_committed', 0):,}"
        )
    if not metrics:
        lines.append("no metrics published yet")
        return "\n".join(lines)
    t = metrics["totals"]
    age = max(0.0, (now_ms - metrics.get("ts_ms", now_ms)) / 1000)
    lines.append(
        f"metrics of {age:.0f}s ago ({metrics.get('state', '?')}, after {t['elapsed_s']:.0f}s): "
        f"numRead {t['numRead']:,}  numWrite {t['numWrite']:,}  "
        f"byteRead {human_bytes(t['byteRead'])}  byteWrite {human_bytes(t['byteWrite'])}  "
        f"errors {t['errors']:,}"
    )
    extra = [f"rows/s {_cell(t['rows_per_s'])}"]
    extra.append(f"latency p50 {_cell(t['latency_p50_ms'])} ms p99 {_cell(t['latency_p99_ms'])} ms")
    if t.get("lag_ms") is not None:
        extra.append(f"lag {_cell(t['lag_ms'])} ms")
    if t.get("lag_bytes") is not None:
        extra.append(f"binlog behind {human_bytes(t['lag_bytes'])}")
    if t.get("snapshot_pct") is not None:
        extra.append(f"snapshot {t['snapshot_pct']:.1f}%")
    extra.append(f"checkpoints {t['checkpoints']} (last {_cell(t['checkpoint_ms'])} ms)")
    lines.append("  ".join(extra))
    header = ["task", "rows", "bytes", "rows/s", "errors", "restarts", "lag ms"]
    header += ["p50 ms", "p99 ms", "ckpt ms"]
    rows = []
    for task in metrics.get("tasks", []):
        g = task.get("gauges") or {}
        h = LatencyHistogram.from_json(task.get("latency")) if task.get("latency") else None
        rows.append(
            [
                task["task"],
                _cell(task["rows"]),
                human_bytes(task["bytes"]),
                _cell(g.get("rows_per_s")),
                _cell(task["errors"]),
                _cell(task.get("restarts", 0)),
                _cell(g.get("lag_ms")),
                _cell(h.quantile(0.5) if h else None),
                _cell(h.quantile(0.99) if h else None),
                _cell(g.get("checkpoint_ms")),
            ]
        )
    lines += ["", *_table(header, rows)]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    from coordinator.kafka_io import check_reachable
    from coordinator.run_cli import bootstrap_of

    bootstrap = bootstrap_of(args)
    check_reachable(bootstrap)
    records = job_status_records(bootstrap, args.job, args.run)
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        print()
    else:
        print(status_text(records))
    return 0
