"""The local Kafka broker: one KRaft node (broker and controller in one JVM) on loopback.

Configured for exactly-once on a single node: the transaction state log and the offsets topic
with replication factor 1 and min ISR 1 (the defaults, 3 and 2, make every transactional
producer fail on one broker). Topics are not auto-created: Sluice creates its topics with the
partition counts it needs, and a typo should fail loudly rather than create a one-partition
topic.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from coordinator.errors import ConnectError, SluiceError
from coordinator.local import procs
from coordinator.local.install import LOG4J2_CONFIG, kafka_libs_dir, which

log = logging.getLogger(__name__)

HEALTH_TOPIC = "_sluice_health"
MARKER = "kafka.Kafka"


class _DebugLogger:
    """librdkafka's log lines, relayed at DEBUG (shown by `sluice -v`): while the broker
    starts it reports refused connections and "Coordinator load in progress: retrying",
    which are expected here and retried; real failures surface as exceptions."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)


class LocalKafka:
    """Kafka under ``<state>/kafka``: data/, server.properties, kafka.log, kafka.pid."""

    name = "kafka"

    def __init__(self, state_dir: Path, port: int, cache_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = port
        self.cache_dir = cache_dir
        self.home = state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.properties = self.home / "server.properties"
        self.log_path = self.home / "kafka.log"
        self.pid_file = self.home / "kafka.pid"

    @property
    def controller_port(self) -> int:
        # The controller listener takes the next port, so one number picks both.
        return self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def running_pid(self) -> int | None:
        return procs.owned_pid(self.pid_file, MARKER, self.state_dir)

    def configured_port(self) -> int | None:
        """The client port in server.properties: the one the broker runs on, or last ran on."""
        try:
            lines = self.properties.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            if line.startswith("listeners="):
                return int(line.split(",")[0].rsplit(":", 1)[1])
        return None

    def start(self) -> None:
        """Write the config, format the storage on first start, and start the JVM detached."""
        libs = kafka_libs_dir(self.cache_dir)
        java = which("java")
        if java is None or not libs.is_dir():
            raise SluiceError("Kafka is not installed; run `sluice local install`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(self._server_properties())
        classpath = f"{libs}/*"
        if not (self.data_dir / "meta.properties").exists():
            self._format(java, classpath)
        cmd = [
            java,
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp",
            classpath,
            MARKER,
            str(self.properties),
        ]
        log.info("starting Kafka on %s (log: %s)", self.bootstrap, self.log_path)
        procs.start_detached(cmd, self.log_path, self.pid_file, cwd=self.home)

    def _format(self, java: str, classpath: str) -> None:
        # KRaft needs a cluster id written into the storage before the first start.
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        cmd = [java, "-cp", classpath, f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}"]
        # One argument with "=": a random id may start with "-", which the parser would take for
        # an option (about one fresh start in 64 failed).
        cmd += ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}"]
        cmd += ["-c", str(self.properties), "--standalone"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SluiceError(
                f"formatting Kafka's storage in {self.data_dir} failed:\n"
                f"{result.stdout}{result.stderr}"
            )

    def _server_properties(self) -> str:
        ctrl = f"127.0.0.1:{self.controller_port}"
        return "\n".join(
            [
                "# Written by `sluice local up` at every start; edit coordinator/local/kafka.py.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={ctrl}",
                f"listeners=PLAINTEXT://{self.bootstrap},CONTROLLER://{ctrl}",
                f"advertised.listeners=PLAINTEXT://{self.bootstrap}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self.data_dir}",
                # Exactly-once on one broker: the internal topics cannot have 3 replicas.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                # Few internal partitions: the first transactional producer and the first
                # consumer group wait until all of them are loaded.
                "offsets.topic.num.partitions=8",
                "transaction.state.log.num.partitions=4",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                # No 3 s pause before the first rebalance: tests start groups all the time.
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        )

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Ready = metadata answers AND a transactional producer initialises AND an idempotent
        produce is consumed back AND a consumer group commits: that creates and loads
        __transaction_state and __consumer_offsets and fetches producer ids now, so the first
        test does not sit through 'coordinator load in progress'."""
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._start_failed(pid, f"not ready within {timeout:.0f} s")
            if not procs.is_alive(pid):
                raise self._start_failed(pid, "the JVM exited")
            return left

        while True:
            try:
                self._metadata(timeout=min(2.0, remaining()))
                break
            except ConnectError:
                time.sleep(0.2)
        from confluent_kafka import KafkaException

        try:
            self._init_transactions(timeout=remaining())
            self.health(timeout=remaining())  # idempotent produce + consume
            self._commit_group_offset(timeout=remaining())
        except (KafkaException, ConnectError) as e:
            raise self._start_failed(pid, f"transactions or consumer groups not ready: {e}") from e

    def _start_failed(self, pid: int, why: str) -> SluiceError:
        return SluiceError(
            f"Kafka (pid {pid}) did not start on {self.bootstrap}: {why}. "
            f"Last lines of {self.log_path}:\n{procs.tail(self.log_path)}"
        )

    def _config(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "logger": _DebugLogger(), **extra}

    def _metadata(self, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            AdminClient(self._config()).list_topics(timeout=timeout)
        except KafkaException as e:
            raise ConnectError(f"Kafka at {self.bootstrap} does not answer: {e}") from e

    def _init_transactions(self, timeout: float) -> None:
        from confluent_kafka import Producer

        producer = Producer(self._config(**{"transactional.id": "_sluice_ready"}))
        producer.init_transactions(timeout)

    def _commit_group_offset(self, timeout: float) -> None:
        from confluent_kafka import Consumer, TopicPartition

        # The health check before this created the topic.
        consumer = Consumer(self._config(**{"group.id": "_sluice_ready"}))
        try:
            consumer.commit(offsets=[TopicPartition(HEALTH_TOPIC, 0, 0)], asynchronous=False)
        finally:
            consumer.close()

    def _ensure_health_topic(self, timeout: float) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self._config())
        future = admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1)], request_timeout=timeout)
        try:
            future[HEALTH_TOPIC].result(timeout)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def health(self, timeout: float = 15.0) -> str:
        """Produce one record to ``_sluice_health`` and consume it back; return a one-line
        summary, or raise ConnectError saying which step failed."""
        from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

        started = time.monotonic()
        token = uuid.uuid4().hex.encode()
        try:
            self._ensure_health_topic(timeout)
        except KafkaException as e:
            raise ConnectError(f"cannot create topic {HEALTH_TOPIC}: {e}") from e
        delivered: list[int] = []
        errors: list[str] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                delivered.append(msg.offset())

        producer = Producer(self._config(**{"enable.idempotence": True, "acks": "all"}))
        producer.produce(HEALTH_TOPIC, value=token, on_delivery=on_delivery)
        producer.flush(timeout)
        if not delivered:
            raise ConnectError(f"produce to {HEALTH_TOPIC} failed: {errors or 'timed out'}")
        consumer = Consumer(
            self._config(
                **{
                    "group.id": "_sluice_health",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    "fetch.wait.max.ms": 10,  # the record is there: don't idle 500 ms
                }
            )
        )
        try:
            consumer.assign([TopicPartition(HEALTH_TOPIC, 0, delivered[0])])
            deadline = started + timeout
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None and msg.value() == token:
                    elapsed_ms = (time.monotonic() - started) * 1000
                    return (
                        f"ok: produced and consumed offset {delivered[0]} of {HEALTH_TOPIC} "
                        f"in {elapsed_ms:.0f} ms"
                    )
        finally:
            consumer.close()
        raise ConnectError(f"record produced to {HEALTH_TOPIC} was not consumed in {timeout} s")

    def answers(self) -> bool:
        try:
            self._metadata(timeout=3.0)
        except ConnectError:
            return False
        return True
