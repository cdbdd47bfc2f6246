"""The local stack as one thing: Kafka, MariaDB and (on request) HDFS and PostgreSQL under one
state directory.

``sluice local ...`` and the test fixtures both drive this class, so a developer's terminal
and a test session see the same servers, and either can start them for the other.

Idempotence rests on the pid files: a server whose pid file names a live process of ours is
left alone (``up`` only waits until it answers). Every check that can fail without starting
anything (ports, conflicts) runs before anything is installed or started, so a mistake is
reported in well under a second.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from coordinator.errors import ConnectError, SluiceError
from coordinator.local import procs
from coordinator.local.hdfs import LocalHdfs
from coordinator.local.install import install, is_installed
from coordinator.local.kafka import LocalKafka
from coordinator.local.mariadb import LocalMariaDB
from coordinator.local.postgres import LocalPostgres

log = logging.getLogger(__name__)

DEFAULT_KAFKA_PORT = 9092
DEFAULT_MYSQL_PORT = 3306
DEFAULT_HDFS_PORT = 9870
DEFAULT_POSTGRES_PORT = 5432
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = {"kafka": 45.0, "mariadb": 60.0, "hdfs": 30.0, "postgres": 30.0}
# How each server is asked to stop (procs.stop sends SIGKILL after the timeout above).
# PostgreSQL's SIGTERM is a smart shutdown, which waits for every client to disconnect; its
# SIGINT is the fast one: sessions are ended and it stops after one checkpoint.
STOP_SIGNAL = {"postgres": signal.SIGINT}
# Where each port can be changed, for the "port taken" message.
PORT_SETTING = {
    "kafka": "--kafka-port or SLUICE_KAFKA_PORT (Kafka's controller also takes the next port)",
    "mariadb": "--mysql-port or SLUICE_MYSQL_PORT",
    "hdfs": "--hdfs-port or SLUICE_HDFS_PORT (the NameNode's RPC port is the next one)",
    "postgres": "--postgres-port or SLUICE_POSTGRES_PORT",
}

Server = LocalKafka | LocalMariaDB | LocalHdfs | LocalPostgres


@dataclass(frozen=True)
class StackEndpoints:
    """Where clients connect: what SLUICE_KAFKA_BOOTSTRAP and SLUICE_MYSQL_URL are set to."""

    kafka_bootstrap: str
    mysql_url: str
    hdfs_url: str | None = None
    """WebHDFS URL (SLUICE_HDFS_URL) when the stack has HDFS."""
    postgres_url: str | None = None
    """``postgresql://postgres@127.0.0.1:5432/postgres`` (SLUICE_POSTGRES_URL) when the stack
    has PostgreSQL."""


@dataclass(frozen=True)
class ServerStatus:
    """One row of `sluice local status`; ``detail`` says what the health check saw."""

    name: str
    pid: int | None
    port: int
    healthy: bool
    detail: str


class LocalStack:
    """Kafka on ``kafka_port`` (controller on the next port), MariaDB on ``mysql_port``,
    with ``with_hdfs`` HDFS with WebHDFS on ``hdfs_port`` (NameNode RPC on the next port) and
    with ``with_postgres`` PostgreSQL on ``postgres_port``; data, logs and pid files under
    ``state_dir``, software cached in ``cache_dir``.

    A port left as None means: the port the server already runs on, else the default.
    Without ``with_hdfs`` (``with_postgres``) HDFS (PostgreSQL) is neither installed nor
    started, but ``down`` still stops it and ``status`` still reports it when it runs.
    """

    def __init__(
        self,
        state_dir: Path | str = ".sluice",
        kafka_port: int | None = None,
        mysql_port: int | None = None,
        cache_dir: Path | str | None = None,
        hdfs_port: int | None = None,
        with_hdfs: bool = False,
        postgres_port: int | None = None,
        with_postgres: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else Path.cwd() / ".cache"
        self.kafka = LocalKafka(self.state_dir, kafka_port or DEFAULT_KAFKA_PORT, self.cache_dir)
        self.mariadb = LocalMariaDB(self.state_dir, mysql_port or DEFAULT_MYSQL_PORT)
        self.hdfs = LocalHdfs(self.state_dir, hdfs_port or DEFAULT_HDFS_PORT, self.cache_dir)
        self.postgres = LocalPostgres(self.state_dir, postgres_port or DEFAULT_POSTGRES_PORT)
        self.with_hdfs = with_hdfs
        self.with_postgres = with_postgres
        requested = {
            "kafka": kafka_port,
            "mariadb": mysql_port,
            "hdfs": hdfs_port,
            "postgres": postgres_port,
        }
        for server in self.all_servers:
            if requested[server.name] is None and server.running_pid() is not None:
                server.port = server.configured_port() or server.port
        self.started_here: list[str] = []
        """Names of the servers this object's ``up()`` started (not found running)."""

    @classmethod
    def from_env(
        cls,
        state_dir: Path | str | None = None,
        kafka_port: int | None = None,
        mysql_port: int | None = None,
        cache_dir: Path | str | None = None,
        root: Path | None = None,
        hdfs_port: int | None = None,
        with_hdfs: bool = False,
        postgres_port: int | None = None,
        with_postgres: bool = False,
    ) -> LocalStack:
        """Arguments first, then SLUICE_STATE_DIR / SLUICE_KAFKA_PORT / SLUICE_MYSQL_PORT /
        SLUICE_HDFS_PORT / SLUICE_POSTGRES_PORT / SLUICE_CACHE_DIR, then ``.sluice`` and
        ``.cache`` under ``root`` (default: cwd)."""
        root = root or Path.cwd()
        env = os.environ

        def env_port(var: str) -> int | None:
            value = env.get(var)
            if not value:
                return None
            if not value.isdigit():
                raise SluiceError(f"{var}={value!r} is not a port number")
            return int(value)

        return cls(
            state_dir=state_dir or env.get("SLUICE_STATE_DIR") or root / ".sluice",
            kafka_port=kafka_port or env_port("SLUICE_KAFKA_PORT"),
            mysql_port=mysql_port or env_port("SLUICE_MYSQL_PORT"),
            cache_dir=cache_dir or env.get("SLUICE_CACHE_DIR") or root / ".cache",
            hdfs_port=hdfs_port or env_port("SLUICE_HDFS_PORT"),
            with_hdfs=with_hdfs,
            postgres_port=postgres_port or env_port("SLUICE_POSTGRES_PORT"),
            with_postgres=with_postgres,
        )

    @property
    def servers(self) -> list[Server]:
        """The servers ``up`` starts: Kafka and MariaDB, and HDFS and PostgreSQL when asked
        for."""
        return [
            self.kafka,
            self.mariadb,
            *([self.hdfs] if self.with_hdfs else []),
            *([self.postgres] if self.with_postgres else []),
        ]

    @property
    def all_servers(self) -> list[Server]:
        """Every server this state directory can hold, whether asked for or not."""
        return [self.kafka, self.mariadb, self.hdfs, self.postgres]

    @property
    def endpoints(self) -> StackEndpoints:
        hdfs_url = self.hdfs.url if self.with_hdfs or self.hdfs.running_pid() else None
        postgres = self.with_postgres or self.postgres.running_pid()
        return StackEndpoints(
            kafka_bootstrap=self.kafka.bootstrap,
            mysql_url=self.mariadb.url,
            hdfs_url=hdfs_url,
            postgres_url=self.postgres.url if postgres else None,
        )

    def install(self, hdfs: bool = True, postgres: bool = False) -> None:
        install(self.cache_dir, hdfs=hdfs, postgres=postgres)

    def is_running(self) -> bool:
        return all(server.running_pid() is not None for server in self.servers)

    def up(
        self,
        timeout: float = READY_TIMEOUT_S,
        for_tests: bool = False,
        only: Iterable[str] | None = None,
    ) -> StackEndpoints:
        """Start what is not running, wait until everything answers, return the endpoints.

        ``for_tests``: the servers this call starts are stopped again when the last test
        session leaves (see :class:`StackUse`). Without it the caller is a person, who now
        owns the servers it asked for: tests will leave them running. ``only`` limits the
        call to some of :attr:`servers` by name (a test fixture that needs just HDFS or just
        PostgreSQL).
        """
        chosen = None if only is None else set(only)
        wanted = [s for s in self.servers if chosen is None or s.name in chosen]
        with procs.exclusive_lock(self.state_dir / ".lock"):
            running = {s.name: s.running_pid() for s in wanted}
            to_start = [s for s in wanted if running[s.name] is None]
            for server in wanted:
                if running[server.name] is not None:
                    self._check_same_port(server)
            for server in to_start:
                self._check_ports_free(server)
            need_hdfs, need_postgres = self.hdfs in to_start, self.postgres in to_start
            if to_start and not is_installed(
                self.cache_dir, hdfs=need_hdfs, postgres=need_postgres
            ):
                self.install(hdfs=need_hdfs, postgres=need_postgres)
            try:
                for server in to_start:
                    server.start()
                for server in wanted:
                    self._wait_ready(server, timeout, log_time=server in to_start)
            except BaseException:
                # A failed `up` leaves nothing half-started behind: a retry starts clean.
                self._stop([s for s in to_start if s.running_pid() is not None])
                raise
            self.started_here = [s.name for s in to_start]
            marked = self.started_for_tests()
            self._set_started_for_tests(
                marked | set(self.started_here) if for_tests else marked - {s.name for s in wanted}
            )
        return self.endpoints

    @property
    def _for_tests_marker(self) -> Path:
        return self.state_dir / "started-for-tests"

    def started_for_tests(self) -> set[str]:
        """Names of the running servers a test session started and no person claimed since."""
        try:
            return set(self._for_tests_marker.read_text().split())
        except FileNotFoundError:
            return set()

    def _set_started_for_tests(self, names: set[str]) -> None:
        if names:
            self._for_tests_marker.write_text(" ".join(sorted(names)) + "\n")
        else:
            self._for_tests_marker.unlink(missing_ok=True)

    @staticmethod
    def _wait_ready(server: Server, timeout: float, log_time: bool) -> None:
        pid = server.running_pid()
        if pid is None:
            raise SluiceError(
                f"{server.name} exited right after starting; "
                f"last lines of {server.log_path}:\n{procs.tail(server.log_path)}"
            )
        started = time.monotonic()
        server.wait_ready(pid, timeout)
        if log_time:
            log.info("%s ready in %.1f s", server.name, time.monotonic() - started)

    def _check_same_port(self, server: Server) -> None:
        configured = server.configured_port()
        if configured is not None and configured != server.port:
            raise SluiceError(
                f"{server.name} from {self.state_dir} already runs on port {configured}, "
                f"not {server.port}: run `sluice local down` first, or use another --state-dir"
            )

    def _check_ports_free(self, server: Server) -> None:
        for port in server.ports:
            if procs.port_in_use(port):
                raise SluiceError(
                    f"port {port} on 127.0.0.1, needed by {server.name}, is taken by a process "
                    f"that is not ours (not started from {self.state_dir}); "
                    f"stop it or choose another port with {PORT_SETTING[server.name]}"
                )

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop the servers ``up`` started (by pid, after checking the pid is ours), or only
        those in ``names``; leave data and logs. Returns the names of the servers stopped."""
        wanted = set(names) if names is not None else {s.name for s in self.all_servers}
        with procs.exclusive_lock(self.state_dir / ".lock"):
            stopped = self._stop([s for s in self.all_servers if s.name in wanted])
            self._set_started_for_tests(self.started_for_tests() - wanted)
        return stopped

    @staticmethod
    def _stop(servers: list[Server]) -> list[str]:
        stopped = []
        for server in servers:
            pid = server.running_pid()
            if pid is None:
                continue
            log.info("stopping %s (pid %d)", server.name, pid)
            sig = STOP_SIGNAL.get(server.name, signal.SIGTERM)
            procs.stop(pid, server.name, STOP_TIMEOUT_S[server.name], sig)
            server.pid_file.unlink(missing_ok=True)
            stopped.append(server.name)
        return stopped

    def status(self) -> list[ServerStatus]:
        """Each server's pid, port and the result of a real round trip through it (HDFS and
        PostgreSQL only when asked for or running)."""
        result = []
        asked = self.servers
        shown = [s for s in self.all_servers if s in asked or s.running_pid() is not None]
        for server in shown:
            pid = server.running_pid()
            if pid is None:
                detail = f"not running (no live process of ours in {server.pid_file})"
                port = server.configured_port() or server.port
                result.append(ServerStatus(server.name, None, port, False, detail))
                continue
            try:
                detail, healthy = server.health(), True
            except ConnectError as e:
                detail, healthy = f"unhealthy: {e}", False
            result.append(ServerStatus(server.name, pid, server.port, healthy, detail))
        return result

    def use(self) -> StackUse:
        return StackUse(self)


class StackUse:
    """Held by every test session that uses the stack, so that servers started *for tests*
    are stopped by the last session that leaves, and never under another session's feet.

    A shared flock on ``<state>/users.lock`` marks a user; the session that can turn it into
    an exclusive lock on the way out is the last one. The lock dies with its process, so a
    crashed session never pins the stack. A stack a person started (``sluice local up``) is
    never stopped here: only servers listed in ``<state>/started-for-tests`` are.
    """

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self._file: IO[str] | None = None

    def __enter__(self) -> StackUse:
        path = self.stack.state_dir / "users.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a")  # noqa: SIM115 - held until __exit__
        fcntl.flock(self._file, fcntl.LOCK_SH)  # waits while a last user stops the stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("local stack left running: another test session still uses it")
        else:
            names = self.stack.started_for_tests()
            if names:
                self.stack.down(names)
        finally:
            self._file.close()
            self._file = None
