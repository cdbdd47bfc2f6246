"""The default schema registry: ids derived from the schemas, schemas in a Kafka topic.

Needs nothing but Kafka: every process computes a schema's id from the schema itself, so no
central allocator hands out ids, and a compacted topic maps ids back to schemas for the
processes that decode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from coordinator.kafka_io import client_config as kafka_client_config
from schemas.errors import SchemaIdCollision, SchemaNotFound, SchemaRegistryError

log = logging.getLogger(__name__)

DEFAULT_SCHEMA_TOPIC = "_sluice_schemas"
# Answers about a topic created a moment ago, before every broker knows it.
_NOT_YET_THERE = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE}


def canonical_json(schema: dict[str, Any]) -> str:
    """The schema as compact JSON with sorted keys: equal schemas give equal text."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_fingerprint_id(schema: dict[str, Any]) -> int:
    """A positive 31-bit id from the SHA-256 of the schema's canonical JSON.

    Avro's Parsing Canonical Form would be the textbook input, but it strips logical types
    and custom props: ``decimal(10,2)`` and ``decimal(12,4)``, or two versions of a table
    differing only in a column's ``sluice.column`` prop, would share an id. The canonical
    JSON keeps everything, so schemas that differ in any way get different ids.
    """
    digest = hashlib.sha256(canonical_json(schema).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 0x7FFFFFFF + 1


_BROKER_AWAY = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._UNKNOWN_PARTITION,  # metadata not yet refreshed after the restart
    }
)


class KafkaTopicSchemaRegistry:
    """Schema ids derived from the schema itself; schemas stored in a compacted Kafka topic.

    The topic (``cleanup.policy=compact``, created if missing) holds key = id as a decimal
    string, value = the schema's canonical JSON. :meth:`register` produces with
    ``acks=all`` and flushes before it returns, so a record is never on a data topic before
    its schema is in the schema topic. :meth:`get` answers from memory and, on a miss, reads
    the topic up to its high watermark. Safe for the threads of one process (one lock) and
    for any number of processes (the same schema always produces the same key and value).

    Two different schemas hashing to the same 31-bit id is detected and raised as
    :class:`SchemaIdCollision`; the odds are about n²/2³² for n schemas.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = DEFAULT_SCHEMA_TOPIC,
        *,
        replication_factor: int = 1,
        timeout_s: float = 30.0,
        client_config: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.replication_factor = replication_factor
        self.timeout_s = timeout_s
        self._client_config = {**kafka_client_config(bootstrap), **(client_config or {})}
        self._lock = threading.RLock()
        self._texts: dict[int, str] = {}
        self._schemas: dict[int, Any] = {}  # id -> parsed JSON, compared on register
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._offsets_client: Consumer | None = None
        self._next_offsets: dict[int, int] = {}  # partition -> next offset to read

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        text = canonical_json(schema)
        schema_id = schema_fingerprint_id(schema)
        normalized = json.loads(text)
        if self._schemas.get(schema_id) == normalized:
            return schema_id
        with self._lock:
            if schema_id not in self._schemas:
                self._catch_up()
            if schema_id not in self._schemas:
                self._produce(schema_id, subject, text)
                self._catch_up()
            if schema_id not in self._texts:
                raise SchemaRegistryError(
                    f"schema {schema_id} ({subject}) was written to topic {self.topic} on "
                    f"{self.bootstrap} but cannot be read back"
                )
            if self._schemas[schema_id] != normalized:
                raise SchemaIdCollision(
                    f"schema id {schema_id} for subject {subject!r} is already taken in topic "
                    f"{self.topic} by a different schema: {self._texts[schema_id]:.200}"
                )
        return schema_id

    def get(self, schema_id: int) -> dict[str, Any]:
        text = self._texts.get(schema_id)
        if text is None:
            with self._lock:
                self._catch_up()
                text = self._texts.get(schema_id)
            if text is None:
                raise SchemaNotFound(schema_id, f"topic {self.topic} on {self.bootstrap}")
        schema: dict[str, Any] = json.loads(text)
        return schema

    def close(self) -> None:
        """Release the Kafka clients (optional: nothing is buffered between calls)."""
        with self._lock:
            for consumer in (self._consumer, self._offsets_client):
                if consumer is not None:
                    consumer.close()
            self._consumer = self._offsets_client = None
            if self._producer is not None:
                self._producer.flush(self.timeout_s)
                self._producer = None

    # -- Kafka plumbing (callers hold the lock) ---------------------------------------------

    def _ensure_topic(self) -> list[int]:
        """Create the compacted schema topic if missing; return its partitions."""
        admin = AdminClient(dict(self._client_config))
        new = NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=self.replication_factor,
            config={"cleanup.policy": "compact"},
        )
        try:
            admin.create_topics([new], operation_timeout=self.timeout_s)[self.topic].result(
                self.timeout_s
            )
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise self._error(f"cannot create schema topic {self.topic}", e) from e
        policy, partitions = self._describe_topic(admin)
        if policy != "compact":
            raise SchemaRegistryError(
                f"schema topic {self.topic} on {self.bootstrap} has cleanup.policy={policy}: "
                "schemas would be deleted with old segments and records become unreadable; "
                f"set cleanup.policy=compact on {self.topic}"
            )
        return partitions

    def _describe_topic(self, admin: AdminClient) -> tuple[str, list[int]]:
        """(cleanup.policy, partitions), waiting while a just-created topic propagates."""
        resource = ConfigResource(ResourceType.TOPIC, self.topic)
        deadline, delay = time.monotonic() + self.timeout_s, 0.05
        while True:
            try:
                configs = admin.describe_configs([resource])[resource].result(self.timeout_s)
                topic = admin.list_topics(self.topic, timeout=self.timeout_s).topics[self.topic]
                if topic.error is None and topic.partitions:
                    return configs["cleanup.policy"].value, sorted(topic.partitions)
                problem: object = topic.error or "no partitions"
            except KafkaException as e:
                if not (e.args[0].retriable() or e.args[0].code() in _NOT_YET_THERE):
                    raise self._error(f"cannot describe schema topic {self.topic}", e) from e
                problem = e
            if time.monotonic() + delay > deadline:
                raise self._error(f"schema topic {self.topic} is not ready", Exception(problem))
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _error(self, what: str, cause: Exception) -> SchemaRegistryError:
        return SchemaRegistryError(f"{what} on {self.bootstrap}: {cause}")

    def _produce(self, schema_id: int, subject: str, text: str) -> None:
        if self._producer is None:
            # Not idempotent: a retried duplicate is harmless (same key, same value), and
            # idempotence costs 0.5 s at the first send.
            config = {**self._client_config, "acks": "all", "linger.ms": 0}
            self._producer = Producer({**config, "partitioner": "murmur2_random"})
        failures: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        self._producer.produce(
            self.topic,
            key=str(schema_id).encode(),
            value=text.encode(),
            headers=[("subject", subject.encode())],
            on_delivery=on_delivery,
        )
        if self._producer.flush(self.timeout_s) > 0 or failures:
            reason = failures[0] if failures else f"not acknowledged within {self.timeout_s}s"
            raise SchemaRegistryError(
                f"cannot write schema {schema_id} ({subject}) to topic {self.topic} on "
                f"{self.bootstrap}: {reason}"
            )

    def _catch_up(self) -> None:
        """Read the schema topic from where we stopped up to its current high watermarks."""
        if self._consumer is None:
            partitions = self._ensure_topic()
            config = {
                **self._client_config,
                "group.id": f"sluice-schema-registry-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
            }
            self._consumer = Consumer(config)
            # Watermarks come from a client that never fetches: on the reading consumer's
            # connection they would queue behind its long-poll fetch (fetch.wait.max.ms).
            self._offsets_client = Consumer(config)
            # Offset 0 rather than OFFSET_BEGINNING, which costs a 0.5 s offset lookup; were
            # the log to start later, auto.offset.reset=earliest moves to its start.
            self._consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
            self._next_offsets = dict.fromkeys(partitions, 0)
        consumer = self._consumer
        deadline = time.monotonic() + self.timeout_s
        targets = {p: self._end_offset(p, deadline) for p in self._next_offsets}
        while any(self._next_offsets[p] < high for p, high in targets.items()):
            if time.monotonic() > deadline:
                raise SchemaRegistryError(
                    f"timed out after {self.timeout_s}s reading schema topic {self.topic} "
                    f"on {self.bootstrap} (at {self._next_offsets}, end {targets})"
                )
            # poll, not consume: consume(n) waits for n records or its whole timeout
            msg = consumer.poll(timeout=0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                self._apply(msg)
            elif error.fatal():
                raise SchemaRegistryError(f"reading schema topic {self.topic}: {error}")
            else:  # librdkafka retries these itself; the deadline bounds the wait
                log.debug("schema topic %s: %s", self.topic, error)

    def _end_offset(self, partition: int, deadline: float) -> int:
        """The partition's high watermark, retrying while a new topic's leader is elected."""
        assert self._offsets_client is not None
        delay = 0.05
        while True:
            try:
                _low, high = self._offsets_client.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self.timeout_s
                )
                return high
            except KafkaException as e:
                # librdkafka does not flag a lost broker connection retriable, but a broker
                # restart is exactly that: wait for it, within the deadline.
                transient = e.args[0].retriable() or e.args[0].code() in _BROKER_AWAY
                if not transient or time.monotonic() + delay > deadline:
                    raise self._error(f"cannot read schema topic {self.topic}", e) from e
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _apply(self, msg: Message) -> None:
        partition, offset, key, value = msg.partition(), msg.offset(), msg.key(), msg.value()
        if partition is None or offset is None:
            return
        self._next_offsets[partition] = offset + 1
        if key is None or value is None:
            return  # tombstones: an id, once used, keeps meaning its first schema
        try:
            schema_id = int(key)
            text = value.decode()
            self._schemas[schema_id] = json.loads(text)
            self._texts[schema_id] = text
        except ValueError:
            log.warning(
                "schema topic %s offset %s: not a schema record, skipped", self.topic, offset
            )
