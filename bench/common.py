"""Shared by the benchmarks: servers, the machine, and memory of a process tree."""

from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def servers() -> tuple[str, str]:
    """(kafka bootstrap, mysql url): from the environment, else the local stack (started if
    needed — benchmarks measure real servers, the same ones the tests use)."""
    kafka, mysql = os.environ.get("SLUICE_KAFKA_BOOTSTRAP"), os.environ.get("SLUICE_MYSQL_URL")
    if kafka and mysql:
        return kafka, mysql
    from coordinator.local.stack import LocalStack

    endpoints = LocalStack.from_env(root=REPO_ROOT).up()
    return endpoints.kafka_bootstrap, endpoints.mysql_url


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    mariadb = subprocess.run(
        ["mariadbd", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "mariadb": mariadb,
        "kafka": "4.1.1 (KRaft, single node, local)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # Others' work on the same cores shows here: the figures are only as good as this.
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry.name))
    return out


class PeakMemory:
    """Samples the resident memory of this process and its children (the task processes)
    every 0.2 s; ``peak_mib`` is the largest sum seen, ``peak_task_mib`` the largest task."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self.peak_task_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            kids = child_pids(me)
            task_rss = [_rss_kib(k) for k in kids]
            self.peak_task_kib = max([self.peak_task_kib, *task_rss])
            self.peak_kib = max(self.peak_kib, _rss_kib(me) + sum(task_rss))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 1)

    @property
    def peak_task_mib(self) -> float:
        return round(self.peak_task_kib / 1024, 1)


def fresh_src_dst(mysql_url: str, db: str, columns: str, *more: str) -> None:
    """Drop and re-create ``db`` with a ``src`` table of ``columns`` and an empty ``dst`` like
    it (plus any ``more`` statements): the starting point of each CDC benchmark."""
    from testkit.cdc import execute
    from testkit.mysql import mysql_connect

    conn = mysql_connect(mysql_url)
    try:
        execute(
            conn,
            f"DROP DATABASE IF EXISTS {db}",
            f"CREATE DATABASE {db}",
            f"CREATE TABLE {db}.src ({columns})",
            f"CREATE TABLE {db}.dst LIKE {db}.src",
            *more,
        )
    finally:
        conn.close()
