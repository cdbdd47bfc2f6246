"""The checkpoint coordinator: triggers checkpoints and learns when they are complete.

Checkpoint k is *complete* when every partition of the data topic has been committed by some
writer at k or later (writers ack in the same Kafka transaction as their offsets). A
complete checkpoint is a consistent cut: every source change before the barriers is in the
sink, none after. The next checkpoint is triggered once the previous one is complete and
either the interval has passed or ``maxRowNumForCheckpoint`` rows were read since.
"""

from __future__ import annotations

import json
import logging
import time

from coordinator.alignment import FINAL
from coordinator.control import CheckpointTriggerProducer, ControlListener
from coordinator.kafka_io import STATUS_TOPIC
from coordinator.kafka_port import ConfluentKafka, KafkaPort
from coordinator.plan import JobPlan, safe_name
from schemas.control import WriterAck
from schemas.serde import EventSerde

log = logging.getLogger("sluice.checkpoint")


class CheckpointCoordinator:
    def __init__(
        self,
        plan: JobPlan,
        serde: EventSerde,
        kafka: KafkaPort | None = None,
    ) -> None:
        self.plan = plan
        kafka = kafka or ConfluentKafka(plan.bootstrap)
        self.listener = ControlListener(plan, serde, "coordinator", kafka)
        self.trigger_producer = CheckpointTriggerProducer(plan, serde, kafka)
        self._status = kafka.producer()
        self.acked: dict[int, int] = dict.fromkeys(range(plan.partitions), 0)
        self.final_partitions: set[int] = set()
        self.triggered = 0
        self.completed = 0
        self.last_trigger_at = time.monotonic()
        self.rows_at_trigger = 0
        self.durations: list[float] = []
        self._triggered_at = 0.0
        self._ack_count = 0
        self.rows_committed = 0
        self.errors_committed = 0
        """Rows the writers rejected (now in the dirty-data topic), same accounting."""
        """Rows applied by committed writer checkpoints of this run (exact: one ack per
        committed sink transaction)."""

    def resume(self) -> None:
        """Pick up numbering and completion from a run that was interrupted."""
        self.listener.poll(2.0)
        self.triggered = self.listener.latest_trigger
        self._take_acks()
        # Partitions whose readers all ended ack FINAL (2**62): that marks "done", it is not
        # a checkpoint number, so the count stays at the last checkpoint triggered.
        self.completed = min(min(self.acked.values()), self.triggered)

    def _take_acks(self) -> None:
        new: list[WriterAck] = self.listener.acks[self._ack_count :]
        self._ack_count = len(self.listener.acks)
        topic_prefix = f"{self.plan.data_topic}:"
        for ack in new:
            self.rows_committed += ack.rows
            self.errors_committed += ack.errors
            for tp in ack.offsets:
                p = int(tp.removeprefix(topic_prefix))
                self.acked[p] = max(self.acked[p], ack.checkpoint)
            self.final_partitions.update(int(p) for p in ack.final_partitions)

    def poll(self, rows_read: int) -> None:
        self.listener.poll(0)
        self._take_acks()
        done = min(self.acked.values())
        if self.triggered and done >= self.triggered > self.completed:
            self.completed = self.triggered
            self.durations.append(time.monotonic() - self._triggered_at)
            log.debug("checkpoint %s complete", self.completed)
            self._publish("COMPLETED", self.completed, duration_ms=int(self.durations[-1] * 1000))
        if self.triggered > self.completed or self.all_final:
            return
        now = time.monotonic()
        max_rows = self.plan.max_rows_per_checkpoint
        if now - self.last_trigger_at >= self.plan.checkpoint_interval_s or (
            max_rows is not None and rows_read - self.rows_at_trigger >= max_rows
        ):
            self._trigger(now)
            self.rows_at_trigger = rows_read

    def trigger_now(self) -> int:
        """Trigger a checkpoint at once (unless one is in flight); returns its number."""
        if self.triggered > self.completed:
            return self.triggered
        self._trigger(time.monotonic())
        return self.triggered

    def _trigger(self, now: float) -> None:
        self.triggered += 1
        self.trigger_producer.trigger(self.triggered)
        self.last_trigger_at = self._triggered_at = now
        self._publish("IN_PROGRESS", self.triggered)

    def _publish(self, state: str, checkpoint: int, **extra: int) -> None:
        """The checkpoint's state in ``sluice-status`` (compacted: the latest per job run)."""
        record = {
            "job": self.plan.job_name,
            "run": self.plan.run_id,
            "checkpoint": checkpoint,
            "state": state,
            "rows_committed": self.rows_committed,
            "ts_ms": int(time.time() * 1000),
            **extra,
        }
        self._status.produce(STATUS_TOPIC, json.dumps(record).encode(), self.status_key.encode())
        self._status.poll(0)

    @property
    def status_key(self) -> str:
        return f"checkpoint/{safe_name(self.plan.job_name)}/{self.plan.run_id}"

    @property
    def all_final(self) -> bool:
        """Every partition has been committed past every reader's final barrier."""
        return len(self.final_partitions) == self.plan.partitions or all(
            v >= FINAL for v in self.acked.values()
        )

    def close(self) -> None:
        self._status.flush(30)
        self.listener.close()
