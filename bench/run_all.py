"""``make bench``: every benchmark in one go, one JSON object per line on stdout.

``BENCH_QUICK=1`` runs each at a small size (a minute or two in all), to develop with; the
figures are then not the issue's. A benchmark that fails prints an ``error`` line (its
stderr's tail), and the others still run: the report shows what failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

QUICK = os.environ.get("BENCH_QUICK") == "1"
PY = [sys.executable, "-m"]
BENCHES = [
    PY + ["bench.serde"],
    PY + ["bench.snapshot", "--rows", "20000" if QUICK else "1000000"],
    PY + ["bench.cdc", "--rows", "10000" if QUICK else "100000"],
    # Sluice, Debezium and the limits on one >= 1M-change workload (bench.anchor).
    PY + ["bench.anchor", "--changes", "20000" if QUICK else "1000000"],
    # Two checkpoint intervals: how much of the latency is the checkpoint's own wait.
    PY + ["bench.latency", "--rate", "5000", "--seconds", "5" if QUICK else "30"],
    PY
    + ["bench.latency", "--rate", "5000", "--seconds", "5" if QUICK else "30"]
    + ["--interval-ms", "200"],
    # Issue 9's "keeps up with sysbench oltp_write_only at 4 threads, lag bounded 5 min".
    PY
    + ["bench.sysbench_lag", "--seconds", "30" if QUICK else "300", "--threads", "4"]
    + ["--table-size", "10000" if QUICK else "100000"],
]


def main() -> int:
    for cmd in BENCHES:
        out = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(out.stdout)
        if out.returncode != 0:
            tail = out.stderr.strip().splitlines()[-15:]
            error = {"bench": "error", "command": " ".join(cmd[1:]), "stderr": "\n".join(tail)}
            sys.stdout.write(json.dumps(error) + "\n")
        sys.stderr.write(out.stderr[-2000:])
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
