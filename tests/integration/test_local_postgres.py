"""The PostgreSQL the fixtures provide does what a PostgreSQL source and an exactly-once writer
rely on: logical decoding through pgoutput slots and two-phase commit. And the launcher that
starts it: idempotent, data kept across down/up, a prompt fast shutdown with clients
connected."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.local import procs
from coordinator.local.stack import LocalStack
from testkit.tls import make_certificates
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _connect(url: str, dbname: str | None = None, **kwargs: Any) -> Any:
    import psycopg

    if dbname is not None:
        return psycopg.connect(url, dbname=dbname, **kwargs)
    return psycopg.connect(url, **kwargs)


def test_postgres_answers_with_logical_wal_and_prepared_transactions(postgres_url: str) -> None:
    with _connect(postgres_url, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        assert version.startswith("PostgreSQL ")
        assert conn.execute("SELECT 6 * 7").fetchone() == (42,)
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        assert int(conn.execute("SHOW max_prepared_transactions").fetchone()[0]) > 0
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)


def test_prepared_transaction_survives_its_session_until_commit_prepared(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    gid = f"sluice-{unique_name}"
    with _connect(postgres_url, postgres_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE account (id INT PRIMARY KEY, owner TEXT)")
    writer = _connect(postgres_url, postgres_database, autocommit=True)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO account VALUES (7, 'ada')")
    writer.execute(f"PREPARE TRANSACTION '{gid}'")
    writer.close()  # a prepared transaction outlives the session that prepared it

    with _connect(postgres_url, postgres_database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM account").fetchone() == (0,)
        prepared = conn.execute(
            "SELECT database FROM pg_prepared_xacts WHERE gid = %s", (gid,)
        ).fetchall()
        assert prepared == [(postgres_database,)]
        conn.execute(f"COMMIT PREPARED '{gid}'")
        assert conn.execute("SELECT * FROM account").fetchall() == [(7, "ada")]
        left = conn.execute("SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s", (gid,))
        assert left.fetchone() == (0,)


def test_logical_slot_with_pgoutput_decodes_an_insert(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    slot = f"{unique_name}_slot"
    with _connect(postgres_url, postgres_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE account (id INT PRIMARY KEY, owner TEXT)")
        conn.execute("CREATE PUBLICATION sluice_pub FOR TABLE account")
        created = conn.execute(
            "SELECT slot_name FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,)
        ).fetchone()
        assert created == (slot,)
        try:
            conn.execute("INSERT INTO account VALUES (7, 'ada')")
            # Decoding reads flushed WAL only; with synchronous_commit=off the WAL writer
            # flushes the commit a moment later (wal_writer_delay=10ms).
            changes: list[Any] = []
            deadline = time.monotonic() + 10
            while not changes and time.monotonic() < deadline:
                time.sleep(0.01)
                changes = conn.execute(
                    "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                    "'proto_version', '1', 'publication_names', 'sluice_pub')",
                    (slot,),
                ).fetchall()
            # pgoutput's messages: Begin, Relation, Insert, Commit, each tagged by its first byte.
            tags = [bytes(data)[:1] for (data,) in changes]
            assert tags == [b"B", b"R", b"I", b"C"], tags
            insert = bytes(changes[2][0])
            assert b"ada" in insert
            plugin = conn.execute(
                "SELECT plugin, database FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            assert plugin == ("pgoutput", postgres_database)
        finally:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        gone = conn.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        )
        assert gone.fetchone() == (0,)


def test_local_status_reports_postgres_healthy(postgres_url: str) -> None:
    stack = LocalStack.from_env(root=REPO_ROOT, with_postgres=True)
    if stack.postgres.running_pid() is None or stack.postgres.url != postgres_url:
        pytest.skip(f"PostgreSQL at {postgres_url} is not the local launcher's")
    result = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "local", "status", "--with-postgres"]
        + ["--state-dir", str(stack.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("postgres"))
    assert f" {stack.postgres.port} " in line, result.stdout
    assert "ok: PostgreSQL 15" in line, result.stdout
    assert "wal_level=logical max_prepared_transactions=64" in line, result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_state_dir() -> Iterator[Path]:
    """A state dir of this test's own, outside pytest's tmp folders (mode 0700: as root, the
    postgres user could not enter them)."""
    path = Path(tempfile.mkdtemp(prefix="sluice-pg-launcher-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_launcher_keeps_data_across_down_and_up_and_stops_fast_with_clients_connected(
    own_state_dir: Path,
) -> None:
    def stack(port: int | None) -> LocalStack:
        return LocalStack(
            own_state_dir,
            kafka_port=_free_port(),
            mysql_port=_free_port(),
            cache_dir=LocalStack.from_env(root=REPO_ROOT).cache_dir,
            postgres_port=port,
            with_postgres=True,
        )

    port = _free_port()
    first = stack(port)
    try:
        url = first.up(only=["postgres"]).postgres_url
        assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert first.started_here == ["postgres"]
        data_owner = pwd.getpwuid(first.postgres.data_dir.stat().st_uid).pw_name
        assert data_owner == ("postgres" if os.geteuid() == 0 else pwd.getpwuid(os.getuid())[0])
        again = stack(None)  # no port given: the one it runs on
        assert again.up(only=["postgres"]).postgres_url == url
        assert again.started_here == []
        with _connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id INT)")
            conn.execute("INSERT INTO kept VALUES (1)")

        # An idle client (a smart shutdown would wait for it) and an open transaction.
        idle = _connect(url, autocommit=True)
        busy = _connect(url)
        busy.execute("INSERT INTO kept VALUES (2)")
        pid = first.postgres.running_pid()
        assert pid is not None
        backends = _children(pid)
        assert backends, "the postmaster forks its helpers"
        started = time.monotonic()
        assert first.down(["postgres"]) == ["postgres"]
        assert time.monotonic() - started < 15
        assert "received fast shutdown request" in first.postgres.log_path.read_text()
        assert not any(procs.is_alive(child) for child in backends), "helpers left behind"
        idle.close()
        busy.close()

        first.up(only=["postgres"])
        with _connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT id FROM kept").fetchall() == [(1,)]
        log_text = first.postgres.log_path.read_text()
        assert log_text.count("database system is ready to accept connections") == 2
        assert first.postgres.socket_dir == first.postgres.home
        assert (first.postgres.home / f".s.PGSQL.{port}").is_socket()
    finally:
        first.down()
    assert first.postgres.running_pid() is None


@contextlib.contextmanager
def _own_server(state_dir: Path, extra_conf: Callable[[str], str]) -> Iterator[Any]:
    """A second server of the launcher's in ``state_dir``, its postgresql.conf edited by
    ``extra_conf``; stopped (fast shutdown, by its pid) and removed afterwards."""
    import signal

    from coordinator.local.postgres import LocalPostgres

    class Edited(LocalPostgres):
        def _postgresql_conf(self) -> str:
            return extra_conf(super()._postgresql_conf())

    server = Edited(state_dir, _free_port())
    server.start()
    pid = server.running_pid()
    assert pid is not None
    try:
        server.wait_ready(pid, 60)
        yield server
    finally:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while procs.is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(server.cluster_home, ignore_errors=True)


def test_pgwalreader_refuses_a_server_without_logical_wal_in_one_line(
    own_state_dir: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A second server of the launcher's, with wal_level=replica (PostgreSQL's default): a
    pgwalreader job stops at its check with one line naming the setting and the fix, and
    nothing is created on the server (no slot, no publication)."""
    from testkit.postgres import pg_wal_reader
    from tests.integration.test_snapshot_safety import one_error_line, sluice_run

    replica = lambda conf: conf.replace("wal_level = logical", "wal_level = replica")  # noqa: E731
    with _own_server(own_state_dir, replica) as server:
        with _connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        job = {"job": {
            "name": "replica_wal",
            "content": [{"reader": pg_wal_reader(server.url, "postgres", ["public.t"]),
                         "writer": {"name": "streamwriter", "parameter": {}}}],
            "setting": {"delivery": "at-least-once"},
        }}  # fmt: skip
        line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
        assert "wal_level=replica" in line and "wal_level=logical" in line, line
        with _connect(server.url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)


def test_postgresql_jobs_over_tls_only(
    own_state_dir: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A server that refuses connections without TLS (hostnossl reject): a
    postgresqlreader → postgresqlwriter job and a pgwalreader job with
    ``?sslmode=verify-full&sslrootcert=ca.pem`` copy their rows; ``sslmode=disable`` and a
    wrong CA are one line each, nothing written."""
    from testkit.postgres import pg_reader, pg_wal_reader, pg_writer
    from tests.integration.test_snapshot_safety import one_error_line, sluice_run

    tls = own_state_dir / "tls"
    ca = make_certificates(tls, server_user="postgres")
    other_ca = make_certificates(own_state_dir / "other", server_user="postgres")
    (tls / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
        "hostnossl all all 127.0.0.1/32 reject\n"
    )
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(tls / "pg_hba.conf", user.pw_uid, user.pw_gid)

    def with_tls(conf: str) -> str:
        return conf + "\n".join([
            "ssl = on", f"ssl_cert_file = '{tls / 'server.pem'}'",
            f"ssl_key_file = '{tls / 'server.key'}'", f"hba_file = '{tls / 'pg_hba.conf'}'", "",
        ])  # fmt: skip

    def url(server: Any, options: str) -> str:
        return f"jdbc:postgresql://127.0.0.1:{server.port}/postgres?{options}"

    with _own_server(own_state_dir, with_tls) as server:
        db = server.url
        with _connect(db, autocommit=True) as conn:
            conn.execute("CREATE TABLE src (id int PRIMARY KEY, v text)")
            conn.execute("CREATE TABLE dst (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 500) g")
        good = f"sslmode=verify-full&sslrootcert={ca}"

        def job(options: str, name: str) -> dict[str, Any]:
            reader = pg_reader(db, "postgres", "public.src")
            reader["parameter"]["connection"][0]["jdbcUrl"] = [url(server, options)]
            writer = pg_writer(db, "postgres", "public.dst")
            writer["parameter"]["connection"][0]["jdbcUrl"] = url(server, options)
            return {"job": {"name": name, "content": [{"reader": reader, "writer": writer}]}}

        out = sluice_run(job(good, "tls_copy"), tmp_path, kafka_bootstrap)
        assert out.returncode == 0, out.stderr[-3000:]
        with _connect(db, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM dst").fetchone() == (500,)
            conn.execute("TRUNCATE dst")
        for options, fragment in [
            ("sslmode=disable", "no encryption"),
            (f"sslmode=verify-full&sslrootcert={other_ca}", "certificate"),
            ("sslmode=sometimes", "sslmode='sometimes' is not one of"),
        ]:
            line = one_error_line(sluice_run(job(options, "tls_bad"), tmp_path, kafka_bootstrap))
            assert fragment in line, line
            with _connect(db, autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM dst").fetchone() == (0,)
        wal = pg_wal_reader(db, "postgres", ["public.src"], start={"mode": "initial"})
        wal["parameter"]["url"] = url(server, good)
        cdc = {"job": {"name": "tls_wal",
                       "content": [{"reader": wal, "writer": pg_writer(db, "postgres", "public.dst")}],
                       "setting": {"restore": {"checkpointInterval": 300}}}}  # fmt: skip
        cdc["job"]["content"][0]["writer"]["parameter"]["connection"][0]["jdbcUrl"] = url(
            server, good
        )
        from testkit.cdc import RunningJob

        running = RunningJob(cdc, tmp_path / "wal.json", kafka_bootstrap)
        try:
            with _connect(db, autocommit=True) as conn:
                wait_until(lambda: conn.execute("SELECT count(*) FROM dst").fetchone() == (500,),
                           60, "the snapshot over TLS")  # fmt: skip
                conn.execute("INSERT INTO src VALUES (501, 'through the WAL')")
                wait_until(lambda: conn.execute("SELECT count(*) FROM dst").fetchone() == (501,),
                           60, "the change over a TLS replication connection")  # fmt: skip
                tls_backends = conn.execute(
                    "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
                    " WHERE s.ssl AND a.backend_type = 'walsender'").fetchone()  # fmt: skip
                assert tls_backends is not None and tls_backends[0] >= 1
        finally:
            code, out_text = running.stop()
        assert code == 0, out_text[-3000:]
        with _connect(db, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
