"""Binlog CDC helpers for tests and benchmarks: a ``binlogreader`` job, run by ``sluice run``
in a child process (an endless job ends only when asked), and the checks a user cares about."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pymysql

from testkit.mysql import jdbc_url, key_differences, mysql_params, table_fingerprint
from testkit.wait import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
NON_STRICT = ["SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'"]
NARROW = (
    "id BIGINT NOT NULL PRIMARY KEY, k INT NOT NULL, v VARCHAR(64), amount DECIMAL(12,2), "
    "at DATETIME(6), KEY (k)"
)


def execute(conn: pymysql.connections.Connection, *statements: str) -> None:
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def binlog_position(conn: pymysql.connections.Connection) -> dict[str, Any]:
    """``start`` at the binlog's current end, as FlinkX writes it."""
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
    return {"journalName": file, "position": int(pos)}


def cdc_job(
    mysql_url: str,
    source_db: str,
    tables: list[str],
    target_db: str,
    target_table: str,
    *,
    name: str,
    start: dict[str, Any],
    writers: int = 1,
    reader_extra: dict[str, Any] | None = None,
    writer_extra: dict[str, Any] | None = None,
    restore: bool = False,
) -> dict[str, Any]:
    p = mysql_params(mysql_url)
    reader = {
        "jdbcUrl": jdbc_url(mysql_url, source_db),
        "username": p["user"],
        "password": p["password"],
        "table": tables,
        "start": start,
        "heartbeatInterval": 100,
        **(reader_extra or {}),
    }
    writer = {
        "username": p["user"],
        "password": p["password"],
        "connection": [{"jdbcUrl": jdbc_url(mysql_url, target_db), "table": [target_table]}],
        "writeMode": "insert",
        "session": NON_STRICT,
        **(writer_extra or {}),
    }
    return {
        "job": {
            "name": name,
            "content": [
                {
                    "reader": {"name": "binlogreader", "parameter": reader},
                    "writer": {"name": "mysqlwriter", "parameter": writer},
                }
            ],
            "setting": {
                "speed": {"readerChannel": 1, "writerChannel": writers},
                "restore": {"checkpointInterval": 500, "isRestore": restore},
            },
        }
    }


class RunningJob:
    """``sluice run JOB`` in a child process of its own session; :meth:`stop` sends SIGTERM
    (stop after a checkpoint) and, should the run not end, kills its process group."""

    def __init__(
        self, job: dict[str, Any], path: Path, bootstrap: str, args: tuple[str, ...] = ()
    ) -> None:
        """``args``: more ``sluice run`` flags, e.g. ``("--metrics-port", "9500")``."""
        path.write_text(json.dumps(job, indent=2))
        self.log = path.with_suffix(".log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordinator.cli", "run", str(path), "-q"]
            + ["--bootstrap-servers", bootstrap, *args],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def assert_running(self) -> None:
        code = self.proc.poll()
        assert code is None, f"sluice run ended early (exit {code}):\n{self.output()[-4000:]}"

    def kill(self) -> None:
        """A crash: the runner and its tasks die at once (SIGKILL to the process group)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.log.close()

    def stop(self, timeout: float = 60, *, group: bool = False) -> tuple[int, str]:
        """SIGTERM to ``sluice run`` alone, or with ``group`` to it and all its tasks (what a
        terminal, a service manager or ``kill -TERM -<pgid>`` does)."""
        if self.proc.poll() is None:
            if group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        out = self.output()
        self.log.close()
        return self.proc.returncode, out


def same_rows(
    conn: pymysql.connections.Connection, source: tuple[str, str], target: tuple[str, str]
) -> bool:
    return table_fingerprint(conn, *source) == table_fingerprint(conn, *target)


def wait_for_copy(
    conn: pymysql.connections.Connection,
    job: RunningJob,
    pairs: list[tuple[tuple[str, str], tuple[str, str]]],
    timeout: float = 60,
) -> None:
    """Until every target equals its source (count and CHECKSUM TABLE); on timeout, fail
    naming the keys missing from and extra in each target."""

    def done() -> bool:
        job.assert_running()
        return all(same_rows(conn, s, t) for s, t in pairs)

    try:
        wait_until(done, timeout, "targets to equal their sources")
    except AssertionError:
        report = []
        for (sdb, stable), (tdb, ttable) in pairs:
            if sdb == tdb:
                diff = key_differences(conn, sdb, stable, ttable)
            else:
                diff = _cross_db_differences(conn, (sdb, stable), (tdb, ttable))
            report.append(
                f"{sdb}.{stable} {table_fingerprint(conn, sdb, stable)} vs {tdb}.{ttable} "
                f"{table_fingerprint(conn, tdb, ttable)}: {diff}"
            )
        raise AssertionError("target differs from source:\n" + "\n".join(report)) from None


def _cross_db_differences(
    conn: pymysql.connections.Connection, source: tuple[str, str], target: tuple[str, str]
) -> dict[str, list[object]]:
    s, t = "`{}`.`{}`".format(*source), "`{}`.`{}`".format(*target)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT a.id FROM {s} a LEFT JOIN {t} b ON a.id = b.id WHERE b.id IS NULL LIMIT 20"
        )
        missing = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"SELECT b.id FROM {t} b LEFT JOIN {s} a ON a.id = b.id WHERE a.id IS NULL LIMIT 20"
        )
        extra = [r[0] for r in cur.fetchall()]
    return {"missing": missing, "extra": extra}
