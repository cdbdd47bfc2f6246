"""Plays a :class:`Case` against the real servers: creates ``src`` and ``dst`` in a fresh
database, runs ``sluice run`` as a child process (its own process group), SIGKILLs it once
``kill_after`` rows are in the target and runs the (possibly edited) job again with
``isRestore``, then hands the outcome to the oracle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymysql

from testkit.mysql import mysql_connect
from tests.differential.model import Case, Job, Row, Table, job_json
from tests.differential.oracle import Outcome, check, checksum

REPO_ROOT = Path(__file__).resolve().parents[2]
SLUICE = [sys.executable, "-m", "coordinator.cli"]


def insert_rows(conn: pymysql.connections.Connection, table: Table, name: str, rows) -> None:
    if not rows:
        return
    cols = ", ".join(c.q for c in table.columns)
    marks = ", ".join(["%s"] * len(table.columns))
    with conn.cursor() as cur:
        # One statement per row keeps a 2 MB row under max_allowed_packet's default.
        for row in rows:
            cur.execute(f"INSERT INTO `{name}` ({cols}) VALUES ({marks})", row)


def _count(conn: pymysql.connections.Connection, db: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.dst")
        return int(cur.fetchone()[0])


class CaseRun:
    """One case in its own database (dropped by :meth:`close`)."""

    def __init__(self, mysql_url: str, bootstrap: str, workdir: Path, case: Case) -> None:
        self.mysql_url, self.bootstrap, self.workdir, self.case = (
            mysql_url,
            bootstrap,
            workdir,
            case,
        )
        self.db = f"diff_{uuid.uuid4().hex[:12]}"
        self.name = self.db
        self.conn = mysql_connect(mysql_url)
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.db}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{self.db}`")
            cur.execute(case.table.ddl("src"))
            cur.execute(case.target.ddl("dst"))
        insert_rows(self.conn, case.table, "src", case.rows)
        insert_rows(self.conn, case.target, "dst", case.target_rows)

    def close(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.db}`")
        finally:
            self.conn.close()

    def _start(self, job: Job, restore: bool, tag: str) -> tuple[subprocess.Popen[str], Path]:
        path = self.workdir / f"{self.name}-{tag}.json"
        path.write_text(job_json(self.case, job, self.mysql_url, self.db, self.name, restore))
        err = self.workdir / f"{self.name}-{tag}.stderr"
        proc = subprocess.Popen(
            [*SLUICE, "run", str(path), "-q", "--bootstrap-servers", self.bootstrap]
            + ["--summary-json", str(path.with_suffix(".summary.json"))],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err.open("w"),
            text=True,
            start_new_session=True,
        )
        return proc, err

    def _finish(self, proc: subprocess.Popen[str], err: Path, timeout: float) -> Outcome:
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        return Outcome(code, err.read_text(errors="replace"))

    def play(self) -> Outcome:
        """Run the case to its end; return the last run's outcome, and remember the target
        as it was before that last run (what a failing run must leave it as)."""
        case = self.case
        self.before: list[Row] = list(case.target_rows)
        self.before_last_run = checksum(self.conn, self.db, "dst")
        proc, err = self._start(case.job, restore=False, tag="1")
        if case.kill_after is None:
            return self._finish(proc, err, case.timeout)
        deadline = time.monotonic() + case.timeout
        landed = 0
        while proc.poll() is None and time.monotonic() < deadline:
            landed = _count(self.conn, self.db) - len(case.target_rows)
            if landed >= case.kill_after:
                break
            time.sleep(0.05)
        if proc.poll() is not None:  # done before the kill point: nothing to resume
            return Outcome(proc.returncode, err.read_text(errors="replace"))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.before_last_run = checksum(self.conn, self.db, "dst")
        proc, err = self._start(case.final_job(), restore=True, tag="2")
        outcome = self._finish(proc, err, case.timeout)
        outcome.killed_after = landed
        return outcome

    def check(self, outcome: Outcome) -> None:
        check(self.conn, self.db, self.case, self.before, self.before_last_run, outcome)


def run_case(mysql_url: str, bootstrap: str, workdir: Path, case: Case) -> Outcome:
    """Play ``case`` and assert the invariant on what it left."""
    run = CaseRun(mysql_url, bootstrap, workdir, case)
    try:
        outcome = run.play()
        run.check(outcome)
        return outcome
    finally:
        run.close()
