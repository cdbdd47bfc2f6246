"""Where the reader and writer tasks (and the checkpoint coordinator) get their Kafka
clients: one injectable object.

A task asks its :class:`KafkaPort` once, while it starts, for each client it needs (its
transactional producer, its read_committed consumers, the records of a state topic, its
schema registry), then calls the clients directly: the per-record path has no indirection.
:class:`ConfluentKafka`, the default, builds confluent-kafka clients exactly as the tasks
always did. The unit tests hand the tasks an in-memory Kafka instead
(``tests/unit/fake_kafka.py``) and drive the exactly-once protocol through every crash point
without a broker.

:class:`TaskProducer` and :class:`TaskConsumer` list what the tasks call, no more: that is
what an in-memory Kafka must implement.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from coordinator.kafka_io import consumer_config, producer_config, read_to_end
from coordinator.state_store import KafkaStateStores
from schemas.registry import SchemaRegistry, make_registry
from source_connectors.base import StateStores

Record = tuple[bytes | None, bytes | None, int, int]
"""``(key, value, partition, offset)``, as :func:`coordinator.kafka_io.read_to_end` gives."""


class TaskProducer(Protocol):
    """An idempotent producer; transactional when made with a ``transactional.id``."""

    def init_transactions(self, timeout: float = -1) -> None: ...
    def begin_transaction(self) -> None: ...
    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        *,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None: ...
    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = -1
    ) -> None: ...
    def commit_transaction(self, timeout: float = -1) -> None: ...
    def abort_transaction(self, timeout: float = -1) -> None: ...
    def flush(self, timeout: float = -1) -> int: ...
    def poll(self, timeout: float = -1) -> int: ...


class TaskConsumer(Protocol):
    """A ``read_committed`` consumer without auto commit, its partitions assigned by hand."""

    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def assignment(self) -> list[TopicPartition]: ...
    def committed(
        self, partitions: list[TopicPartition], timeout: float = -1
    ) -> list[TopicPartition]: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def seek(self, partition: TopicPartition) -> None: ...
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition] | None: ...
    def consumer_group_metadata(self) -> Any: ...
    def close(self) -> None: ...


class KafkaPort(Protocol):
    """The Kafka of one job run, as its tasks use it."""

    def producer(self, transactional_id: str | None = None) -> TaskProducer:
        """A producer with :func:`~coordinator.kafka_io.producer_config`."""
        ...

    def consumer(self, group_id: str) -> TaskConsumer:
        """A consumer in ``group_id`` with :func:`~coordinator.kafka_io.consumer_config`."""
        ...

    def read_to_end(self, topic: str) -> list[Record]:
        """Every committed record of ``topic``, from its beginning to its end as of now."""
        ...

    def schema_registry(self, url: str | None) -> SchemaRegistry:
        """Where the ids of the job's Avro schemas resolve (``setting.kafka``)."""
        ...

    def state_stores(self) -> StateStores:
        """The connectors' own durable state (:meth:`SourcePartReader.attach_stores`)."""
        ...


class ConfluentKafka:
    """The real Kafka at ``bootstrap``, through confluent-kafka (librdkafka)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def producer(self, transactional_id: str | None = None) -> Producer:
        return Producer(producer_config(self.bootstrap, transactional_id))

    def consumer(self, group_id: str) -> Consumer:
        return Consumer(consumer_config(self.bootstrap, group_id))

    def read_to_end(self, topic: str) -> list[Record]:
        return read_to_end(self.bootstrap, topic)

    def schema_registry(self, url: str | None) -> SchemaRegistry:
        return make_registry(self.bootstrap, url)

    def state_stores(self) -> KafkaStateStores:
        return KafkaStateStores(self.bootstrap)
