"""Processes of the local stack: start detached, find by pid file, stop by pid.

A pid file alone proves nothing (pids are reused, files go stale after a crash or a reboot), so
a pid counts as *ours* only while the process is alive and its command line names our state
directory. Nothing here ever signals a process that fails that test.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from coordinator.errors import SluiceError


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True while the process runs. A zombie is dead: it is reaped here when it is our child
    (a test session that started a server and then stopped it), and otherwise only waits for
    its parent to reap it."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def owned_pid(pid_file: Path, marker: str, state_dir: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, runs ``marker`` (e.g. ``kafka.Kafka``)
    and names ``state_dir`` on its command line; otherwise None, and a stale file is removed."""
    pid = read_pid(pid_file)
    if pid is None:
        return None
    args = cmdline(pid) if is_alive(pid) else []
    joined = " ".join(args)
    if args and marker in joined and str(state_dir) in joined:
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def start_detached(
    cmd: Sequence[str], log_path: Path, pid_file: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session so it outlives the CLI that started it and a Ctrl-C in
    that terminal does not reach it; its output is appended to ``log_path``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Popen returns once exec has closed its pipe, but the kernel sets the new program's
    # arguments up a moment later: read in that window, /proc/<pid>/cmdline is empty and
    # `owned_pid` would disown a server that is starting fine (seen on a loaded CI machine).
    wait_until(lambda: bool(cmdline(proc.pid)) or proc.poll() is not None, 10)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def stop(pid: int, name: str, timeout: float, sig: signal.Signals = signal.SIGTERM) -> None:
    """``sig`` (SIGTERM: Kafka, MariaDB and HDFS shut down cleanly on it; PostgreSQL is given
    SIGINT), wait up to ``timeout`` seconds, then SIGKILL. The caller has checked the pid is
    ours."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if wait_until(lambda: not is_alive(pid), timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_until(lambda: not is_alive(pid), 10):
        raise SluiceError(f"{name} (pid {pid}) survived SIGKILL; check it with `ps -p {pid}`")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on ``host:port`` now. Binding (not connecting) also
    catches a socket that is bound but not listening yet, and a listener on 0.0.0.0.
    SO_REUSEADDR, which both Kafka and MariaDB set, keeps TIME_WAIT leftovers of a server we
    just stopped from counting as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Serialise up/down/install across processes (two test sessions starting at once)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
