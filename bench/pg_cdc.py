"""PostgreSQL CDC side by side: ``pgwalreader`` and Debezium's PostgreSQL connector on the
same WAL range.

    python -m bench.pg_cdc [--changes 1000000] [--no-debezium]

Two ``pgoutput`` slots (one each) and a publication of the table are created first, so both
readers stream exactly the workload that follows: ``changes`` row changes on a 5-column
table — the MariaDB anchor's mix (``bench.workload``): 62.5% inserts, 31.25% updates, 6.25%
deletes, in transactions of 1,000 rows. Then, each alone on the machine:

* ``sluice_pg_capture``: ``pgwalreader`` → Kafka, at-least-once like Debezium on Connect (the
  job's writer is ``streamwriter`` with ``print: false``); events/s from the first to the
  last record in the data topic.
* ``debezium_pg``: Debezium's PostgreSQL connector on Kafka Connect standalone
  (``bench.debezium``), JSON without schemas; the same count over its topic.

Prints one JSON object per line; ``ratio`` is Sluice's events/s over Debezium's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import debezium
from bench.anchor import data_topic
from bench.common import REPO_ROOT, machine
from testkit.cdc import RunningJob
from testkit.postgres import pg_connect, pg_params, pg_wal_reader

DB = "sluice_bench_pgcdc"
SLUICE_SLOT, DEBEZIUM_SLOT, PUBLICATION = "bench_sluice", "bench_debezium", "bench_pub"


def fresh_database(postgres_url: str) -> None:
    admin = pg_connect(postgres_url)
    for slot in (SLUICE_SLOT, DEBEZIUM_SLOT):
        admin.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = %s",
            (slot,),
        )
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {DB}")
    admin.close()
    conn = pg_connect(postgres_url, DB)
    conn.execute(
        "CREATE TABLE src (id bigint PRIMARY KEY, k int NOT NULL, v varchar(64),"
        " amount numeric(12,2), at timestamp(6))"
    )
    conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE src")
    for slot in (SLUICE_SLOT, DEBEZIUM_SLOT):
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    conn.close()


def write(postgres_url: str, changes: int, batch: int = 1000) -> dict[str, Any]:
    """``bench.workload``'s mix, in PostgreSQL."""
    conn = pg_connect(postgres_url, DB)
    rows = math.ceil(changes / 1.6)
    began = time.monotonic()
    for lo in range(1, rows + 1, batch):
        hi = min(lo + batch - 1, rows)
        conn.execute(
            "INSERT INTO src SELECT g, g % 100, 'v' || g, g / 100.0, now() FROM"
            f" generate_series({lo}, {hi}) g"
        )
    for lo in range(1, rows + 1, 2 * batch):
        hi = min(lo + 2 * batch - 1, rows)
        conn.execute(
            "UPDATE src SET v = v || 'u', amount = amount + 1"
            f" WHERE id BETWEEN {lo} AND {hi} AND id % 2 = 0"
        )
    for lo in range(1, rows + 1, 10 * batch):
        hi = min(lo + 10 * batch - 1, rows)
        conn.execute(f"DELETE FROM src WHERE id BETWEEN {lo} AND {hi} AND id % 10 = 0")
    seconds = time.monotonic() - began
    conn.close()
    total = rows + rows // 2 + rows // 10
    return {"bench": "pg_workload", "events": total, "seconds": round(seconds, 1),
            "events_per_s": round(total / seconds)}  # fmt: skip


def slot_position(postgres_url: str, slot: str) -> str:
    conn = pg_connect(postgres_url)
    row = conn.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    conn.close()
    assert row is not None
    return str(row[0])


def run_sluice(bootstrap: str, postgres_url: str, expected: int) -> dict[str, Any]:
    prefix = f"benchpgcdc{int(time.time())}"
    reader = pg_wal_reader(
        postgres_url, DB, ["public.src"], slotName=SLUICE_SLOT, publicationName=PUBLICATION,
        allowCreateSlot=False, start={"mode": "lsn", "lsn": slot_position(postgres_url, SLUICE_SLOT)},
    )  # fmt: skip
    spec = {
        "job": {
            "name": "bench-pg-capture",
            "content": [{"reader": reader,
                         "writer": {"name": "streamwriter", "parameter": {"print": False}}}],
            "setting": {
                "speed": {"readerChannel": 1, "writerChannel": 1},
                "restore": {"checkpointInterval": 1000},
                "delivery": "at-least-once",
                "kafka": {"topicPrefix": prefix},
            },
        }
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        job = RunningJob(spec, Path(tmp) / "job.json", bootstrap)
        started = time.monotonic()
        try:
            topic = data_topic(bootstrap, prefix)
            first, last, count = debezium.wait_count(
                bootstrap, topic, expected, 1800, alive=lambda: job.proc.poll() is None
            )
        finally:
            code, out = job.stop()
    if first is None or last is None:
        raise RuntimeError(f"Sluice captured {count} of {expected} (exit {code}):\n{out[-3000:]}")
    seconds = max(last - first, 1e-3)
    return {"bench": "sluice_pg_capture", "events": expected,
            "startup_s": round(first - started, 1), "seconds": round(seconds, 1),
            "events_per_s": round(expected / seconds), "delivery": "at-least-once"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--no-debezium", action="store_true")
    args = ap.parse_args(argv)
    bootstrap = os.environ.get("SLUICE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    postgres_url = os.environ.get(
        "SLUICE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    fresh_database(postgres_url)
    work = write(postgres_url, args.changes)
    print(json.dumps(work), flush=True)
    sluice = run_sluice(bootstrap, postgres_url, work["events"])
    print(json.dumps(sluice), flush=True)
    if not args.no_debezium:
        workdir = REPO_ROOT / ".cache" / "bench" / f"debezium-pg-{int(time.time())}"
        workdir.mkdir(parents=True)
        connect = debezium.Connect.postgres(workdir, bootstrap, pg_params(postgres_url), DB,
                                            "src", DEBEZIUM_SLOT, PUBLICATION)  # fmt: skip
        dbz = connect.capture(work["events"]) | {"bench": "debezium_pg"}
        print(json.dumps(dbz), flush=True)
        print(json.dumps({"bench": "pg_capture_ratio",
                          "sluice_over_debezium": round(sluice["events_per_s"]
                                                        / dbz["events_per_s"], 2)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
