"""Latency from source commit to sink commit at a fixed offered rate.

    python -m bench.latency [--rate 5000] [--seconds 30] [--interval-ms 500]

A ``binlogreader`` → 3 ``mysqlwriter`` channels job (exactly-once, ``interval-ms``
checkpoints) runs in ``sluice run``. A generator inserts ``rate`` rows/s for ``seconds`` (one
autocommit multi-row INSERT every 20 ms); each row's ``created_at TIMESTAMP(6) DEFAULT
NOW(6)`` is its source commit time (the statement is its own transaction, committed
milliseconds later). A poller queries the target every 20 ms: a row's latency is the start
of the first query that saw it minus ``created_at``. Both clocks are this machine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_src_dst, machine, servers
from testkit.cdc import RunningJob, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect

DB = "sluice_bench_latency"
COLUMNS = (
    "id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(64), created_at TIMESTAMP(6) NOT NULL DEFAULT NOW(6)"
)
TICK_S = 0.02


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def generate(mysql_url: str, rate: int, seconds: float, done: threading.Event) -> dict[str, Any]:
    """Insert ``rate`` rows/s on a fixed schedule (late ticks catch up, never skip)."""
    conn = mysql_connect(mysql_url, DB)
    per_tick = max(1, round(rate * TICK_S))
    ticks = round(seconds / TICK_S)
    began = time.monotonic()
    next_id = 1
    with conn.cursor() as cur:
        for t in range(ticks):
            wait = began + t * TICK_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            values = ",".join(f"({i},'v{i}')" for i in range(next_id, next_id + per_tick))
            cur.execute(f"INSERT INTO src (id, v) VALUES {values}")
            next_id += per_tick
    elapsed = time.monotonic() - began
    conn.close()
    done.set()
    return {"rows": next_id - 1, "offered_events_per_s": round((next_id - 1) / elapsed)}


def poll(mysql_url: str, expected: threading.Event, stats: dict[str, Any], timeout: float) -> None:
    """Record, per id, when it became visible in the target; until all written rows are."""
    conn = mysql_connect(mysql_url, DB)
    seen: dict[int, float] = {}
    low = 1  # every id below is seen: rows of different writers commit out of id order
    deadline: float | None = None
    with conn.cursor() as cur:
        while True:
            at = time.time()
            cur.execute("SELECT id, UNIX_TIMESTAMP(created_at) FROM dst WHERE id >= %s", (low,))
            for row_id, created in cur.fetchall():
                if row_id not in seen:
                    seen[row_id] = at - float(created)
            while low in seen:
                low += 1
            if expected.is_set():
                deadline = deadline or time.monotonic() + timeout
                if low > stats.get("rows", 0) > 0 or time.monotonic() > deadline:
                    break
            time.sleep(TICK_S)
    conn.close()
    stats["latencies"] = sorted(seen.values())


def measure(
    bootstrap: str, mysql_url: str, rate: int, seconds: float, interval_ms: int
) -> dict[str, Any]:
    fresh_src_dst(mysql_url, DB, COLUMNS)
    conn = mysql_connect(mysql_url, DB)
    spec = cdc_job(
        mysql_url,
        DB,
        ["src"],
        DB,
        "dst",
        name=f"bench-latency-{int(time.time())}",
        start=binlog_position(conn),
        writers=3,
        writer_extra={"session": []},
    )
    spec["job"]["setting"]["restore"]["checkpointInterval"] = interval_ms
    with tempfile.TemporaryDirectory() as tmp:
        job = RunningJob(spec, Path(tmp) / "job.json", bootstrap)
        try:
            # Warm-up row (id 0): the job is planned, running and caught up before timing.
            execute(conn, "INSERT INTO src (id, v) VALUES (0, 'warm-up')")
            deadline = time.monotonic() + 120
            with conn.cursor() as cur:
                while time.monotonic() < deadline:
                    job.assert_running()
                    if cur.execute("SELECT 1 FROM dst WHERE id = 0"):
                        break
                    time.sleep(0.2)
            done = threading.Event()
            stats: dict[str, Any] = {}
            poller = threading.Thread(target=poll, args=(mysql_url, done, stats, 120))
            poller.start()
            stats.update(generate(mysql_url, rate, seconds, done))
            poller.join()
        finally:
            job.stop()
    conn.close()
    lat = stats["latencies"]
    return {
        "bench": "latency",
        "rate": rate,
        "offered_events_per_s": stats["offered_events_per_s"],
        "seconds": seconds,
        "checkpoint_interval_ms": interval_ms,
        "writer_channels": 3,
        "events": stats["rows"],
        "seen": len(lat),
        "p50_ms": round(percentile(lat, 0.50) * 1000),
        "p99_ms": round(percentile(lat, 0.99) * 1000),
        "max_ms": round(lat[-1] * 1000) if lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval-ms", type=int, default=500)
    args = ap.parse_args(argv)
    bootstrap, mysql_url = servers()
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    result = measure(bootstrap, mysql_url, args.rate, args.seconds, args.interval_ms)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
