"""PostgreSQL snapshot benchmark: a table PostgreSQL → Kafka → PostgreSQL exactly once,
against ``pg_dump | psql`` of the same table on the same server, in the same run.

    python -m bench.pg_snapshot [--rows 500000] [--rounds 2]

Prints one JSON object per measurement and a ratio: rows/s of the Sluice job (process
start-up included, 2 reader and 2 writer channels, checkpoints every 5 s) and of
``pg_dump --data-only -t src | psql`` into an empty copy of the table (COPY both ways: the
limit a dump and restore sets), alternating, ``rounds`` times each. Needs SLUICE_POSTGRES_URL
or the local stack's PostgreSQL (``sluice local up --with-postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import machine, servers
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from testkit.postgres import pg_connect, pg_params, pg_reader, pg_writer

DB = "sluice_bench_pg"
TABLE = (
    "id bigint PRIMARY KEY, name varchar(64), amount numeric(12,2), created timestamptz,"
    " qty integer, note text"
)


def postgres_url() -> str:
    url = os.environ.get("SLUICE_POSTGRES_URL")
    if url:
        return url
    from bench.common import REPO_ROOT
    from coordinator.local.stack import LocalStack

    endpoints = LocalStack.from_env(root=REPO_ROOT, with_postgres=True).up(only=["postgres"])
    assert endpoints.postgres_url is not None
    return endpoints.postgres_url


def prepare(url: str, rows: int) -> None:
    admin = pg_connect(url)
    admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {DB}")
    admin.close()
    conn = pg_connect(url, DB)
    conn.execute(f"CREATE TABLE src ({TABLE})")
    conn.execute(
        "INSERT INTO src SELECT g, 'customer-' || g, (g % 100000) / 100.0,"
        " TIMESTAMPTZ '2024-01-01 00:00+00' + g * INTERVAL '1 second', g % 1000,"
        " CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('n', g % 60) END"
        f" FROM generate_series(1, {rows}) AS g"
    )
    conn.execute("VACUUM ANALYZE src")
    conn.close()


def fresh_target(url: str) -> None:
    conn = pg_connect(url, DB)
    conn.execute("DROP TABLE IF EXISTS dst")
    conn.execute(f"CREATE TABLE dst ({TABLE})")
    conn.close()


def same_rows(url: str) -> bool:
    conn = pg_connect(url, DB)
    try:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM dst),"
            " (SELECT count(*) FROM (SELECT * FROM src EXCEPT SELECT * FROM dst) d)"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return bool(row[0] == row[1] and row[2] == 0)


def dump_restore(url: str, rows: int) -> dict[str, Any]:
    fresh_target(url)
    p = pg_params(url)
    env = {**os.environ, "PGHOST": p["host"], "PGPORT": str(p["port"]), "PGUSER": p["user"]}
    if p["password"]:
        env["PGPASSWORD"] = p["password"]
    # The dump names table src; restore it into dst by renaming in the COPY line.
    started = time.monotonic()
    dump = subprocess.Popen(
        ["pg_dump", "--data-only", "-t", "public.src", DB], stdout=subprocess.PIPE, env=env
    )
    sed = subprocess.Popen(
        ["sed", "-e", "s/^COPY public.src /COPY public.dst /"],
        stdin=dump.stdout, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert dump.stdout is not None
    dump.stdout.close()
    restore = subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB], stdin=sed.stdout, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    dump.wait()
    sed.wait()
    seconds = time.monotonic() - started
    if restore.returncode != 0 or dump.returncode != 0:
        raise SystemExit(f"pg_dump | psql failed: {restore.stderr.strip()}")
    return {"bench": "pg_dump|psql", "rows": rows, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds), "target_identical": same_rows(url)}  # fmt: skip


def sluice(bootstrap: str, url: str, rows: int, run: int) -> dict[str, Any]:
    fresh_target(url)
    job = build_job(
        {
            "job": {
                "name": f"bench-pg-snapshot-{int(time.time())}-{run}",
                "content": [
                    {
                        "reader": pg_reader(url, DB, "public.src", splitPk="id", fetchSize=5000),
                        "writer": pg_writer(url, DB, "public.dst", batchSize=5000),
                    }
                ],
                "setting": {
                    "speed": {"readerChannel": 2, "writerChannel": 2},
                    "restore": {"checkpointInterval": 5000},
                },
            }
        }
    )
    started = time.monotonic()
    summary = LocalJobRunner(job, bootstrap, quiet=True).run()
    seconds = time.monotonic() - started
    return {"bench": "sluice postgresqlreader->postgresqlwriter", "rows": rows,
            "status": summary.status, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds), "target_identical": same_rows(url)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    bootstrap, _mysql = servers()
    url = postgres_url()
    prepare(url, args.rows)
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    ours, theirs = [], []
    for run in range(args.rounds):
        limit = dump_restore(url, args.rows)
        print(json.dumps(limit), flush=True)
        result = sluice(bootstrap, url, args.rows, run)
        print(json.dumps(result), flush=True)
        theirs.append(limit["rows_per_s"])
        ours.append(result["rows_per_s"])
    ratio = sorted(ours)[len(ours) // 2] / sorted(theirs)[len(theirs) // 2]
    print(json.dumps({"bench": "ratio", "sluice_over_pg_dump": round(ratio, 2), "goal": 0.7}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
