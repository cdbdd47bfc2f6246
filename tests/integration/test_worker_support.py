"""Helpers (no tests) for the worker tests: ``sluice worker`` subprocesses (each in its own process
group, so SIGKILL / SIGSTOP reach its task processes too) and a small REST client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testkit.wait import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


class WorkerProc:
    def __init__(
        self,
        group: str,
        bootstrap: str,
        log_path: Path,
        slots: int = 16,
        rest: tuple[str, ...] = ("--rest-host", "127.0.0.1"),
        scheme: str = "http",
    ) -> None:
        """``rest``: the worker's REST flags (host, credentials, TLS)."""
        self.port = free_port()
        self.scheme = scheme
        self.log_path = log_path
        self.log = log_path.open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordinator.cli", "worker", "--group", group]
            + ["--bootstrap-servers", bootstrap, "--rest-port", str(self.port), *rest]
            + ["--slots", str(slots), "--session-timeout-ms", "6000"],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any] | None:
        try:
            code, body = http("GET", self.url + "/health")
        except OSError:
            return None
        return body if code == 200 else None

    def owns(self, owner: str | None) -> bool:
        return owner is not None and owner.endswith(f":{self.pid}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Teardown: wake (if stopped) and kill the worker and all its tasks."""
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.log.close()


def wait_for_group(workers: list[WorkerProc], timeout: float = 40) -> None:
    """Every worker answers /health and owns slots (the group has balanced over all)."""

    def ready() -> bool:
        for w in workers:
            h = w.health()
            if not h or not h.get("slots"):
                return False
        return True

    wait_until(ready, timeout, "every worker to join the group and own slots")


def job_status(url: str, name: str) -> dict[str, Any]:
    code, body = http("GET", f"{url}/jobs/{name}/status")
    assert code == 200, body
    return body
