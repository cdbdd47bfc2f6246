"""Kafka helpers: create a topic and wait for its leaders; read a topic's records back."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError

from testkit.wait import wait_until


def new_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> str:
    """Create topic ``name`` and wait until every partition has a leader; return the name.

    The local broker does not auto-create topics, as Sluice never relies on that.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout)

    def has_leaders() -> bool:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        return (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    wait_until(has_leaders, timeout, f"topic {name} to have leaders")
    return name


# The sink creates its topic once the job starts: until then a subscriber hears of it missing.
_NOT_YET = (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART)


def read_topic(
    bootstrap: str, topic: str, expected: int, *, committed: bool = True, timeout: float = 60
) -> list[Any]:
    """Every record of ``topic`` (``(key, value)`` bytes) once ``expected`` have arrived, plus
    whatever arrives in the next second (a duplicate must have a chance to show)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}-{time.monotonic_ns()}",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for m in consumer.consume(500, 0.2):
                err = m.error()
                if err is not None and err.code() not in _NOT_YET:
                    raise AssertionError(f"reading {topic}: {err.str()}")
                if err is None:
                    out.append((m.key(), m.value()))
            if len(out) >= expected and settle is None:
                settle = time.monotonic() + 1.0
        return out
    finally:
        consumer.close()
