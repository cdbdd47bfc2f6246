"""MySQL/MariaDB over TLS (issue 18): a second launcher MariaDB that refuses plain
connections (``require_secure_transport``), with a CA and certificate made by openssl. A
mysqlreader → mysqlwriter job and a binlogreader job with ``sslMode=VERIFY_IDENTITY`` copy
their rows; ``sslMode=DISABLED``, another CA and a bad ``sslMode`` are one line each with
nothing written."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.local import procs
from coordinator.local.mariadb import LocalMariaDB
from testkit.cdc import RunningJob, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_job
from testkit.tls import make_certificates
from testkit.wait import wait_until
from tests.integration.test_snapshot_safety import one_error_line, sluice_run

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_mariadb() -> Iterator[tuple[str, Path, Path]]:
    """(mysql URL, the CA, another CA) of a MariaDB that takes TLS connections only."""
    state = Path(tempfile.mkdtemp(prefix="sluice-tls-mariadb-"))
    ca = make_certificates(state / "tls")
    other = make_certificates(state / "other")

    class Tls(LocalMariaDB):
        def _my_cnf(self) -> str:
            return super()._my_cnf() + "\n".join(["[mysqld]", f"ssl-ca={ca}",
                f"ssl-cert={state / 'tls' / 'server.pem'}", f"ssl-key={state / 'tls' / 'server.key'}",
                "require-secure-transport=ON", ""])  # fmt: skip

    server = Tls(state, _free_port())
    server.start()
    pid = server.running_pid()
    assert pid is not None
    try:
        server.wait_ready(pid, 90)
        yield server.url, ca, other
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while procs.is_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(state, ignore_errors=True)


def with_options(job: dict[str, Any], options: str) -> dict[str, Any]:
    """Every JDBC URL of the job with ``options`` appended."""

    def add(url: str) -> str:
        return url + ("&" if "?" in url else "?") + options

    content = job["job"]["content"][0]
    for side in ("reader", "writer"):
        p = content[side]["parameter"]
        if "jdbcUrl" in p:
            p["jdbcUrl"] = add(p["jdbcUrl"])
        for c in p.get("connection", []):
            urls = c["jdbcUrl"]
            c["jdbcUrl"] = [add(u) for u in urls] if isinstance(urls, list) else add(urls)
    return job


def test_mariadb_jobs_over_tls_only(
    tls_mariadb: tuple[str, Path, Path], kafka_bootstrap: str, tmp_path: Path
) -> None:
    url, ca, other_ca = tls_mariadb
    admin = mysql_connect(url)  # PyMySQL prefers TLS by default
    execute(admin, "CREATE DATABASE tlsdb", "CREATE TABLE tlsdb.src (id INT PRIMARY KEY, v TEXT)",
            "CREATE TABLE tlsdb.dst (id INT PRIMARY KEY, v TEXT)",
            "INSERT INTO tlsdb.src SELECT seq, CONCAT('v', seq) FROM tlsdb.seq_1_to_500")  # fmt: skip
    good = f"sslMode=VERIFY_IDENTITY&serverSslCert={ca}"
    out = sluice_run(with_options(mysql_job(url, "tlsdb", "src", "dst", name="tls_copy"), good),
                     tmp_path, kafka_bootstrap)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]

    def count() -> Any:
        with admin.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM tlsdb.dst")
            return cur.fetchone()[0]

    assert count() == 500
    execute(admin, "TRUNCATE tlsdb.dst")
    for options, fragment in [
        ("sslMode=DISABLED", "whether the server requires TLS"),
        (f"sslMode=VERIFY_CA&serverSslCert={other_ca}", "certificate verify failed"),
        ("sslMode=SOMETIMES", "sslMode='SOMETIMES' is not one of"),
        ("sslMode=VERIFY_CA", "needs serverSslCert"),
    ]:
        job = with_options(mysql_job(url, "tlsdb", "src", "dst", name="tls_bad"), options)
        line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
        assert fragment in line, line
        assert count() == 0
    cdc = with_options(cdc_job(url, "tlsdb", ["src"], "tlsdb", "dst", name="tls_cdc",
                               start={"mode": "initial"}), good)  # fmt: skip
    running = RunningJob(cdc, tmp_path / "cdc.json", kafka_bootstrap)
    try:
        wait_until(lambda: count() == 500, 60, "the snapshot over TLS")
        execute(admin, "INSERT INTO tlsdb.src VALUES (501, 'through the binlog')")
        wait_until(lambda: count() == 501, 60, "the change over a TLS replication connection")
    finally:
        code, text = running.stop()
    assert code == 0, text[-3000:]
    admin.close()
