"""The job's control topic: checkpoint triggers from the coordinator, acks from writers.

Writers produce their ack for checkpoint k in the same Kafka transaction that commits their
consumer offsets, so "ack k from writer w is visible to a read_committed consumer" is exactly
"writer w's Kafka side of checkpoint k committed" — the fact two-phase recovery decides on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from coordinator.kafka_io import read_to_end
from coordinator.kafka_port import ConfluentKafka, KafkaPort
from coordinator.plan import JobPlan
from schemas.control import CheckpointTrigger, WriterAck
from schemas.serde import EventSerde


class ControlListener:
    """Follows the control topic from its beginning, without blocking the caller."""

    def __init__(
        self,
        plan: JobPlan,
        serde: EventSerde,
        group_suffix: str,
        kafka: KafkaPort | None = None,
    ) -> None:
        self.serde = serde
        self.latest_trigger = 0
        self.acks: list[WriterAck] = []
        kafka = kafka or ConfluentKafka(plan.bootstrap)
        self._consumer = kafka.consumer(f"{plan.writer_group}.{group_suffix}.unused")
        self._consumer.assign([TopicPartition(plan.control_topic, 0, OFFSET_BEGINNING)])

    def poll(self, timeout: float = 0.0) -> None:
        """Take in whatever control records have arrived."""
        msgs = self._consumer.consume(num_messages=1000, timeout=timeout)
        for m in msgs:
            if m.error() is not None or m.value() is None:
                continue
            record = self.serde.decode(m.value())
            if isinstance(record, CheckpointTrigger):
                self.latest_trigger = max(self.latest_trigger, record.checkpoint)
            elif isinstance(record, WriterAck):
                self.acks.append(record)

    def close(self) -> None:
        self._consumer.close()


def committed_acks(plan: JobPlan, serde: EventSerde) -> list[WriterAck]:
    """Every committed writer ack of this run."""
    return acks_in(read_to_end(plan.bootstrap, plan.control_topic), serde)


def acks_in(
    records: Iterable[tuple[bytes | None, bytes | None, int, int]], serde: EventSerde
) -> list[WriterAck]:
    """:func:`committed_acks` of the control topic's records read already."""
    out = []
    for _k, value, _p, _o in records:
        if value is None:
            continue
        record = serde.decode(value)
        if isinstance(record, WriterAck):
            out.append(record)
    return out


class CheckpointTriggerProducer:
    def __init__(self, plan: JobPlan, serde: EventSerde, kafka: KafkaPort | None = None) -> None:
        self.plan = plan
        self.serde = serde
        self._producer = (kafka or ConfluentKafka(plan.bootstrap)).producer()

    def trigger(self, checkpoint: int) -> None:
        record = CheckpointTrigger(
            job=self.plan.job_name, checkpoint=checkpoint, ts_ms=int(time.time() * 1000)
        )
        self._producer.produce(self.plan.control_topic, self.serde.encode(record), partition=0)
        self._producer.flush(30)
