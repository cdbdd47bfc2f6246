"""A reader task: one source part → the job's data topic, inside Kafka transactions.

Every transaction carries a run of rows *and* the source position after them (in
``sluice-offsets``), so a crash at any point leaves Kafka holding either both or neither. The
``transactional.id`` is stable per run and task: a restarted task fences its zombie, whose
open transaction Kafka aborts, then resumes from the last committed position.

When the coordinator triggers checkpoint k, the task finishes the batch it is in (batches end
on source-transaction boundaries), writes Barrier k to every partition, and commits. A
bounded part ends with a *final* barrier.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

from confluent_kafka import KafkaException

from coordinator.connectors import build_source
from coordinator.control import ControlListener
from coordinator.errors import TaskFailed
from coordinator.faults import NO_FAULTS, Faults
from coordinator.gc_tuning import tune_for_streaming
from coordinator.kafka_io import MAX_RECORD_BYTES, OFFSETS_TOPIC, serve_client_logs
from coordinator.kafka_port import ConfluentKafka, KafkaPort, TaskProducer
from coordinator.plan import JobPlan
from coordinator.positions import TaskPosition, positions_in
from coordinator.ratelimit import ReadRateLimiter
from coordinator.reporting import TaskCounters, TaskReporter
from coordinator.watchdog import deadline
from schemas.events import Barrier, Op, RowEvent
from schemas.serde import EventSerde
from schemas.table import TableSchema
from source_connectors.base import SourcePartReader

log = logging.getLogger("sluice.reader")

# A transaction is committed at least this often even without a checkpoint: read_committed
# writers see nothing of an open transaction, so its length is the floor of end-to-end latency.
COMMIT_EVERY_S = 0.25
COMMIT_EVERY_ROWS = 50_000
# How often a binlog reader asks the server how far its end is (SHOW BINARY LOGS).
BYTES_BEHIND_EVERY_S = 5.0


def record_key(event: RowEvent) -> bytes | None:
    """Primary-key values → Kafka key, so one key always lands in one partition (murmur2)."""
    table = event.table
    held = _key_positions.get(id(table))
    if held is None or held[0] is not table:
        held = _remember_key_positions(table)
    positions = held[1]
    if not positions:
        return None
    values = event.after if event.after is not None else event.before
    assert values is not None
    return _key_of(values, positions)


def _key_of(values: tuple[object, ...], positions: tuple[int, ...]) -> bytes:
    if len(positions) == 1:  # the common case: one key column, no join
        return str(values[positions[0]]).encode()
    return "\x1f".join([str(values[i]) for i in positions]).encode()


def split_key_change(event: RowEvent, new_key: bytes | None) -> tuple[RowEvent, bytes] | None:
    """For an UPDATE that changes the primary key: the DELETE of the old key, to be published
    under the old key before ``event`` is published as an INSERT of the new one; None for
    every other event.

    Keys pick partitions, and each partition has its own writer: published whole under the
    new key, the update would reach a writer that does not hold the old key's earlier
    events, whose own writer may apply the old key's INSERT after the update deleted it —
    the row would come back under its old key and the new one would be lost. Split as
    Debezium does, each key's events stay in order in its own partition.
    """
    if event.op is not Op.UPDATE or new_key is None or event.before is None:
        return None
    positions = _key_positions[id(event.table)][1]
    old_key = _key_of(event.before, positions)
    if old_key == new_key:
        return None
    delete = RowEvent(Op.DELETE, event.table, event.before, None, event.source, event.ts_ms)
    return delete, old_key


# Key column positions per table schema, by identity: every event of a table shares one.
_key_positions: dict[int, tuple[TableSchema, tuple[int, ...]]] = {}


def _remember_key_positions(table: TableSchema) -> tuple[TableSchema, tuple[int, ...]]:
    if len(_key_positions) >= 4096:
        _key_positions.clear()
    held = _key_positions[id(table)] = (
        table,
        tuple(table.column_index[c] for c in table.primary_key),
    )
    return held  # the table is kept: its id is not reused


def too_large(event: RowEvent, key: bytes | None, value: bytes) -> TaskFailed:
    """A row Kafka cannot carry: a data error, named, never retried (every retry would send
    the same bytes). The open transaction is aborted, so nothing of it reaches a writer."""
    mib = 1024 * 1024
    where = f"key {key.decode(errors='replace')[:200]}" if key else f"event {event.event_id}"
    return TaskFailed(
        f"row of table {event.table.qualified_name} with {where} is {len(value) / mib:.1f} MiB "
        f"as a Kafka record, over the {MAX_RECORD_BYTES / mib:.0f} MiB a record may hold "
        "(the data topic's max.message.bytes): it cannot be copied; leave it out with the "
        "reader's where (job.content[0].reader.parameter.where) or shrink it at the source"
    )


class ReaderTask:
    def __init__(
        self,
        plan: JobPlan,
        index: int,
        reporter: TaskReporter,
        stop: Any = None,
        faults: Faults = NO_FAULTS,
        kafka: KafkaPort | None = None,
    ) -> None:
        self.plan = plan
        self.stop = stop
        self.faults = faults
        self.kafka: KafkaPort = kafka or ConfluentKafka(plan.bootstrap)
        self.part = plan.reader_parts[index]
        self.task = plan.reader_tasks[index]
        self.reporter = reporter
        self.counters = TaskCounters()
        self.serde = EventSerde(self.kafka.schema_registry(plan.schema_registry_url))
        # At-least-once runs without Kafka transactions: rows are flushed before the position
        # that covers them, so a crash re-reads (duplicates) but never skips.
        self.transactional = plan.exactly_once
        txn_id = plan.transactional_id(self.task) if self.transactional else None
        self.producer: TaskProducer = self.kafka.producer(txn_id)
        self.offsets_key = plan.offsets_key(self.task)
        speed = plan.job.setting.speed
        self.limiter = ReadRateLimiter(speed.records, speed.bytes, len(plan.reader_parts))
        self.started = time.monotonic()
        self.reader_part: SourcePartReader | None = None
        self._behind_at = 0.0

    def run(self) -> None:
        # Fencing first: it aborts a previous incarnation's open transaction, so the position
        # read next is the last one that really committed.
        if self.transactional:
            self.producer.init_transactions(60)
        positions = positions_in(self.kafka.read_to_end(OFFSETS_TOPIC), self.offsets_key)
        saved = positions.get("", TaskPosition())
        if saved.done:
            log.info("%s: finished in an earlier run, nothing to read", self.task)
            self.reporter.finished(self.task, self.counters)
            return
        source = build_source(self.plan.job)
        reader = source.build_part(self.part, self.task, saved.position or None)
        self.reader_part = reader
        log.debug("%s: part %s from %s", self.task, self.part, saved.position or "the start")
        reader.attach_stores(self.kafka.state_stores())  # e.g. binlog schema history
        control = ControlListener(self.plan, self.serde, self.task, self.kafka)
        state = saved
        self.counters.checkpoint = state.checkpoint  # then each _commit keeps it current
        tune_for_streaming()
        try:
            self._loop(reader, control, state)
        except TaskFailed:
            # A data error: abort now, so read_committed writers are not held up behind an
            # open transaction until its timeout; nothing of it is applied.
            if self.transactional:
                with contextlib.suppress(KafkaException):
                    self.producer.abort_transaction(10)
            raise
        except KafkaException:
            # librdkafka's lines for this producer wait for a poll() that will not come:
            # they say why (a produce fails as "Local: Fatal error" when fenced by a newer task).
            serve_client_logs(self.producer)
            raise
        finally:
            reader.close()
            control.close()

    def _loop(
        self, reader: SourcePartReader, control: ControlListener, state: TaskPosition
    ) -> None:
        topic = self.plan.data_topic
        self._begin()
        rows_in_txn = 0
        txn_started = time.monotonic()
        while True:
            if self.limiter.active and self.limiter.pause() > 0:
                # Over the rate limit: commit first (never wait inside an open transaction),
                # then wait in short steps that still honour checkpoints and stop requests.
                trigger = (
                    control.latest_trigger if control.latest_trigger > state.checkpoint else None
                )
                if rows_in_txn or trigger is not None:
                    self._commit(state, reader.snapshot(), barrier=trigger)
                    self._begin()
                    rows_in_txn = 0
                    txn_started = time.monotonic()
                if self.stop is not None and self.stop.is_set():
                    self._commit(state, reader.snapshot(), barrier=None)  # reports, too
                    return
                time.sleep(min(self.limiter.pause(), 0.1))
                control.poll(0)
                self.reporter.progress(self.task, self.counters)
                continue
            batch = reader.next_batch()
            if batch is None:
                self._commit(state, reader.snapshot(), barrier=state.checkpoint + 1, final=True)
                self.reporter.finished(self.task, self.counters)
                return
            batch_bytes = 0
            encode, produce = self.serde.encode, self.producer.produce
            for event in batch:
                key = record_key(event)
                if event.op is Op.UPDATE and (split := split_key_change(event, key)):
                    delete, old_key = split
                    value = encode(delete)
                    if len(value) > MAX_RECORD_BYTES:
                        raise too_large(delete, old_key, value)
                    self._produce(topic, value, old_key)
                    batch_bytes += len(value)
                    event = replace(event, op=Op.INSERT, before=None)  # noqa: PLW2901
                value = encode(event)
                if len(value) > MAX_RECORD_BYTES:
                    raise too_large(event, key, value)
                try:
                    produce(topic, value, key)
                except BufferError:  # the producer's queue is full: wait for room
                    self._produce(topic, value, key)
                batch_bytes += len(value)
            self.counters.bytes += batch_bytes
            self.limiter.take(len(batch), batch_bytes)
            self._measure(batch)
            for change in reader.take_schema_changes():
                # DDL goes to every partition, like a barrier: a table's rows are spread over
                # all of them, so each writer must meet it in order on each of its own.
                value = self.serde.encode(change)
                for p in range(self.plan.partitions):
                    self._produce(topic, value, None, partition=p)
            if batch:
                self.counters.rows += len(batch)
                rows_in_txn += len(batch)
                state.seq = batch[-1].source.seq
                self.faults.hit("mid_txn")
            if self.stop is not None and self.stop.is_set():
                # Asked to stop (e.g. SIGTERM of an endless job): commit what was read so
                # far with its position, so the next run resumes right after it.
                self._commit(state, reader.snapshot(), barrier=None)  # reports, too
                return
            control.poll(0)
            trigger = control.latest_trigger if control.latest_trigger > state.checkpoint else None
            now = time.monotonic()
            if (
                trigger is not None
                or rows_in_txn >= COMMIT_EVERY_ROWS
                or (rows_in_txn and now - txn_started >= COMMIT_EVERY_S)
            ):
                self._commit(state, reader.snapshot(), barrier=trigger)
                self._begin()
                rows_in_txn = 0
                txn_started = now
            self.reporter.progress(self.task, self.counters)
            if not batch:
                time.sleep(0.01)

    def _measure(self, batch: list[RowEvent]) -> None:
        """Lag behind the source: now − event time of the last row read (source commit time
        for CDC, whole seconds in a binlog); 0 when the source has nothing new."""
        now = time.time()
        lag = max(0.0, now * 1000 - batch[-1].ts_ms) if batch else 0.0
        self.counters.extra["lag_ms"] = round(lag, 1)
        elapsed = time.monotonic() - self.started
        if elapsed > 0:
            self.counters.extra["rows_per_s"] = round(self.counters.rows / elapsed, 1)
        if self.reader_part is not None and (
            time.monotonic() - self._behind_at >= BYTES_BEHIND_EVERY_S
        ):
            self._behind_at = time.monotonic()
            try:
                value = self.reader_part.bytes_behind()
            except Exception as e:  # noqa: BLE001 - a metric must never stop the task
                log.debug("%s: binlog bytes behind: %s", self.task, e)
                value = None
            if value is not None:
                self.counters.extra["lag_bytes"] = float(value)

    def _begin(self) -> None:
        if self.transactional:
            self.producer.begin_transaction()

    def _produce(
        self, topic: str, value: bytes, key: bytes | None, partition: int | None = None
    ) -> None:
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, value, key)
                else:
                    self.producer.produce(topic, value, key, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _commit(
        self,
        state: TaskPosition,
        position: dict[str, str],
        barrier: int | None,
        final: bool = False,
    ) -> None:
        """Barriers (if any), then the position, then commit — all one transaction."""
        state.position = position
        final_offsets: dict[str, int] = {}
        if barrier is not None:
            marker = self.serde.encode(
                Barrier(checkpoint=barrier, task=self.task, final=final, position=position)
            )

            def remember(err: Any, msg: Any) -> None:
                if err is None and final:
                    final_offsets[str(msg.partition())] = msg.offset()

            for p in range(self.plan.partitions):
                while True:
                    try:
                        self.producer.produce(
                            self.plan.data_topic, marker, None, partition=p, on_delivery=remember
                        )
                        break
                    except BufferError:
                        self.producer.poll(0.05)
            state.checkpoint = barrier
        if final:
            # The final barriers' offsets go into the position, so must be known first.
            self.producer.flush(60)
            if len(final_offsets) != self.plan.partitions:
                raise KafkaException(f"{self.task}: final barriers not all delivered")
            state.done = True
            state.final_offsets = final_offsets
        if not self.transactional:
            self.producer.flush(60)  # rows before the position that covers them
        self.producer.produce(OFFSETS_TOPIC, state.to_json(), self.offsets_key.encode())
        if self.transactional:
            with deadline(90, f"{self.task}: Kafka commit"):
                self.producer.commit_transaction(60)
        else:
            self.producer.flush(60)
        if self.reader_part is not None:
            self.reader_part.committed(position)  # e.g. a replication slot may move on
        # Rows are visible to the writers from here on: the runner hears of them now, not at
        # the next throttled report, so numRead is never behind numWrite.
        self.counters.checkpoint = state.checkpoint
        self.reporter.progress(self.task, self.counters, force=True)
        self.faults.hit("after_commit")


def run_reader(
    plan: JobPlan, index: int, reporter: TaskReporter, stop: Any, faults: Faults
) -> None:
    ReaderTask(plan, index, reporter, stop, faults).run()
