"""The local launcher's PostgreSQL without starting it: only `--with-postgres` asks for it (and
installs it), the generated settings are what CDC needs, a taken port fails fast, running as
root goes through the postgres user, and `down` stops a PostgreSQL of ours (only ours) with a
fast shutdown whether asked for or not."""

from __future__ import annotations

import os
import pwd
import socket
import sys
import time
from pathlib import Path

import pytest

from coordinator.cli import main
from coordinator.errors import ConnectError, SluiceError
from coordinator.local import install, postgres, procs
from coordinator.local.postgres import MARKER, LocalPostgres, untraversable
from coordinator.local.stack import LocalStack


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and not procs.port_in_use(port) and not procs.port_in_use(port + 1):
            return port
    raise AssertionError("no two adjacent free ports")


def _stack(tmp_path: Path, with_postgres: bool, postgres_port: int | None = None) -> LocalStack:
    return LocalStack(
        tmp_path / "state",
        kafka_port=_free_port_pair(),
        mysql_port=_free_port_pair(),
        cache_dir=tmp_path / "cache",
        postgres_port=postgres_port or _free_port_pair(),
        with_postgres=with_postgres,
    )


def _user(uid: int, gid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd(("sluice-test-nobody", "x", uid, gid, "", "/nonexistent", "/bin/sh"))


def test_postgres_only_when_asked_for(tmp_path: Path) -> None:
    stack = _stack(tmp_path, with_postgres=False)
    assert [s.name for s in stack.servers] == ["kafka", "mariadb"]
    assert stack.endpoints.postgres_url is None
    assert [s.name for s in stack.status()] == ["kafka", "mariadb"]
    stack = _stack(tmp_path, with_postgres=True)
    assert [s.name for s in stack.servers] == ["kafka", "mariadb", "postgres"]
    assert stack.endpoints.postgres_url == (
        f"postgresql://postgres@127.0.0.1:{stack.postgres.port}/postgres"
    )
    assert stack.postgres.ports == [stack.postgres.port]
    statuses = stack.status()
    assert [(s.name, s.pid, s.healthy) for s in statuses][-1] == ("postgres", None, False)
    assert "not running" in statuses[-1].detail


def test_postgres_port_taken_fails_fast_before_installing(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        stack = _stack(tmp_path, with_postgres=True, postgres_port=port)
        started = time.monotonic()
        with pytest.raises(SluiceError) as raised:
            stack.up()
    assert time.monotonic() - started < 2.0
    message = str(raised.value)
    assert f"port {port} " in message
    assert "needed by postgres" in message
    assert "--postgres-port or SLUICE_POSTGRES_PORT" in message
    assert not stack.cache_dir.exists()
    assert not list(stack.state_dir.glob("*/*.pid"))


def test_postgres_port_comes_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_POSTGRES_PORT", "25432")
    monkeypatch.setenv("SLUICE_STATE_DIR", str(tmp_path / "s"))
    stack = LocalStack.from_env(with_postgres=True)
    assert stack.postgres.port == 25432
    assert stack.endpoints.postgres_url == "postgresql://postgres@127.0.0.1:25432/postgres"
    assert LocalStack.from_env(postgres_port=25433).postgres.port == 25433, "argument wins"
    monkeypatch.setenv("SLUICE_POSTGRES_PORT", "pg")
    with pytest.raises(SluiceError, match="SLUICE_POSTGRES_PORT='pg' is not a port number"):
        LocalStack.from_env()


def test_generated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: the cluster is in the home
    server = LocalPostgres(tmp_path / "state", 25432)
    assert server.cluster_home == server.home
    conf = server._postgresql_conf()
    lines = conf.splitlines()
    settings = dict(line.split(" = ", 1) for line in lines if " = " in line)
    assert settings == {
        "listen_addresses": "'127.0.0.1'",
        "port": "25432",
        "unix_socket_directories": f"'{server.cluster_home}'",
        "logging_collector": "off",
        "log_destination": "'stderr'",
        "wal_level": "logical",
        "max_prepared_transactions": "64",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "max_connections": "200",
        "shared_buffers": "128MB",
        "fsync": "off",
        "synchronous_commit": "off",
        "wal_writer_delay": "10ms",
    }
    # initdb's own file (locale, time zone) comes first, so that ours win.
    include = f"include_if_exists '{server.data_dir / 'postgresql.conf'}'"
    assert lines.index(include) < lines.index("port = 25432")
    assert server.configured_port() is None
    server.home.mkdir(parents=True)
    server.conf.write_text(conf)
    assert server.configured_port() == 25432


def test_socket_of_a_deep_state_dir_moves_to_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: the cluster is in the home
    short = LocalPostgres(tmp_path / "s", 5432)
    assert short.socket_dir == short.home
    deep = LocalPostgres(tmp_path / ("d" * 90) / "state", 5432)
    assert deep.socket_dir != deep.home
    assert len(os.fsencode(deep.socket_dir / ".s.PGSQL.65535")) <= 107
    assert deep.socket_dir == LocalPostgres(tmp_path / ("d" * 90) / "state", 5432).socket_dir
    assert deep.socket_dir != LocalPostgres(tmp_path / ("e" * 90) / "state", 5432).socket_dir


def test_as_root_initdb_and_server_run_as_the_postgres_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = LocalPostgres(tmp_path, 5432)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert server._as_os_user(["/pg/initdb", "-D", "d"]) == ["/pg/initdb", "-D", "d"]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", lambda name: _user(101, 104))
    monkeypatch.setattr(postgres, "which", lambda program: f"/usr/bin/{program}")
    assert server._as_os_user(["/pg/postgres", "-D", "d"]) == [
        "/usr/bin/setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "/pg/postgres",
        "-D",
        "d",
    ]

    def no_such_user(name: str) -> pwd.struct_passwd:
        raise KeyError(name)

    monkeypatch.setattr(pwd, "getpwnam", no_such_user)
    with pytest.raises(SluiceError, match="refuses to run as root, and there is no 'postgres'"):
        server._as_os_user(["/pg/postgres"])


def test_untraversable_finds_the_first_folder_the_user_cannot_enter(tmp_path: Path) -> None:
    me = _user(os.getuid(), os.getgid())  # owner of every folder from tmp_path down
    blocked = tmp_path / "a" / "locked"
    (blocked / "state").mkdir(parents=True)
    assert untraversable(blocked / "state", me) is None
    blocked.chmod(0o600)
    try:
        assert untraversable(blocked / "state", me) == blocked
        assert untraversable(tmp_path / "a", me) is None
    finally:
        blocked.chmod(0o700)


def _digest(server: LocalPostgres) -> str:
    import hashlib

    return hashlib.sha1(str(server.state_dir).encode()).hexdigest()[:12]


def test_as_root_a_state_dir_the_postgres_user_cannot_reach_moves_the_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A checkout under root's 0700 home (or pytest's): the cluster goes to /var/tmp, named
    after the state dir; the pid file and the log stay in the state dir."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    server = LocalPostgres(locked / "state", 5432)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", lambda name: _user(54321, 54321))  # owns nothing
    assert untraversable(server.state_dir, _user(54321, 54321)) is not None
    assert server.cluster_home == Path("/var/tmp") / f"sluice-postgres-{_digest(server)}"
    assert server.data_dir == server.cluster_home / "data"
    assert server.conf.parent == server.cluster_home
    assert server.pid_file.parent == server.log_path.parent == server.home
    other = LocalPostgres(locked / "other", 5432)
    assert other.cluster_home != server.cluster_home
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: it runs as us, in the home
    assert server.cluster_home == server.home


def test_as_root_a_cluster_folder_the_postgres_user_cannot_reach_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = LocalPostgres(tmp_path / "state", 5432)
    user = _user(54321, 54321)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", lambda name: user)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    monkeypatch.setattr(LocalPostgres, "cluster_home", property(lambda self: locked / "pg"))
    with pytest.raises(SluiceError) as raised:
        server._prepare_for_os_user()
    message = str(raised.value)
    blocked = untraversable(locked / "pg", user)
    assert message.startswith("PostgreSQL runs as user postgres (it refuses to run as root)")
    assert f"cannot enter {blocked} (drwx" in message
    assert f"`chmod o+x {blocked}`" in message


def test_health_needs_logical_wal_and_prepared_transactions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = LocalPostgres(tmp_path, 5432)
    row = ("15.14 (Debian 15.14-0+deb12u1)", "logical", "64", "20", "20")
    monkeypatch.setattr(server, "query", lambda sql: row)
    assert server.health() == (
        "ok: PostgreSQL 15.14 (Debian 15.14-0+deb12u1), wal_level=logical "
        "max_prepared_transactions=64 max_replication_slots=20 max_wal_senders=20"
    )
    row = ("15.14", "replica", "0", "10", "10")
    with pytest.raises(ConnectError) as raised:
        server.health()
    assert str(raised.value) == (
        "PostgreSQL 15.14 answers but is not set up for CDC: wal_level=replica (needs logical), "
        "max_prepared_transactions=0 (needs > 0)"
    )


def test_down_stops_our_postgres_with_a_fast_shutdown_even_without_with_postgres(
    tmp_path: Path,
) -> None:
    stack = _stack(tmp_path, with_postgres=False)
    server = stack.postgres
    server.home.mkdir(parents=True)
    # Stands in for the postmaster: its command line names the state dir and bin/postgres.
    # Like a smart shutdown with a client connected, SIGTERM would not stop it: SIGINT does.
    # SIGINT's default is set explicitly: a shell running the suite in the background starts
    # its children with SIGINT ignored, and Python then keeps it ignored (the server does
    # not). The test waits until the stand-in has set it (ready), or SIGINT could come first.
    ready = tmp_path / "ready"
    script = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGINT, signal.SIG_DFL); open(sys.argv[1], 'w').close(); "
        "time.sleep(60)"
    )
    cmd = [sys.executable, "-c", script, str(ready), f"/usr/lib/postgresql/15/{MARKER}"]
    cmd.append(str(server.data_dir))
    procs.start_detached(cmd, server.log_path, server.pid_file, server.home)
    assert procs.wait_until(lambda: server.running_pid() is not None and ready.exists(), 10)
    pid = server.running_pid()
    assert pid is not None
    assert [s.name for s in stack.status()] == ["kafka", "mariadb", "postgres"], "shown: running"
    assert stack.endpoints.postgres_url == server.url
    started = time.monotonic()
    assert stack.down() == ["postgres"]
    assert time.monotonic() - started < 5, "not SIGTERM and a wait for the timeout"
    assert not procs.is_alive(pid)
    assert not server.pid_file.exists()


def test_postgres_is_installed_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    called: list[str] = []
    for step in ("ensure_java_and_maven", "resolve_kafka_jars", "ensure_mariadb"):
        monkeypatch.setattr(install, step, lambda *args: None)
    monkeypatch.setattr(install, "ensure_postgres", lambda: called.append("postgres"))
    install.install(tmp_path, hdfs=False)
    assert called == []
    install.install(tmp_path, hdfs=False, postgres=True)
    assert called == ["postgres"]


def test_missing_postgres_as_non_root_names_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(install, "POSTGRES_BIN", tmp_path)
    monkeypatch.setattr(install, "which", lambda program: None if program != "apt-get" else "/x")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert not install.postgres_installed()
    assert not install.is_installed(tmp_path, postgres=True)
    with pytest.raises(SluiceError) as raised:
        install.ensure_postgres()
    assert str(raised.value) == (
        "PostgreSQL 15 is not installed; as root, run: "
        "apt-get update && apt-get install -y postgresql-15 postgresql-client-15"
    )
    (tmp_path / "initdb").write_text("")
    (tmp_path / "initdb").chmod(0o755)
    (tmp_path / "postgres").write_text("")
    (tmp_path / "postgres").chmod(0o755)
    assert install.postgres_program("initdb") == str(tmp_path / "initdb")
    assert install.postgres_installed()


def test_cli_status_with_postgres_names_it_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port_pair()
    args = ["local", "status", "--state-dir", str(tmp_path / "state")]
    args += ["--kafka-port", str(_free_port_pair()), "--mysql-port", str(_free_port_pair())]
    assert main([*args, "--with-postgres", "--postgres-port", str(port)]) == 1
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["postgres"][1:4] == ["-", str(port), "not"]
    assert main(args) == 1
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert shown == ["SERVER", "kafka", "mariadb"], "not asked for, not running: not shown"
