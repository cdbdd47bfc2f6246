"""The local MariaDB: Debian's server binary with its own data directory under the state dir,
on loopback, root without a password, binlog set up the way Sluice's CDC reader needs it.

The settings live in a generated ``my.cnf`` (not on the command line) so that a developer can
read them in one place and ``mariadb --defaults-file=.sluice/mariadb/my.cnf`` just works.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from coordinator.errors import ConnectError, SluiceError
from coordinator.local import procs
from coordinator.local.install import which

log = logging.getLogger(__name__)

MARKER = "mariadbd"
# What the binlog reader relies on; status reports a server without them as unhealthy.
CDC_SETTINGS = {
    "log_bin": "1",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}


class LocalMariaDB:
    """MariaDB under ``<state>/mariadb``: data/, my.cnf, mariadb.log, mariadb.pid."""

    name = "mariadb"

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.home = state_dir / "mariadb"
        self.data_dir = self.home / "data"
        self.cnf = self.home / "my.cnf"
        self.log_path = self.home / "mariadb.log"
        self.pid_file = self.home / "mariadb.pid"
        self.socket = self.home / "mariadb.sock"
        if len(str(self.socket)) > 100:  # a unix socket path must fit in 108 bytes
            digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
            self.socket = Path(tempfile.gettempdir()) / f"sluice-mariadb-{digest}.sock"

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def running_pid(self) -> int | None:
        return procs.owned_pid(self.pid_file, MARKER, self.state_dir)

    def configured_port(self) -> int | None:
        """The port in my.cnf: the one the server runs on, or last ran on."""
        try:
            lines = self.cnf.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith("port="):
                return int(line.split("=", 1)[1])
        return None

    def start(self) -> None:
        mariadbd = which("mariadbd")
        if mariadbd is None:
            raise SluiceError("MariaDB is not installed; run `sluice local install`")
        self.home.mkdir(parents=True, exist_ok=True)
        self._initialize_data_dir()
        self.cnf.write_text(self._my_cnf())
        # --defaults-file must come first; it also puts the state dir on the command line,
        # which is how `down` recognises this process as ours.
        cmd = [mariadbd, f"--defaults-file={self.cnf}", *self._user_args()]
        log.info("starting MariaDB on 127.0.0.1:%d (log: %s)", self.port, self.log_path)
        procs.start_detached(cmd, self.log_path, self.pid_file, cwd=self.home)

    @staticmethod
    def _user_args() -> list[str]:
        # mariadbd refuses to run as root unless told to; as anyone else it runs as that user.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _initialize_data_dir(self) -> None:
        """Create the system tables on first start. The marker is written only after a
        complete run, so an interrupted one is redone instead of leaving a broken data dir."""
        marker = self.data_dir / ".sluice-initialized"
        if marker.exists():
            return
        install_db = which("mariadb-install-db")
        if install_db is None:
            raise SluiceError("MariaDB is not installed; run `sluice local install`")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        cmd = [install_db, "--no-defaults", f"--datadir={self.data_dir}", *self._user_args()]
        cmd += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        log.info("initialising MariaDB data directory %s", self.data_dir)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise SluiceError(f"mariadb-install-db failed for {self.data_dir}:\n{output}")
        marker.write_text("")

    def _my_cnf(self) -> str:
        return "\n".join(
            [
                "# Written by `sluice local up` at every start; edit coordinator/local/mariadb.py.",
                "[mysqld]",
                f"datadir={self.data_dir}",
                f"port={self.port}",
                "bind-address=127.0.0.1",
                f"socket={self.socket}",
                f"pid-file={self.home / 'mariadbd.pid'}",
                # Errors go to stderr, which the launcher appends to mariadb.log.
                "# CDC: row events carrying every column, with column names, and GTIDs.",
                f"log-bin={self.data_dir / 'binlog'}",
                "binlog-format=ROW",
                "binlog-row-image=FULL",
                "binlog-row-metadata=FULL",
                "server-id=1",
                "gtid-strict-mode=ON",
                "character-set-server=utf8mb4",
                "collation-server=utf8mb4_bin",
                "explicit-defaults-for-timestamp=ON",
                "skip-name-resolve",
                "max-connections=500",
                "innodb-buffer-pool-size=256M",
                "# Dev stack only: commits reach the OS at once but are not fsynced, so killing",
                "# mariadbd (chaos tests) loses nothing; only an OS crash could. Production",
                "# keeps innodb_flush_log_at_trx_commit=1 and sync_binlog=1.",
                "innodb-flush-log-at-trx-commit=2",
                "sync-binlog=0",
                "",
                "[client]",
                f"socket={self.socket}",
                f"port={self.port}",
                "user=root",
                "",
            ]
        )

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Ready = root can log in over TCP and run a query. The TCP account is created over
        the unix socket first: mariadb-install-db makes root@localhost only."""
        deadline = time.monotonic() + timeout
        while True:
            if not procs.is_alive(pid):
                raise self._start_failed(pid, "mariadbd exited")
            try:
                self._grant_root_over_tcp()
                self.query("SELECT 1")
                return
            except ConnectError:
                if time.monotonic() >= deadline:
                    raise self._start_failed(pid, f"not ready within {timeout:.0f} s") from None
                time.sleep(0.2)

    def _start_failed(self, pid: int, why: str) -> SluiceError:
        return SluiceError(
            f"MariaDB (pid {pid}) did not start on 127.0.0.1:{self.port}: {why}. "
            f"Last lines of {self.log_path}:\n{procs.tail(self.log_path)}"
        )

    def _grant_root_over_tcp(self) -> None:
        self._run(
            {"unix_socket": str(self.socket)},
            "SET SESSION sql_log_bin = 0",  # housekeeping, not data: keep it out of the binlog
            "CREATE USER IF NOT EXISTS root@'127.0.0.1'",
            "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
        )

    def query(self, sql: str) -> tuple[Any, ...]:
        """Run one statement over TCP as root; return its first row."""
        rows = self._run({"host": "127.0.0.1", "port": self.port}, sql)
        return rows[0] if rows else ()

    def _run(self, where: dict[str, Any], *statements: str) -> list[tuple[Any, ...]]:
        import pymysql

        try:
            conn = pymysql.connect(user="root", password="", connect_timeout=3, **where)
        except pymysql.MySQLError as e:
            raise ConnectError(f"MariaDB at {where} does not answer: {e}") from e
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
                return list(cur.fetchall())
        except pymysql.MySQLError as e:
            raise ConnectError(f"MariaDB at {where} failed `{sql}`: {e}") from e
        finally:
            conn.close()

    def health(self) -> str:
        """A real query plus the binlog settings CDC needs; raise ConnectError if either fails."""
        names = list(CDC_SETTINGS)
        row = self.query(f"SELECT VERSION(), {', '.join('@@' + n for n in names)}")
        version, values = row[0], [str(v) for v in row[1:]]
        wrong = [
            f"{n}={v} (needs {CDC_SETTINGS[n]})"
            for n, v in zip(names, values, strict=True)
            if v != CDC_SETTINGS[n]
        ]
        if wrong:
            raise ConnectError(f"{version} answers but is not set up for CDC: {', '.join(wrong)}")
        shown = {**dict(zip(names, values, strict=True)), "log_bin": "ON"}
        return f"ok: {version}, " + " ".join(f"{n}={v}" for n, v in shown.items())

    def answers(self) -> bool:
        try:
            self.query("SELECT 1")
        except ConnectError:
            return False
        return True
