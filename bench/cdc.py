"""Binlog CDC benchmarks.

    python -m bench.cdc [--rows 100000] [--read-only]

``cdc_read``: how fast the binlog reader alone turns binlog rows into row events (one core),
for a 5-column table and for the 31-column all-types table. ``cdc``: end to end — a
``binlogreader`` → ``mysqlwriter`` job (3 writer channels) running in ``sluice run`` while
the source takes ``rows`` inserts, ``rows/2`` updates and ``rows/10`` deletes; the time from
the first source write until the target equals the source (CHECKSUM TABLE).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, machine, servers
from coordinator.connectors import build_source
from coordinator.job import build_job
from testkit.alltypes import COLUMNS, FILL
from testkit.cdc import NARROW, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, table_fingerprint

DB = "sluice_bench_cdc"


def changes(table: str, rows: int) -> list[str]:
    return [
        f"INSERT INTO {table} SELECT seq, seq % 100, CONCAT('v', seq), seq / 100, NOW(6) "
        f"FROM {DB}.seq_1_to_{rows}",
        f"UPDATE {table} SET v = CONCAT(v, 'u') WHERE id % 2 = 0",
        f"DELETE FROM {table} WHERE id % 10 = 0",
    ]


def read_only(mysql_url: str, rows: int) -> list[dict[str, Any]]:
    conn = mysql_connect(mysql_url, DB)
    execute(
        conn,
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        f"CREATE TABLE narrow ({NARROW})",
        f"CREATE TABLE wide ({COLUMNS})",
        f"CREATE TABLE single ({NARROW})",
    )
    start = binlog_position(conn)
    execute(conn, *changes("narrow", rows))
    execute(conn, FILL.format(table="wide", database=DB, rows=rows // 5))
    # one row per transaction (a TABLE_MAP event each), as OLTP writes look
    execute(
        conn,
        f"BEGIN NOT ATOMIC FOR i IN 1..{rows // 5} DO "
        "INSERT INTO single VALUES (i, i % 100, CONCAT('v', i), i / 100, NOW(6)); END FOR; END",
    )
    expected = {"narrow": rows + rows // 2 + rows // 10, "wide": rows // 5, "single": rows // 5}
    out = []
    for table, count in expected.items():
        spec = cdc_job(mysql_url, DB, [table], DB, table, name="bench-cdc-read", start=start)
        source = build_source(build_job(spec))
        source.check()
        reader = source.build_part(source.list_parts()[0], "reader-0", None)
        started, n = time.monotonic(), 0
        while n < count:
            n += len(reader.next_batch() or [])
        seconds = time.monotonic() - started
        reader.close()
        columns = 31 if table == "wide" else 5
        out.append(
            {
                "bench": "cdc_read",
                "table": f"{columns} columns" + (", 1 row/txn" if table == "single" else ""),
                "events": n,
                "seconds": round(seconds, 2),
                "events_per_s": round(n / seconds),
            }
        )
    conn.close()
    return out


def end_to_end(bootstrap: str, mysql_url: str, rows: int, write_mode: str) -> dict[str, Any]:
    conn = mysql_connect(mysql_url, DB)
    src, dst = f"src_{write_mode}", f"dst_{write_mode}"
    execute(conn, f"CREATE TABLE {src} ({NARROW})", f"CREATE TABLE {dst} LIKE {src}")
    spec = cdc_job(
        mysql_url,
        DB,
        [src],
        DB,
        dst,
        name=f"bench-cdc-{write_mode}-{int(time.time())}",
        start=binlog_position(conn),
        writers=3,
        writer_extra={"writeMode": write_mode, "session": []},
    )
    spec["job"]["setting"]["restore"]["checkpointInterval"] = 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, "-m", "coordinator.cli", "run", str(path), "-q"]
            + ["--bootstrap-servers", bootstrap],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            time.sleep(3)  # planned and running: the start position is fixed before this
            started = time.monotonic()
            execute(conn, *changes(src, rows))
            source = table_fingerprint(conn, DB, src)
            deadline = started + 600
            while table_fingerprint(conn, DB, dst) != source and time.monotonic() < deadline:
                time.sleep(0.2)
            seconds = time.monotonic() - started
            identical = table_fingerprint(conn, DB, dst) == source
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    conn.close()
    events = rows + rows // 2 + rows // 10
    return {
        "bench": "cdc",
        "write_mode": write_mode,
        "writer_channels": 3,
        "events": events,
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "target_identical": identical,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument(
        "--read-only", action="store_true", help="only cdc_read (the reader alone, one core)"
    )
    args = ap.parse_args(argv)
    bootstrap, mysql_url = servers()
    conn = mysql_connect(mysql_url)
    execute(conn, f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}")
    conn.close()
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    for result in read_only(mysql_url, args.rows):
        print(json.dumps(result), flush=True)
    if args.read_only:
        return 0
    for mode in ("insert", "update"):
        print(json.dumps(end_to_end(bootstrap, mysql_url, args.rows, mode)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
