"""The anchor of the CDC benchmark: Debezium's MariaDB connector on Kafka Connect standalone.

Jars come from Maven Central through ``bench/debezium/pom.xml`` (Connect of our broker's
Kafka version, ``debezium-connector-mariadb``), resolved into ``.cache/debezium/libs`` the
way ``sluice local install`` resolves the broker. Connect runs as a child process of its own
session, stopped by its pid.

Debezium has no "start at this binlog position" setting, so the benchmark lets it capture
the same binlog range as Sluice in two starts: :meth:`Connect.prime` runs it once on the
empty table (``snapshot.mode=no_data``) until it streams and has committed an offset (a
row written to the ``PING`` table makes it commit one), then stops it; the workload is
written; the second start resumes from that offset and catches up on the whole range,
which is what is timed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from bench.common import REPO_ROOT
from coordinator.errors import SluiceError
from coordinator.local.install import JarSet, resolve_jars, which

HERE = Path(__file__).with_name("debezium")
DEBEZIUM_JARS = JarSet(
    "Debezium (Kafka Connect + debezium-connector-mariadb)", "debezium", HERE / "pom.xml"
)
DEBEZIUM_VERSION = "3.2.0.Final"
# A second captured table, written while priming: an offset is committed only after a
# captured event (heartbeats need binlog traffic too), and the workload table must stay empty.
PING = "bench_ping"
# What Connect logs when the connector's task dies for good.
TASK_FAILED = "Task threw an uncaught and unrecoverable exception"


PG_DEBEZIUM_JARS = JarSet(
    "Debezium (Kafka Connect + debezium-connector-postgres)",
    "debezium-pg",
    HERE.with_name("debezium_pg") / "pom.xml",
)
PG_DEBEZIUM_VERSION = "3.6.1.Final"


def libs(cache_dir: Path | None = None, jars: JarSet = DEBEZIUM_JARS) -> Path:
    return resolve_jars(jars, cache_dir or REPO_ROOT / ".cache")


def topic_count(consumer: Consumer, topic: str) -> int:
    """Records in ``topic`` (sum of the partitions' end offsets; 0 while it does not exist)."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return 0
    total = 0
    for p in meta.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += max(high, 0)
    return total


def wait_count(
    bootstrap: str, topic: str, expected: int, timeout: float, alive: Any = None
) -> tuple[float | None, float | None, int]:
    """Poll ``topic`` every 0.2 s until it holds ``expected`` records: (monotonic time the
    first record was seen, time the last was, count)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "sluice-bench-count"})
    first = last = None
    count = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                count = topic_count(consumer, topic)
            except KafkaException:
                # The shared broker may restart under us (others' chaos tests kill it):
                # keep polling, the run's own clients reconnect as well.
                time.sleep(1)
                continue
            now = time.monotonic()
            if count and first is None:
                first = now
            if count >= expected:
                last = now
                break
            if alive is not None and not alive():
                break
            time.sleep(0.2)
    finally:
        consumer.close()
    return first, last, count


class Connect:
    """One Kafka Connect standalone worker running one Debezium connector: MariaDB's by
    default, PostgreSQL's with :meth:`postgres`."""

    def __init__(
        self, workdir: Path, bootstrap: str, mysql: dict[str, Any], database: str, table: str
    ) -> None:
        self._worker(workdir, bootstrap, f"{database}.{table}", DEBEZIUM_JARS, DEBEZIUM_VERSION)
        mariadb = [
            "connector.class=io.debezium.connector.mariadb.MariaDbConnector",
            f"database.hostname={mysql['host']}",
            f"database.port={mysql['port']}",
            f"database.user={mysql['user']}",
            f"database.password={mysql['password'] or ''}",
            f"database.server.id={random.randint(100000, 999999)}",
            "database.ssl.mode=disable",
            f"database.include.list={database}",
            f"table.include.list={database}.{table},{database}.{PING}",
            "include.schema.changes=false",
            f"schema.history.internal.kafka.bootstrap.servers={bootstrap}",
            f"schema.history.internal.kafka.topic={self.prefix}.history",
            # Other databases' DDL (the tests') is none of this benchmark's business.
            "schema.history.internal.store.only.captured.databases.ddl=true",
            # Debezium still parses every DDL in the binlog; the tests' tables in other
            # databases use syntax its parser rejects, which would stop the task.
            "schema.history.internal.skip.unparseable.ddl=true",
        ]
        self._connector(mariadb)

    @classmethod
    def postgres(
        cls, workdir: Path, bootstrap: str, pg: dict[str, Any], database: str, table: str,
        slot: str, publication: str,
    ) -> Connect:  # fmt: skip
        """Debezium's PostgreSQL connector on an existing ``pgoutput`` slot and publication:
        it streams from the slot's confirmed position (no snapshot)."""
        self = cls.__new__(cls)
        self._worker(workdir, bootstrap, f"public.{table}", PG_DEBEZIUM_JARS,
                     PG_DEBEZIUM_VERSION)  # fmt: skip
        self._connector([
            "connector.class=io.debezium.connector.postgresql.PostgresConnector",
            f"database.hostname={pg['host']}",
            f"database.port={pg['port']}",
            f"database.user={pg['user']}",
            f"database.password={pg['password'] or ''}",
            f"database.dbname={database}",
            "plugin.name=pgoutput",
            f"slot.name={slot}",
            f"publication.name={publication}",
            "publication.autocreate.mode=disabled",
            f"table.include.list=public.{table}",
        ])  # fmt: skip
        return self

    def _worker(self, workdir: Path, bootstrap: str, table: str, jars: JarSet, version: str
                ) -> None:  # fmt: skip
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.jars, self.version = jars, version
        self.prefix = f"dbz{int(time.time())}"
        self.topic = f"{self.prefix}.{table}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "connect.log"
        self._log: IO[bytes] | None = None
        port = random.randint(20000, 29999)
        (workdir / "worker.properties").write_text(
            "\n".join(
                [
                    f"bootstrap.servers={bootstrap}",
                    # JSON without embedded schemas: the leanest converter Connect ships
                    # (no schema registry here); Sluice's records are Avro without schemas too.
                    "key.converter=org.apache.kafka.connect.json.JsonConverter",
                    "value.converter=org.apache.kafka.connect.json.JsonConverter",
                    "key.converter.schemas.enable=false",
                    "value.converter.schemas.enable=false",
                    f"offset.storage.file.filename={workdir / 'offsets.dat'}",
                    "offset.flush.interval.ms=1000",
                    f"listeners=http://127.0.0.1:{port}",
                    "",
                ]
            )
        )

    def _connector(self, lines: list[str]) -> None:
        """connector.properties: the connector's own ``lines`` and what every run shares."""
        common = [
            "name=sluice-bench-debezium",
            "tasks.max=1",
            f"topic.prefix={self.prefix}",
            "snapshot.mode=no_data",
            # One record per row change, like Sluice (no tombstone after a delete).
            "tombstones.on.delete=false",
            "heartbeat.interval.ms=1000",
            # The broker does not auto-create topics: Connect creates them.
            "topic.creation.default.partitions=1",
            "topic.creation.default.replication.factor=1",
        ]
        (self.workdir / "connector.properties").write_text("\n".join([*common, *lines, ""]))

    def start(self) -> None:
        java = which("java")
        if java is None:
            raise SluiceError("Java is not installed; run `sluice local install`")
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                java,
                "-Xmx1g",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
                "-cp",
                f"{libs(jars=self.jars)}/*",
                "org.apache.kafka.connect.cli.ConnectStandalone",
                str(self.workdir / "worker.properties"),
                str(self.workdir / "connector.properties"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        """The worker runs and its task has not died (a standalone worker outlives its task)."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        return TASK_FAILED not in self.log_text()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.alive():
                break
            time.sleep(0.5)
        tail = "\n".join(self.log_text().splitlines()[-30:])
        raise SluiceError(f"Debezium did not log {needle!r} within {timeout:.0f} s:\n{tail}")

    def stop(self) -> None:
        """SIGTERM: Connect stops the task and flushes its offsets; kill if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
        self.proc = None

    def prime(self, ping: Callable[[], None]) -> None:
        """Start on the (empty) table, stream, commit an offset at the binlog's end, stop.
        ``ping`` writes a row to the ``PING`` table."""
        self.start()
        try:
            self.wait_log("Connected to binlog", 180)
            offsets = self.workdir / "offsets.dat"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                offsets.exists() and offsets.stat().st_size > 0
            ):
                ping()
                time.sleep(1)
            if not offsets.exists():
                tail = "\n".join(self.log_text().splitlines()[-40:])
                raise SluiceError(f"Debezium committed no offset while priming:\n{tail}")
            time.sleep(1.5)  # one more heartbeat + flush: the offset is the binlog's end
        finally:
            self.stop()

    def capture(self, expected: int, timeout: float = 1800) -> dict[str, Any]:
        """Restart from the primed offset and time the catch-up over ``expected`` changes."""
        started = time.monotonic()
        self.start()
        try:
            first, last, count = wait_count(
                self.bootstrap, self.topic, expected, timeout, alive=self.alive
            )
        finally:
            self.stop()
        if first is None or last is None:
            tail = "\n".join(self.log_text().splitlines()[-30:])
            raise SluiceError(f"Debezium captured {count} of {expected} changes:\n{tail}")
        seconds = max(last - first, 1e-3)
        return {
            "bench": "debezium",
            "version": self.version,
            "events": count,
            "startup_s": round(first - started, 1),
            "seconds": round(seconds, 1),
            "events_per_s": round(count / seconds),
        }
