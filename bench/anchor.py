"""CDC side by side: Sluice, Debezium and the physical limits on the same binlog range.

    python -m bench.anchor [--changes 1000000] [--no-debezium]

One workload (``bench.workload``: ``changes`` row changes on a 5-column table) is written
once; then, each alone on the machine, over exactly that binlog range:

* ``sluice_capture``: ``binlogreader`` → Kafka, at-least-once like Debezium on Connect (the
  job's writer is ``streamwriter`` with ``print: false``, one channel, which only decodes);
  events/s from the first to the last record in the data topic.
* ``sluice_e2e``: ``binlogreader`` → 3 ``mysqlwriter`` channels, exactly-once, 1 s
  checkpoints: from ``sluice run`` start until the target's CHECKSUM TABLE equals the
  source's (and the data topic's capture rate within that run).
* ``debezium``: Debezium's MariaDB connector on Kafka Connect standalone (``bench.debezium``).
* ``mariadb_binlog``/``producer_perf``: the limits (``bench.limits``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench import debezium, limits
from bench.common import REPO_ROOT, fresh_src_dst, machine, servers
from bench.workload import COLUMNS, write
from testkit.cdc import RunningJob, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_params, table_fingerprint

DB = "sluice_bench_anchor"


def data_topic(bootstrap: str, prefix: str, timeout: float = 120) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in admin.list_topics(timeout=10).topics:
            if name.startswith(prefix + ".") and name.endswith(".data"):
                return name
        time.sleep(0.2)
    raise RuntimeError(f"no data topic {prefix}.*.data appeared")


def sluice_job(mysql_url: str, start: dict[str, Any], *, e2e: bool, prefix: str) -> dict[str, Any]:
    name = f"bench-anchor-{'e2e' if e2e else 'capture'}"
    spec = cdc_job(
        mysql_url,
        DB,
        ["src"],
        DB,
        "dst",
        name=name,
        start=start,
        writers=3 if e2e else 1,
        writer_extra={"writeMode": "update", "session": []},
    )
    setting = spec["job"]["setting"]
    setting["restore"]["checkpointInterval"] = 1000
    setting["kafka"] = {"topicPrefix": prefix}
    if not e2e:
        spec["job"]["content"][0]["writer"] = {
            "name": "streamwriter",
            "parameter": {"print": False},
        }
        setting["delivery"] = "at-least-once"
    return spec


def run_sluice(
    bootstrap: str, mysql_url: str, start: dict[str, Any], expected: int, *, e2e: bool
) -> dict[str, Any]:
    conn = mysql_connect(mysql_url, DB)
    source = table_fingerprint(conn, DB, "src")
    prefix = f"benchanchor{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        job = RunningJob(
            sluice_job(mysql_url, start, e2e=e2e, prefix=prefix), Path(tmp) / "job.json", bootstrap
        )
        started = time.monotonic()
        try:
            topic = data_topic(bootstrap, prefix)
            first, last, count = debezium.wait_count(
                bootstrap, topic, expected, 1800, alive=lambda: job.proc.poll() is None
            )
            identical = None
            done = last
            if e2e:
                while (
                    table_fingerprint(conn, DB, "dst") != source
                    and job.proc.poll() is None
                    and time.monotonic() < started + 1800
                ):
                    time.sleep(0.2)
                done = time.monotonic()
                identical = table_fingerprint(conn, DB, "dst") == source
        finally:
            code, out = job.stop()
    conn.close()
    if first is None or last is None or done is None:
        raise RuntimeError(f"Sluice captured {count} of {expected} (exit {code}):\n{out[-3000:]}")
    capture_s = max(last - first, 1e-3)
    result: dict[str, Any] = {
        "bench": "sluice_e2e" if e2e else "sluice_capture",
        "events": expected,
        "startup_s": round(first - started, 1),
        "capture_seconds": round(capture_s, 1),
        "capture_events_per_s": round(expected / capture_s),
        "delivery": "exactly-once" if e2e else "at-least-once",
        "topic": topic,
    }
    if e2e:
        result |= {
            "seconds": round(done - started, 1),
            "events_per_s": round(expected / (done - started)),
            "target_identical": identical,
            "writer_channels": 3,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--no-debezium", action="store_true")
    args = ap.parse_args(argv)
    bootstrap, mysql_url = servers()
    fresh_src_dst(
        mysql_url,
        DB,
        COLUMNS,
        f"CREATE TABLE {DB}.{debezium.PING} (id INT AUTO_INCREMENT PRIMARY KEY)",
    )
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    connect = None
    if not args.no_debezium:
        # Connect's log and offsets stay in .cache/bench for a look after the run.
        workdir = REPO_ROOT / ".cache" / "bench" / f"debezium-{int(time.time())}"
        workdir.mkdir(parents=True)
        connect = debezium.Connect(workdir, bootstrap, mysql_params(mysql_url), DB, "src")
        ping = mysql_connect(mysql_url, DB)
        connect.prime(lambda: execute(ping, f"INSERT INTO {debezium.PING} VALUES ()"))
        ping.close()
    conn = mysql_connect(mysql_url, DB)
    work = write(conn, "src", args.changes)
    conn.close()
    print(
        json.dumps(
            {
                "bench": "workload",
                "events": work.changes,
                "seconds": round(work.seconds, 1),
                "events_per_s": work.events_per_s,
                "start": work.start,
                "end": work.end,
            }
        ),
        flush=True,
    )
    capture = run_sluice(bootstrap, mysql_url, work.start, work.changes, e2e=False)
    print(json.dumps(capture), flush=True)
    print(
        json.dumps(run_sluice(bootstrap, mysql_url, work.start, work.changes, e2e=True)), flush=True
    )
    if connect is not None:
        print(json.dumps(connect.capture(work.changes)), flush=True)
    print(
        json.dumps(limits.mariadb_binlog(mysql_url, work.start, work.end, work.changes)), flush=True
    )
    print(
        json.dumps(
            limits.producer_perf(
                bootstrap, work.changes, limits.avg_value_size(bootstrap, capture["topic"])
            )
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
