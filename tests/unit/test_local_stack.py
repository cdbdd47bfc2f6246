"""The local launcher's checks that need no server: taken ports fail fast and clearly, and
nothing is ever signalled unless it is provably ours."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.errors import SluiceError
from coordinator.local import install, procs
from coordinator.local.install import java_major_version
from coordinator.local.stack import LocalStack


def _free_port_pair() -> int:
    """A port p with p and p+1 free (Kafka's client and controller ports)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and not procs.port_in_use(port) and not procs.port_in_use(port + 1):
            return port
    raise AssertionError("no two adjacent free ports")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s


def _stack(tmp_path: Path, kafka_port: int, mysql_port: int) -> LocalStack:
    return LocalStack(
        tmp_path / "state", kafka_port=kafka_port, mysql_port=mysql_port, cache_dir=tmp_path / "c"
    )


def _assert_fails_fast_naming(stack: LocalStack, port: int, setting: str) -> None:
    started = time.monotonic()
    with pytest.raises(SluiceError) as raised:
        stack.up()
    assert time.monotonic() - started < 2.0
    message = str(raised.value)
    assert f"port {port} " in message
    assert setting in message
    # Nothing was installed or started on the way to the error.
    assert not (stack.cache_dir).exists()
    assert not list(stack.state_dir.glob("*/*.pid"))


def test_kafka_port_taken_by_another_listener_fails_fast(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    stack = _stack(tmp_path, kafka_port=port, mysql_port=_free_port_pair())
    _assert_fails_fast_naming(stack, port, "--kafka-port or SLUICE_KAFKA_PORT")


def test_kafka_controller_port_taken_fails_fast(tmp_path: Path) -> None:
    kafka_port = _free_port_pair()
    with socket.socket() as other:
        other.bind(("127.0.0.1", kafka_port + 1))
        other.listen()
        stack = _stack(tmp_path, kafka_port=kafka_port, mysql_port=_free_port_pair())
        _assert_fails_fast_naming(stack, kafka_port + 1, "--kafka-port or SLUICE_KAFKA_PORT")


def test_mysql_port_taken_by_another_listener_fails_fast(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    stack = _stack(tmp_path, kafka_port=_free_port_pair(), mysql_port=port)
    _assert_fails_fast_naming(stack, port, "--mysql-port or SLUICE_MYSQL_PORT")


def test_port_bound_but_not_listening_counts_as_taken() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        assert procs.port_in_use(s.getsockname()[1])


def test_down_never_signals_a_live_process_that_is_not_ours(tmp_path: Path) -> None:
    stack = _stack(tmp_path, kafka_port=_free_port_pair(), mysql_port=_free_port_pair())
    for server in stack.servers:
        server.home.mkdir(parents=True)
        # This very test process: alive, but its command line does not name the state dir.
        server.pid_file.write_text(f"{os.getpid()}\n")
    assert not stack.is_running()
    assert stack.down() == []
    for server in stack.servers:
        assert not server.pid_file.exists(), "a stale pid file is removed"


def test_down_stops_a_process_of_ours_and_removes_its_pid_file(tmp_path: Path) -> None:
    stack = _stack(tmp_path, kafka_port=_free_port_pair(), mysql_port=_free_port_pair())
    kafka = stack.kafka
    kafka.home.mkdir(parents=True)
    # Stands in for the JVM: its command line names the state dir and kafka.Kafka.
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka"]
    procs.start_detached(
        [*sleeper, str(kafka.properties)], kafka.log_path, kafka.pid_file, kafka.home
    )
    pid = kafka.running_pid()
    assert pid is not None
    started = time.monotonic()
    assert stack.down() == ["kafka"]
    assert time.monotonic() - started < 5
    assert not procs.is_alive(pid)
    assert not kafka.pid_file.exists()
    assert stack.down() == [], "down when nothing runs is fine"


def test_status_without_servers_is_unhealthy_and_says_why(tmp_path: Path) -> None:
    statuses = _stack(tmp_path, kafka_port=_free_port_pair(), mysql_port=3999).status()
    assert [(s.name, s.pid, s.healthy) for s in statuses] == [
        ("kafka", None, False),
        ("mariadb", None, False),
    ]
    assert all("not running" in s.detail for s in statuses)


def test_ports_come_from_env_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_KAFKA_PORT", "19192")
    monkeypatch.setenv("SLUICE_MYSQL_PORT", "13406")
    monkeypatch.setenv("SLUICE_STATE_DIR", str(tmp_path / "s"))
    stack = LocalStack.from_env(mysql_port=23306)
    assert stack.endpoints.kafka_bootstrap == "127.0.0.1:19192"
    assert stack.endpoints.mysql_url == "mysql://root@127.0.0.1:23306"
    assert stack.state_dir == tmp_path / "s"


def test_bad_port_in_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_KAFKA_PORT", "ninety")
    with pytest.raises(SluiceError, match="SLUICE_KAFKA_PORT='ninety' is not a port number"):
        LocalStack.from_env()


def test_last_test_session_stops_only_servers_started_for_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _stack(tmp_path, kafka_port=_free_port_pair(), mysql_port=_free_port_pair())
    stopped: list[set[str]] = []
    monkeypatch.setattr(stack, "down", lambda names=None: stopped.append(set(names)) or [])
    with stack.use():
        stack.state_dir.joinpath("started-for-tests").write_text("kafka\n")
        with stack.use():  # a second session, leaving first
            pass
        assert stopped == [], "stopped under the feet of a session still using it"
    assert stopped == [{"kafka"}]

    stopped.clear()
    stack.state_dir.joinpath("started-for-tests").unlink()  # a person ran `sluice local up`
    with stack.use():
        pass
    assert stopped == []


def test_missing_mariadb_as_non_root_names_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "which", lambda program: None if "mariadb" in program else "/x")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SluiceError) as raised:
        install.ensure_mariadb()
    assert str(raised.value) == (
        "MariaDB is not installed; as root, run: "
        "apt-get update && apt-get install -y mariadb-server mariadb-client"
    )


def test_missing_java_as_non_root_names_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "which", lambda program: None if program == "java" else "/x")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SluiceError, match="Java is not installed; as root, run: apt-get update"):
        install.ensure_java_and_maven()


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("no java here", None),
    ],
)
def test_java_major_version(output: str, major: int | None) -> None:
    assert java_major_version(output) == major


def test_missing_sysbench_as_non_root_names_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(install, "which", lambda program: None if program == "sysbench" else "/x")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SluiceError) as raised:
        install.ensure_sysbench()
    assert str(raised.value) == (
        "sysbench is not installed; as root, run: apt-get update && apt-get install -y sysbench"
    )
