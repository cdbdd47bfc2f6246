"""The local HDFS: Hadoop's MiniDFSCluster, one NameNode and one DataNode in one JVM, on loopback.

It is started through ``org.apache.hadoop.test.MiniDFSClusterManager``, the command-line entry
point that ships in ``hadoop-client-minicluster``, so nothing is compiled: the jars Maven
resolved from ``hdfs-pom.xml`` are the whole installation. WebHDFS (what the ``hdfswriter``
talks to) listens on the NameNode's HTTP port; the NameNode RPC port (for ``hdfs://`` URLs) is
the next one, as Kafka's controller takes the port after Kafka's. DataNode ports are ephemeral:
nothing outside the JVM addresses them except through WebHDFS redirects.

Data survives ``down``/``up``: the first start formats ``<state>/hdfs/data``, later starts
reuse it.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from coordinator.errors import ConnectError, SluiceError
from coordinator.local import procs
from coordinator.local.install import HDFS_LOG4J_CONFIG, hdfs_libs_dir, which

log = logging.getLogger(__name__)
# The hdfs package logs every request at INFO: too chatty for `sluice local up`.
logging.getLogger("hdfs").setLevel(logging.WARNING)

MARKER = "org.apache.hadoop.test.MiniDFSClusterManager"
HEALTH_DIR = "/_sluice_health"


class LocalHdfs:
    """HDFS under ``<state>/hdfs``: data/, ports.properties, hdfs.log, hdfs.pid."""

    name = "hdfs"

    def __init__(self, state_dir: Path, port: int, cache_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = port
        self.cache_dir = cache_dir
        self.home = state_dir / "hdfs"
        self.data_dir = self.home / "data"
        self.settings = self.home / "ports.properties"
        self.log_path = self.home / "hdfs.log"
        self.pid_file = self.home / "hdfs.pid"

    @property
    def rpc_port(self) -> int:
        return self.port + 1

    @property
    def url(self) -> str:
        """The WebHDFS URL: what SLUICE_HDFS_URL and an ``hdfswriter``'s defaultFS are set to."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port, self.rpc_port]

    def running_pid(self) -> int | None:
        return procs.owned_pid(self.pid_file, MARKER, self.state_dir)

    def configured_port(self) -> int | None:
        """The WebHDFS port of the last start: the one HDFS runs on, or last ran on."""
        try:
            lines = self.settings.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith("http.port="):
                return int(line.split("=", 1)[1])
        return None

    def _formatted(self) -> bool:
        # MiniDFSCluster keeps its NameNode's metadata in <basedir>/name1 (and name2).
        return (self.data_dir / "name1" / "current" / "VERSION").is_file()

    def start(self) -> None:
        """Start the JVM detached; format the storage on the first start only."""
        libs = hdfs_libs_dir(self.cache_dir)
        java = which("java")
        if java is None or not libs.is_dir():
            raise SluiceError("HDFS is not installed; run `sluice local install`")
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self.settings.write_text(
            "# Written by `sluice local up --with-hdfs`; edit coordinator/local/hdfs.py.\n"
            f"http.port={self.port}\nrpc.port={self.rpc_port}\n"
        )
        cmd = [
            java,
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j.configuration=file:{HDFS_LOG4J_CONFIG}",
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            "-cp",
            f"{libs}/*",
            MARKER,
            "-nnport",
            str(self.rpc_port),
            "-httpport",
            str(self.port),
            "-datanodes",
            "1",
            "-D",
            f"hdfs.minidfs.basedir={self.data_dir}",
            "-D",
            f"hadoop.tmp.dir={self.home / 'tmp'}",
            "-D",
            "dfs.replication=1",
            # WebHDFS is the point of this server; it is on by default, but say so.
            "-D",
            "dfs.webhdfs.enabled=true",
            # Closing a file waits until the DataNode has reported its last block; the
            # DataNode's client polls for that starting at 400 ms, so every small file took
            # 0.4 s to close. Let the NameNode close a file whose last block is committed,
            # and poll sooner.
            "-D",
            "dfs.namenode.file.close.num-committed-allowed=1",
            "-D",
            "dfs.client.block.write.locateFollowingBlock.initial.delay.ms=20",
            "-writeDetails",
            str(self.home / "details.json"),
        ]
        if not self._formatted():
            cmd.append("-format")
        log.info("starting HDFS, WebHDFS on %s (log: %s)", self.url, self.log_path)
        procs.start_detached(cmd, self.log_path, self.pid_file, cwd=self.home)

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Ready = WebHDFS lists the root AND a file written through it reads back the same:
        that needs the NameNode out of safe mode and the DataNode registered."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if not procs.is_alive(pid):
                raise self._start_failed(pid, "the JVM exited")
            if time.monotonic() >= deadline:
                raise self._start_failed(pid, f"not ready within {timeout:.0f} s ({last})")
            try:
                self.health(timeout=min(10.0, max(1.0, deadline - time.monotonic())))
                return
            except ConnectError as e:
                last = str(e)
                time.sleep(0.25)

    def _start_failed(self, pid: int, why: str) -> SluiceError:
        return SluiceError(
            f"HDFS (pid {pid}) did not start with WebHDFS on {self.url}: {why}. "
            f"Last lines of {self.log_path}:\n{procs.tail(self.log_path)}"
        )

    def client(self, timeout: float = 10.0) -> Any:
        from hdfs import InsecureClient

        return InsecureClient(self.url, timeout=timeout)

    def health(self, timeout: float = 10.0) -> str:
        """List the root, write a file, read it back, delete it; return a one-line summary or
        raise ConnectError saying which step failed."""
        from hdfs.util import HdfsError
        from requests import RequestException

        started = time.monotonic()
        client = self.client(timeout)
        token = uuid.uuid4().hex
        path = f"{HEALTH_DIR}/{token}"
        step = "list /"
        try:
            client.list("/")
            step = f"write {path}"
            client.write(path, data=token.encode(), overwrite=True)
            step = f"read {path}"
            with client.read(path) as reader:
                back = reader.read()
            step = f"delete {path}"
            client.delete(path)
        except (HdfsError, RequestException) as e:
            raise ConnectError(f"WebHDFS at {self.url}: {step} failed: {e}") from e
        if back != token.encode():
            raise ConnectError(f"WebHDFS at {self.url}: {path} read back {back!r:.60}")
        elapsed_ms = (time.monotonic() - started) * 1000
        return f"ok: wrote, read back and deleted {path} through WebHDFS in {elapsed_ms:.0f} ms"
