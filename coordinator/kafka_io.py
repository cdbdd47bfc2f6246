"""Kafka clients configured the way Sluice needs them, and small helpers around them.

One place decides the settings that exactly-once rests on (transactions, idempotence,
read_committed, no auto-commit, Java-compatible murmur2 partitioning), so no runner or
connector re-invents them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from coordinator.errors import ConnectError

log = logging.getLogger("sluice.kafka")
client_log = logging.getLogger("sluice.kafka.client")

# A librdkafka line repeated (the same failure, from any client of this process) is shown
# at most this often: an unreachable broker made every client print its refused connection
# every 50 ms, ~200 lines before Sluice's own one-line error.
CLIENT_LOG_REPEAT_S = 60.0
_VARYING = re.compile(r"\d+ms|rdkafka#\w+-\d+")


class ClientLog:
    """librdkafka's own log lines, through Python logging (``sluice.kafka.client``) instead
    of straight to stderr, each distinct line at most once per :data:`CLIENT_LOG_REPEAT_S`.
    Errors that matter also surface as exceptions or error callbacks, with Sluice's text."""

    def __init__(self) -> None:
        self._shown: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def log(self, level: int, fmt: str, *args: Any) -> None:
        # confluent-kafka calls log(level, "%s [%s] %s", facility, client name, message).
        facility, message = (str(args[0]), str(args[-1])) if len(args) >= 2 else ("", fmt)
        key = (facility, _VARYING.sub("", message))
        now = time.monotonic()
        with self._lock:
            if now - self._shown.get(key, -CLIENT_LOG_REPEAT_S) < CLIENT_LOG_REPEAT_S:
                return
            if len(self._shown) > 1000:
                self._shown.clear()
            self._shown[key] = now
        client_log.log(level, fmt, *args)


CLIENT_LOG = ClientLog()


def serve_client_logs(client: Any) -> None:
    """Log what librdkafka queued for this client now. Its lines reach :class:`ClientLog`
    only from ``poll()``; a client that turned fatal (a producer fenced by a newer
    incarnation) is about to be dropped, and its line is the one that says why."""
    with contextlib.suppress(Exception):
        client.poll(0)


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """What every Kafka client of Sluice starts from: the brokers, and its logs routed
    through :class:`ClientLog`."""
    return {"bootstrap.servers": bootstrap, "logger": CLIENT_LOG, **extra}


# The largest row event a reader publishes (key + Avro value). The producer and the job's
# topics take a little more, for the record batch's framing; a larger row is a data error the
# reader names (table, key, size) instead of a send Kafka refuses, again on every retry.
MAX_RECORD_BYTES = 8 * 1024 * 1024
_FRAMING_BYTES = 64 * 1024

# Control-plane topics shared by every job (Kafka Connect's offsets and status topics).
OFFSETS_TOPIC = "sluice-offsets"
STATUS_TOPIC = "sluice-status"


def producer_config(bootstrap: str, transactional_id: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **client_config(bootstrap),
        "enable.idempotence": True,
        "acks": "all",
        # Same partition for the same key as Java clients (Kafka Connect, Debezium consumers).
        "partitioner": "murmur2_random",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": MAX_RECORD_BYTES + _FRAMING_BYTES,
    }
    if transactional_id is not None:
        conf["transactional.id"] = transactional_id
        conf["transaction.timeout.ms"] = 60_000
    return conf


def record_producer_config(bootstrap: str) -> dict[str, Any]:
    """A producer for a few keyed records to a compacted control topic (a job's config, its
    status, a reset position), made and dropped per request. Not idempotent: librdkafka's
    idempotent producer holds its first delivery ~0.5 s for a producer id, which every
    `sluice submit` and REST call paid; a retried duplicate of such a record only rewrites
    the same value, and one request in flight keeps the records in order."""
    return {
        **producer_config(bootstrap),  # the same partitioner: a key lands where others put it
        "enable.idempotence": False,
        "max.in.flight.requests.per.connection": 1,
    }


def consumer_config(
    bootstrap: str, group_id: str, *, read_committed: bool = True, **extra: Any
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **client_config(bootstrap),
        "group.id": group_id,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        # librdkafka prefetches up to 64 MiB per consumer by default; a writer needs far less
        # to stay busy, and its memory should not grow with a lagging topic.
        "queued.max.messages.kbytes": 16 * 1024,
    }
    conf.update(extra)
    return conf


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    replication_factor: int = 1
    large_records: bool = False
    """Take records up to :data:`MAX_RECORD_BYTES` (the broker's default is 1 MiB)."""


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(client_config(bootstrap))


def check_reachable(bootstrap: str, timeout: float = 10.0) -> None:
    """Fail fast, with the address, when no broker answers (librdkafka would retry forever)."""
    try:
        admin(bootstrap).list_topics(timeout=timeout)
    except KafkaException as e:
        raise ConnectError(
            f"Kafka at {bootstrap} did not answer within {timeout:.0f}s ({e.args[0]}); "
            "start it with `sluice local up` or set SLUICE_KAFKA_BOOTSTRAP / --bootstrap-servers"
        ) from None


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet. An existing topic is left as it is, but one
    with fewer partitions than asked for is an error: keys would land elsewhere."""
    client = admin(bootstrap)
    specs = list(specs)
    existing = client.list_topics(timeout=timeout).topics
    new = []
    existing_large = []
    for s in specs:
        if s.name in existing:
            have = len(existing[s.name].partitions)
            if have < s.partitions:
                raise ConnectError(
                    f"topic {s.name} has {have} partitions, the job needs {s.partitions}"
                )
            if s.large_records:
                existing_large.append(s.name)
            continue
        config = {"cleanup.policy": "compact"} if s.compacted else {}
        if s.large_records:
            config["max.message.bytes"] = str(MAX_RECORD_BYTES + _FRAMING_BYTES)
        new.append(NewTopic(s.name, s.partitions, s.replication_factor, config=config))
    if existing_large:
        _take_large_records(client, existing_large, timeout)
    if not new:
        return
    for name, fut in client.create_topics(new, operation_timeout=timeout).items():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConnectError(f"cannot create topic {name}: {e.args[0].str()}") from None
    _wait_for_metadata(client, [s.name for s in specs], timeout)


def _take_large_records(client: AdminClient, topics: list[str], timeout: float) -> None:
    """Job topics made before (an older Sluice, or by hand with the broker's 1 MiB default)
    would refuse a large row as a commit that times out, naming no row: raise their
    ``max.message.bytes`` to what the job's rows may need, or say in one line why not.
    One describe request for them all: this runs at every job start."""
    need = MAX_RECORD_BYTES + _FRAMING_BYTES
    topic = topics[0]
    try:
        described = client.describe_configs(
            [ConfigResource(ResourceType.TOPIC, t) for t in topics], request_timeout=timeout
        )
        small = []
        for resource, fut in described.items():
            topic = resource.name
            entry = fut.result(timeout).get("max.message.bytes")
            if entry is None or entry.value is None or int(entry.value) < need:
                small.append(topic)
        for topic in small:
            change = ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry(
                        "max.message.bytes", str(need), incremental_operation=AlterConfigOpType.SET
                    )
                ],
            )
            (altered,) = client.incremental_alter_configs([change]).values()
            altered.result(timeout)
            log.info("topic %s: max.message.bytes raised to %d for rows up to 8 MiB", topic, need)
    except KafkaException as e:
        raise ConnectError(
            f"topic {topic} takes smaller records than a row may need: setting its "
            f"max.message.bytes to {need} failed ({e.args[0].str()}); set it yourself with "
            f"kafka-configs --alter --entity-type topics --entity-name {topic} "
            f"--add-config max.message.bytes={need}"
        ) from None


def _wait_for_metadata(client: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = client.list_topics(timeout=timeout).topics
        if all(
            n in topics
            and topics[n].error is None
            and all(p.leader >= 0 for p in topics[n].partitions.values())
            for n in names
        ):
            return
        time.sleep(0.1)
    raise ConnectError(f"topics {names} did not get leaders within {timeout:.0f}s")


def read_to_end(
    bootstrap: str,
    topic: str,
    *,
    read_committed: bool = True,
    timeout: float = 30.0,
) -> list[tuple[bytes | None, bytes | None, int, int]]:
    """Every record of ``topic`` from the beginning to its current end, as
    ``(key, value, partition, offset)``. Used for compacted state topics and control topics.

    "The end" is taken once, at the start (for a read_committed consumer the last stable
    offset), and reading stops when every partition's position has reached it.
    """
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": "sluice-reader-unused",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            return []
        ends: dict[int, int] = {}
        tps = []
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout, cached=False
            )
            if high > low:
                ends[p] = high
                tps.append(TopicPartition(topic, p, low))
        if not tps:
            return []
        consumer.assign(tps)
        out: list[tuple[bytes | None, bytes | None, int, int]] = []
        deadline = time.monotonic() + timeout
        pending = set(ends)
        while pending:
            if time.monotonic() > deadline:
                raise ConnectError(f"reading {topic} to its end took over {timeout:.0f}s")
            msg = consumer.poll(0.2)
            if msg is not None:
                err = msg.error()
                if err is None:
                    out.append((msg.key(), msg.value(), msg.partition() or 0, msg.offset() or 0))
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise ConnectError(f"reading {topic}: {err.str()}")
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            for tp in positions:
                if tp.offset >= 0 and tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
        return out
    finally:
        consumer.close()


def latest_json_by_key(
    records: Iterable[tuple[bytes | None, bytes | None, int, int]],
) -> dict[str, Any]:
    """Compacted-topic semantics: the last value per key; a null value deletes the key."""
    state: dict[str, Any] = {}
    for key, value, _p, _o in records:
        if key is None:
            continue
        k = key.decode()
        if value is None:
            state.pop(k, None)
        else:
            state[k] = json.loads(value)
    return state
