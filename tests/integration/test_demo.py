"""`sluice demo` (what `make demo` runs): the FlinkX note's job, end to end, identical tables.

Regression: a demo killed half-way once made the next demo *resume* the killed run (the
example has isRestore on) into freshly recreated tables, leaving the target short.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.mysql import mysql_connect

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def demo(kafka_bootstrap: str, mysql_url: str, rows: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coordinator.cli",
        "demo",
        "--rows",
        str(rows),
        "--bootstrap-servers",
        kafka_bootstrap,
        "--mysql-url",
        mysql_url,
    ]


def test_demo_after_a_killed_demo_copies_everything(kafka_bootstrap, mysql_url):
    conn = mysql_connect(mysql_url)
    first = subprocess.Popen(
        demo(kafka_bootstrap, mysql_url, 150_000),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert first.stdout is not None
    for line in first.stdout:  # the tables are recreated before this line
        if line.startswith("demo: running"):
            break
    deadline = time.monotonic() + 120
    copied = 0
    while time.monotonic() < deadline and copied < 10_000:
        time.sleep(0.3)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM rpl.flink_test_dst")
                copied = cur.fetchone()[0]
        except Exception:  # noqa: BLE001 - the table does not exist yet
            pass
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    out = subprocess.run(
        demo(kafka_bootstrap, mysql_url, 20_000),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "20,000 rows" in out.stdout and ": identical" in out.stdout, out.stdout
