"""Snapshot benchmark: a 6-column table MySQL → Kafka → MySQL, end to end.

    python -m bench.snapshot [--rows 1000000] [--config eo-ch3 ...]

Prints one JSON object per configuration: rows/s end to end (source read to sink commit,
process start-up included), peak memory of the runner plus its task processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from bench.common import PeakMemory, machine, servers
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from testkit.mysql import mysql_connect, mysql_job

CONFIGS: dict[str, dict[str, object]] = {
    "eo-ch1": {"channel": 1, "delivery": "exactly-once", "interval_ms": 5000},
    "eo-ch3": {"channel": 3, "delivery": "exactly-once", "interval_ms": 5000},
    "alo-ch3": {"channel": 3, "delivery": "at-least-once", "interval_ms": 5000},
    "eo-ch3-cp1s": {"channel": 3, "delivery": "exactly-once", "interval_ms": 1000},
    "eo-ch3-cp20s": {"channel": 3, "delivery": "exactly-once", "interval_ms": 20000},
}


def prepare(mysql_url: str, db: str, rows: int) -> None:
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(
            f"CREATE TABLE `{db}`.src (id BIGINT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(12,2),"
            " created DATETIME(6), qty INT, note VARCHAR(100) NULL)"
        )
        cur.execute(
            f"INSERT INTO `{db}`.src SELECT seq, CONCAT('customer-', seq), (seq % 100000) / 100,"
            " TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, seq % 1000,"
            f" IF(seq % 3 = 0, NULL, REPEAT('n', seq % 60)) FROM `{db}`.seq_1_to_{rows}"
        )
        cur.execute(f"ANALYZE TABLE `{db}`.src")
    conn.close()


def run_one(bootstrap: str, mysql_url: str, db: str, rows: int, name: str) -> dict[str, object]:
    cfg = CONFIGS[name]
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{db}`.dst")
        cur.execute(f"CREATE TABLE `{db}`.dst LIKE `{db}`.src")
    job = mysql_job(
        mysql_url,
        db,
        "src",
        "dst",
        name=f"bench-{name}-{int(time.time())}",
        channel=int(cfg["channel"]),  # type: ignore[call-overload]
        write_mode="insert",
        reader_extra={"fetchSize": 5000},
        writer_extra={"batchSize": 2000},
        setting_extra={
            "restore": {"checkpointInterval": cfg["interval_ms"]},
            "delivery": cfg["delivery"],
        },
    )
    cpu_before = _children_cpu_s()
    with PeakMemory() as mem:
        summary = LocalJobRunner(build_job(job), bootstrap, quiet=True).run()
    cpu_s = _children_cpu_s() - cpu_before
    with conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE `{db}`.src, `{db}`.dst")
        sums = [r[1] for r in cur.fetchall()]
    conn.close()
    return {
        "bench": "snapshot",
        "config": name,
        **cfg,
        "rows": summary.numWrite,
        "seconds": round(summary.duration_s, 1),
        "rows_per_s": round(summary.numWrite / summary.duration_s),
        "checkpoints": summary.checkpoints,
        "peak_memory_mib": mem.peak_mib,
        "peak_task_memory_mib": mem.peak_task_mib,
        "target_identical": sums[0] == sums[1],
        # Other work on the machine skews the numbers: say how busy it was.
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        # CPU of the task processes (not the servers): steadier than rows/s on a busy machine.
        "task_cpu_us_per_row": round(cpu_s / max(1, summary.numWrite) * 1e6, 1),
    }


def _children_cpu_s() -> float:
    """User + system CPU of the finished (joined) child processes: the job's tasks."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--config", action="append", choices=sorted(CONFIGS))
    # Runs sharing a database drop each other's tables: give concurrent runs their own.
    ap.add_argument("--database", default="sluice_bench_snapshot")
    args = ap.parse_args(argv)
    bootstrap, mysql_url = servers()
    db = args.database
    prepare(mysql_url, db, args.rows)
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    for name in args.config or list(CONFIGS):
        print(json.dumps(run_one(bootstrap, mysql_url, db, args.rows, name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
