"""Connector state stores (:class:`source_connectors.base.StateStores`) on compacted Kafka
topics: the runner opens them for a part reader, so connectors never hold Kafka clients."""

from __future__ import annotations

from confluent_kafka import Producer

from coordinator.errors import ConnectError
from coordinator.kafka_io import TopicSpec, ensure_topics, producer_config, read_to_end

PUT_TIMEOUT_S = 30


class KafkaStateStore:
    """One compacted topic with one partition: ``load`` reads it to its end, ``put``
    produces and waits for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Producer | None = None
        ensure_topics(bootstrap, [TopicSpec(topic, 1, compacted=True)])

    def load(self) -> list[tuple[bytes, bytes]]:
        return [
            (key, value)
            for key, value, _p, _o in read_to_end(self.bootstrap, self.topic)
            if key is not None and value is not None
        ]

    def put(self, key: bytes, value: bytes) -> None:
        if self._producer is None:
            self._producer = Producer(producer_config(self.bootstrap))
        self._producer.produce(self.topic, value, key)
        if self._producer.flush(PUT_TIMEOUT_S) > 0:
            raise ConnectError(
                f"a record was not written to {self.topic} within {PUT_TIMEOUT_S}s "
                f"(Kafka at {self.bootstrap})"
            )


class KafkaStateStores:
    """The job's Kafka, as named stores (a store's name is its topic)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def open(self, name: str) -> KafkaStateStore:
        return KafkaStateStore(self.bootstrap, name)
