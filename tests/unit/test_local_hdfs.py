"""The local launcher's HDFS without starting it: only `--with-hdfs` asks for it, a taken port
fails fast, and `down` stops an HDFS of ours (only ours) whether asked for or not."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from coordinator.errors import SluiceError
from coordinator.local import install, procs
from coordinator.local.hdfs import MARKER
from coordinator.local.stack import LocalStack


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and not procs.port_in_use(port) and not procs.port_in_use(port + 1):
            return port
    raise AssertionError("no two adjacent free ports")


def _stack(tmp_path: Path, with_hdfs: bool, hdfs_port: int | None = None) -> LocalStack:
    return LocalStack(
        tmp_path / "state",
        kafka_port=_free_port_pair(),
        mysql_port=_free_port_pair(),
        cache_dir=tmp_path / "cache",
        hdfs_port=hdfs_port or _free_port_pair(),
        with_hdfs=with_hdfs,
    )


def test_hdfs_only_when_asked_for(tmp_path: Path) -> None:
    assert [s.name for s in _stack(tmp_path, with_hdfs=False).servers] == ["kafka", "mariadb"]
    stack = _stack(tmp_path, with_hdfs=True)
    assert [s.name for s in stack.servers] == ["kafka", "mariadb", "hdfs"]
    assert stack.endpoints.hdfs_url == f"http://127.0.0.1:{stack.hdfs.port}"
    assert stack.hdfs.ports == [stack.hdfs.port, stack.hdfs.port + 1]
    statuses = stack.status()
    assert [(s.name, s.healthy) for s in statuses][-1] == ("hdfs", False)


@pytest.mark.parametrize("taken", ["http", "rpc"])
def test_hdfs_port_taken_fails_fast_before_installing(tmp_path: Path, taken: str) -> None:
    port = _free_port_pair()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port if taken == "http" else port + 1))
        other.listen()
        stack = _stack(tmp_path, with_hdfs=True, hdfs_port=port)
        started = time.monotonic()
        with pytest.raises(SluiceError) as raised:
            stack.up()
    assert time.monotonic() - started < 2.0
    assert "--hdfs-port or SLUICE_HDFS_PORT" in str(raised.value)
    assert not stack.cache_dir.exists()


def test_down_stops_our_hdfs_even_without_with_hdfs(tmp_path: Path) -> None:
    stack = _stack(tmp_path, with_hdfs=False)
    hdfs = stack.hdfs
    hdfs.home.mkdir(parents=True)
    # Stands in for the JVM: its command line names the state dir and the main class.
    cmd = [sys.executable, "-c", "import time; time.sleep(60)", MARKER, str(hdfs.data_dir)]
    procs.start_detached(cmd, hdfs.log_path, hdfs.pid_file, hdfs.home)
    # Until the child has exec'ed, its command line is still its parent's: wait for it.
    assert procs.wait_until(lambda: hdfs.running_pid() is not None, timeout=10)
    pid = hdfs.running_pid()
    assert pid is not None
    assert [s.name for s in stack.status()] == ["kafka", "mariadb", "hdfs"], "shown when running"
    assert stack.down() == ["hdfs"]
    assert not procs.is_alive(pid)
    assert not hdfs.pid_file.exists()


def test_hdfs_jars_have_their_own_pom_and_stamp(tmp_path: Path) -> None:
    assert install.HDFS_JARS.pom.is_file()
    assert "hadoop-client-minicluster" in install.HDFS_JARS.pom.read_text()
    assert install.HDFS_JARS.libs(tmp_path) != install.KAFKA_JARS.libs(tmp_path)
    assert not install.HDFS_JARS.installed(tmp_path)
    stamp = install.HDFS_JARS.stamp(tmp_path)
    stamp.parent.mkdir(parents=True)
    stamp.write_text(install.HDFS_JARS.pom_hash() + "\n")
    assert install.HDFS_JARS.installed(tmp_path)
    assert not install.is_installed(tmp_path, hdfs=True), "Kafka's jars are still missing"
