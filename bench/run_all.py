"""``make bench``: every benchmark in one go, one JSON object per line on stdout."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    [sys.executable, "-m", "bench.serde"],
    [sys.executable, "-m", "bench.snapshot", "--rows", "1000000"],
    [sys.executable, "-m", "bench.cdc", "--rows", "100000"],
]


def main() -> int:
    for cmd in BENCHES:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        sys.stdout.write(out.stdout)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
