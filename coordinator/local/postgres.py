"""The local PostgreSQL: Debian's PostgreSQL 15 with its own cluster under the state dir, on
loopback, superuser ``postgres`` without a password, set up for logical decoding and two-phase
commit (what a PostgreSQL source and writer need).

The settings live in a generated ``postgresql.conf`` beside the data directory (not on the
command line) so that a developer can read them in one place; it includes the one initdb
wrote (locale, time zone, ...) and overrides what Sluice needs. Clients connect over TCP
(``psql -h 127.0.0.1 -p 5432 -U postgres``) or through the socket in ``<state>/postgres``.

PostgreSQL refuses to run as root: as root, initdb and the server run as Debian's ``postgres``
user (through ``setpriv``, which execs, so the pid file holds the server's own pid), which
owns the cluster's folder. That user must be able to enter every folder above it: when it
cannot reach the state dir (a checkout under root's 0700 home), the cluster (data,
postgresql.conf, socket) lives in ``/var/tmp/sluice-postgres-<hash of the state dir>``
instead, and the state dir keeps the pid file and the log.

Stopped with SIGINT (fast shutdown: open sessions are ended, a checkpoint is written); SIGTERM
(smart shutdown) would wait for every client to disconnect.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from coordinator.errors import ConnectError, SluiceError
from coordinator.local import procs
from coordinator.local.install import postgres_program, which

log = logging.getLogger(__name__)

# On the server's command line (Debian's /usr/lib/postgresql/15/bin/postgres); the backends it
# forks rename themselves ("postgres: checkpointer"), so only the postmaster carries it.
MARKER = "bin/postgres"
# PostgreSQL refuses to run as root; as root, initdb and the server run as this user.
OS_USER = "postgres"
SUPERUSER = "postgres"
# What logical replication and prepared transactions rely on; status reports a server without
# them as unhealthy. Each is a predicate on the value SHOW returns.
CDC_SETTINGS = {
    "wal_level": ("logical", lambda v: v == "logical"),
    "max_prepared_transactions": ("> 0", lambda v: v.isdigit() and int(v) > 0),
}
SHOWN_SETTINGS = [*CDC_SETTINGS, "max_replication_slots", "max_wal_senders"]
# sun_path is 108 bytes with its NUL: longer socket paths make the server fail at start.
SOCKET_PATH_MAX = 107


class LocalPostgres:
    """PostgreSQL under ``<state>/postgres``: data/, postgresql.conf, postgresql.log,
    postgres.pid and the unix socket."""

    name = "postgres"

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.home = state_dir / "postgres"
        """Where the launcher keeps the pid file and the log."""
        self.log_path = self.home / "postgresql.log"
        self.pid_file = self.home / "postgres.pid"

    @property
    def cluster_home(self) -> Path:
        """The cluster's folder (data/, postgresql.conf): the home, unless the server's OS
        user could not reach it; then a folder named after the state dir in /var/tmp."""
        user = self._os_user_if_any()
        if user is None or untraversable(self.state_dir, user) is None:
            return self.home
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
        base = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
        return base / f"sluice-postgres-{digest}"

    @property
    def data_dir(self) -> Path:
        return self.cluster_home / "data"

    @property
    def conf(self) -> Path:
        return self.cluster_home / "postgresql.conf"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts ``.s.PGSQL.<port>``: the home, unless that path would be too
        long for a unix socket (a deep state dir); then a folder named after it in /tmp."""
        home = self.cluster_home
        if len(os.fsencode(home / f".s.PGSQL.{self.port}")) <= SOCKET_PATH_MAX:
            return home
        digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"sluice-postgres-{digest}"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def running_pid(self) -> int | None:
        # -D names the cluster's folder on the server's command line: that is how it is ours.
        return procs.owned_pid(self.pid_file, MARKER, self.cluster_home)

    def configured_port(self) -> int | None:
        """The port in postgresql.conf: the one the server runs on, or last ran on."""
        try:
            lines = self.conf.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith("port = "):
                return int(line.split("=", 1)[1])
        return None

    def start(self) -> None:
        postgres = postgres_program("postgres")
        if postgres is None:
            raise SluiceError(
                "PostgreSQL 15 is not installed; run `sluice local install --with-postgres`"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.cluster_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prepare_for_os_user()
        self._initialize_data_dir()
        self.conf.write_text(self._postgresql_conf())
        # -D puts the state dir on the command line, which is how `down` recognises the
        # server as ours; config_file can only be given there.
        cmd = [postgres, "-D", str(self.data_dir), "-c", f"config_file={self.conf}"]
        log.info("starting PostgreSQL on 127.0.0.1:%d (log: %s)", self.port, self.log_path)
        procs.start_detached(
            self._as_os_user(cmd), self.log_path, self.pid_file, cwd=self.cluster_home
        )

    @staticmethod
    def _os_user_if_any() -> pwd.struct_passwd | None:
        """The postgres account when we are root and it exists (before install it may not)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(OS_USER)
        except KeyError:
            return None

    @staticmethod
    def _os_user() -> pwd.struct_passwd | None:
        """The account initdb and the server run as: None (this one) unless we are root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(OS_USER)
        except KeyError:
            raise SluiceError(
                f"PostgreSQL refuses to run as root, and there is no {OS_USER!r} user to run "
                "it as (Debian's postgresql package creates one); run as another user"
            ) from None

    def _as_os_user(self, cmd: list[str]) -> list[str]:
        user = self._os_user()
        if user is None:
            return cmd
        setpriv = which("setpriv")
        if setpriv is None:
            raise SluiceError("PostgreSQL refuses to run as root, and setpriv is not installed")
        # setpriv execs the program: the pid recorded is the server's own.
        return [setpriv, f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", *cmd]

    def _prepare_for_os_user(self) -> None:
        """As root: give the cluster's folder (and the socket folder) to the postgres user,
        after checking that it can reach them at all."""
        socket_dir = self.socket_dir
        if socket_dir != self.cluster_home:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        user = self._os_user()
        if user is None:
            return
        cluster = self.cluster_home
        if cluster != self.home:
            log.info(
                "user %s cannot enter %s; the PostgreSQL cluster lives in %s",
                OS_USER, untraversable(self.state_dir, user), cluster,
            )  # fmt: skip
        blocked = untraversable(cluster.parent, user)  # the folder itself becomes the user's
        if blocked is not None:
            mode = stat.filemode(blocked.stat().st_mode)
            raise SluiceError(
                f"PostgreSQL runs as user {OS_USER} (it refuses to run as root), which cannot "
                f"enter {blocked} ({mode}); choose a --state-dir (SLUICE_STATE_DIR) whose "
                f"folders others may enter, or allow it with `chmod o+x {blocked}`"
            )
        # The server writes its log through a descriptor the launcher opens, so only the
        # folders (data/ is initdb's, made as that user) need to be the user's.
        for path in {cluster, socket_dir}:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _initialize_data_dir(self) -> None:
        """Create the cluster on first start. The marker is written only after a complete run,
        so an interrupted one is redone instead of leaving a broken data dir."""
        marker = self.data_dir / ".sluice-initialized"
        if marker.exists():
            return
        initdb = postgres_program("initdb")
        if initdb is None:
            raise SluiceError(
                "PostgreSQL 15 is not installed; run `sluice local install --with-postgres`"
            )
        shutil.rmtree(self.data_dir, ignore_errors=True)
        cmd = [initdb, "-D", str(self.data_dir), f"--username={SUPERUSER}", "--auth=trust"]
        # --no-sync: like fsync=off below, a dev-stack choice (an OS crash may lose the cluster).
        cmd += ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        log.info("initialising PostgreSQL data directory %s", self.data_dir)
        result = subprocess.run(
            self._as_os_user(cmd), capture_output=True, text=True, check=False,
            cwd=self.cluster_home,
        )  # fmt: skip
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise SluiceError(f"initdb failed for {self.data_dir}:\n{output}")
        marker.write_text("")
        user = self._os_user()
        if user is not None:
            os.chown(marker, user.pw_uid, user.pw_gid)

    def _postgresql_conf(self) -> str:
        def quoted(value: object) -> str:
            return "'" + str(value).replace("'", "''") + "'"

        return "\n".join(
            [
                "# Written by `sluice local up --with-postgres` at every start; "
                "edit coordinator/local/postgres.py.",
                "# initdb's settings first (locale, time zone, shared memory type), ours after:",
                "# the last value of a setting wins.",
                f"include_if_exists {quoted(self.data_dir / 'postgresql.conf')}",
                "listen_addresses = '127.0.0.1'",
                f"port = {self.port}",
                f"unix_socket_directories = {quoted(self.socket_dir)}",
                # Errors go to stderr, which the launcher appends to postgresql.log.
                "logging_collector = off",
                "log_destination = 'stderr'",
                "# CDC: logical decoding (pgoutput slots) and two-phase commit (PREPARE",
                "# TRANSACTION, what an exactly-once writer commits with).",
                "wal_level = logical",
                "max_prepared_transactions = 64",
                "max_replication_slots = 20",
                "max_wal_senders = 20",
                "max_connections = 200",
                "shared_buffers = 128MB",
                "# Dev stack only: commits are not flushed to disk, so killing the server",
                "# (chaos tests) loses nothing, only an OS crash could. Production keeps",
                "# fsync=on and synchronous_commit=on.",
                "fsync = off",
                "synchronous_commit = off",
                "# Logical decoding reads flushed WAL only: without synchronous commits a commit",
                "# reaches a slot when the WAL writer flushes it, every 200 ms by default.",
                "wal_writer_delay = 10ms",
                "",
            ]
        )

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Ready = the superuser can log in over TCP and run a query (the server refuses
        connections while it starts up or recovers)."""
        deadline = time.monotonic() + timeout
        while True:
            if not procs.is_alive(pid):
                raise self._start_failed(pid, "postgres exited")
            try:
                self.query("SELECT 1")
                return
            except ConnectError:
                if time.monotonic() >= deadline:
                    raise self._start_failed(pid, f"not ready within {timeout:.0f} s") from None
                time.sleep(0.2)

    def _start_failed(self, pid: int, why: str) -> SluiceError:
        return SluiceError(
            f"PostgreSQL (pid {pid}) did not start on 127.0.0.1:{self.port}: {why}. "
            f"Last lines of {self.log_path}:\n{procs.tail(self.log_path)}"
        )

    def query(self, sql: str) -> tuple[Any, ...]:
        """Run one statement over TCP as the superuser; return its first row."""
        import psycopg

        try:
            conn = psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=3,
                autocommit=True,
            )
        except psycopg.Error as e:
            raise ConnectError(f"PostgreSQL at 127.0.0.1:{self.port} does not answer: {e}") from e
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                row = cur.fetchone() if cur.description else None
                return tuple(row) if row else ()
        except psycopg.Error as e:
            raise ConnectError(f"PostgreSQL at 127.0.0.1:{self.port} failed `{sql}`: {e}") from e
        finally:
            conn.close()

    def health(self) -> str:
        """A real query plus the settings CDC needs; raise ConnectError if either fails."""
        settings = ", ".join(f"current_setting('{n}')" for n in SHOWN_SETTINGS)
        row = self.query(f"SELECT current_setting('server_version'), {settings}")
        version = f"PostgreSQL {row[0]}"
        values = dict(zip(SHOWN_SETTINGS, [str(v) for v in row[1:]], strict=True))
        wrong = [
            f"{n}={values[n]} (needs {needs})"
            for n, (needs, ok) in CDC_SETTINGS.items()
            if not ok(values[n])
        ]
        if wrong:
            raise ConnectError(f"{version} answers but is not set up for CDC: {', '.join(wrong)}")
        return f"ok: {version}, " + " ".join(f"{n}={v}" for n, v in values.items())

    def answers(self) -> bool:
        try:
            self.query("SELECT 1")
        except ConnectError:
            return False
        return True


def untraversable(folder: Path, user: pwd.struct_passwd) -> Path | None:
    """The first of ``folder`` and its parents, from the root down, that ``user`` may not
    enter (no search permission for it), or None when it can reach ``folder``."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for path in [*reversed(folder.parents), folder]:
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            if st.st_uid == user.pw_uid:
                bit = stat.S_IXUSR
            elif st.st_gid in groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return path
    return None
