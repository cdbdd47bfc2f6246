"""A writer task: its share of the data topic's partitions → the sink, with two-phase commits.

It reads the data topic ``read_committed``, applies rows inside an open sink transaction and,
once every owned partition has passed the same checkpoint barrier, commits in two phases:

1. ``sink.pre_commit`` — durable but undecided (MySQL ``XA PREPARE``);
2. one Kafka transaction: the writer's ack to the control topic + the consumer offsets
   (``send_offsets_to_transaction``) — this is the decision;
3. ``sink.commit`` (``XA COMMIT``).

On start it first fences its previous incarnation (``init_transactions``), then resolves
whatever that one left prepared: committed in Kafka (its ack is visible) → commit, else roll
back. Nothing is lost and nothing is applied twice.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter, defaultdict, deque
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from coordinator.alignment import FINAL, BarrierAligner
from coordinator.connectors import build_sink
from coordinator.control import acks_in
from coordinator.errors import ConnectError, TaskFailed, TransientError
from coordinator.faults import NO_FAULTS, Faults
from coordinator.gc_tuning import tune_for_streaming
from coordinator.kafka_io import MAX_RECORD_BYTES, OFFSETS_TOPIC, serve_client_logs
from coordinator.kafka_port import ConfluentKafka, KafkaPort, TaskConsumer, TaskProducer
from coordinator.metrics import LatencyHistogram, error_class
from coordinator.plan import JobPlan
from coordinator.positions import positions_in
from coordinator.reporting import TaskCounters, TaskReporter
from coordinator.watchdog import deadline
from schemas.control import WriterAck
from schemas.events import Barrier, RowEvent, SchemaChange
from schemas.serde import EventSerde
from sink_connectors.base import Rejected, SinkWriter

log = logging.getLogger("sluice.writer")

KAFKA_CALL_TIMEOUT_S = 30
KAFKA_DECISION_DEADLINE_S = 45  # see coordinator/watchdog.py


class WriterTask:
    def __init__(
        self,
        plan: JobPlan,
        index: int,
        reporter: TaskReporter,
        stop: Any,
        faults: Faults = NO_FAULTS,
        kafka: KafkaPort | None = None,
    ) -> None:
        self.plan = plan
        self.faults = faults
        self.kafka: KafkaPort = kafka or ConfluentKafka(plan.bootstrap)
        self.index = index
        self.task = f"writer-{index}"
        self.reporter = reporter
        self.stop = stop
        self.counters = TaskCounters(latency=LatencyHistogram())
        # Event times (ms) of the rows in the open sink transaction → how many rows each.
        self.event_times: Counter[int] = Counter()
        self.started = time.monotonic()
        self.serde = EventSerde(self.kafka.schema_registry(plan.schema_registry_url))
        self.sink = build_sink(plan.job, plan.bootstrap)
        self.batch_size = self.sink.batch_rows
        self.aligner = BarrierAligner(plan.reader_tasks)
        self.pending: list[RowEvent] = []
        self.held: dict[int, deque[Message]] = defaultdict(deque)
        # aligner.is_held(p) for every owned partition, kept up to date by _refresh_held:
        # asked for every record, it was a tenth of a writer's time.
        self.held_parts: set[int] = set()
        self.next_offset: dict[int, int] = {}
        self.rows_in_txn = 0
        self.bytes_in_txn = 0
        self.dirty: list[tuple[bytes, bytes]] = []
        self.txn_id = ""
        self.decision_in_doubt = False
        self.finished_reported = False

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> None:
        eo = self.plan.exactly_once
        self.producer: TaskProducer = self.kafka.producer(
            self.plan.transactional_id(self.task) if eo else None
        )
        if eo:
            self.producer.init_transactions(60)  # fence the previous incarnation first
        self.writer: SinkWriter = self.sink.build_writer(self.task)
        control = self.kafka.read_to_end(self.plan.control_topic)
        committed_txns = {a.txn for a in acks_in(control, self.serde) if a.task == self.task}
        prefix = self.plan.sink_txn_prefix(self.task)
        for txn, done in self.writer.recover(prefix, lambda t: t in committed_txns):
            log.info("%s: recovered %s: %s", self.task, txn, "committed" if done else "rolled back")
        self.consumer: TaskConsumer = self.kafka.consumer(self.plan.writer_group)
        self.partitions = self.plan.writer_partitions(self.index)
        self._start_from_committed(first=True)
        tune_for_streaming()
        try:
            while not self.stop.is_set():
                msgs = self.consumer.consume(num_messages=2000, timeout=0.1)
                for m in msgs:
                    self._handle(m)
                if len(self.pending) >= self.batch_size:
                    self._flush()
                k = self.aligner.ready()
                if k is not None:
                    self._checkpoint(k)
                self.reporter.progress(self.task, self.counters)
        finally:
            if not self.decision_in_doubt:  # else recover() of the next incarnation decides
                self.writer.abort()
            self.consumer.close()

    def _start_from_committed(self, first: bool = False) -> None:
        """(Re)start every owned partition at its committed offset, with a fresh sink
        transaction: at start, and after a checkpoint that Kafka did not commit.

        Partitions are owned by task index (``plan.writer_partitions``), not handed out by
        group rebalances: a writer task keeps its partitions for the whole run, a restarted
        incarnation fences the old one through its ``transactional.id``, and no rebalance
        ever throws away work in progress. The group still holds the committed offsets.
        """
        topic = self.plan.data_topic
        committed = self.consumer.committed(
            [TopicPartition(topic, p) for p in self.partitions], timeout=30
        )
        self.pending.clear()
        self.dirty.clear()
        self.held.clear()
        self.next_offset.clear()
        self.rows_in_txn = 0
        self.bytes_in_txn = 0
        self.event_times.clear()
        self.aligner.reset()
        positions = positions_in(self.kafka.read_to_end(OFFSETS_TOPIC), self.plan.offsets_key(""))
        start = []
        for tp in committed:
            # A reader whose final barrier lies before the committed offset has finished
            # there: we will not see that barrier again.
            finished = [
                task
                for task, pos in positions.items()
                if pos.done
                and tp.offset >= 0
                and pos.final_offsets.get(str(tp.partition), FINAL) < tp.offset
            ]
            self.aligner.assign(tp.partition, finished)
            start.append(
                TopicPartition(
                    topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                )
            )
        self._refresh_held()
        if first:
            self.consumer.assign(start)
        else:
            self.consumer.resume(start)
            for tp in start:
                self.consumer.seek(tp)
        self._begin()
        log.info(
            "%s: partitions %s from offsets %s",
            self.task,
            self.partitions,
            [tp.offset for tp in start],
        )

    # -- records --------------------------------------------------------------------------
    def _handle(self, m: Message) -> None:
        err = m.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            raise KafkaException(err)
        p, offset, value = m.partition(), m.offset(), m.value()
        assert p is not None and offset is not None and value is not None
        if p in self.held_parts:
            self.held[p].append(m)
            return
        record = self.serde.decode(value)
        self.next_offset[p] = offset + 1
        if isinstance(record, Barrier):
            self.aligner.on_barrier(p, record.task, record.checkpoint, record.final)
            if self.aligner.is_held(p):
                self.held_parts.add(p)
                self.consumer.pause([TopicPartition(self.plan.data_topic, p)])
        elif isinstance(record, RowEvent):
            self.pending.append(record)
            self.bytes_in_txn += len(value)
            self.event_times[record.ts_ms] += 1
        elif isinstance(record, SchemaChange):
            self._schema_change(record, p, offset)
        else:
            raise TaskFailed(
                f"{self.task}: unexpected {type(record).__name__} on data topic "
                f"{self.plan.data_topic} partition {p} offset {offset}"
            )

    def _flush(self) -> None:
        if self.pending:
            for r in self.writer.write(self.pending):
                self.dirty.append(dirty_record(self.plan, self.task, r))
            self.faults.hit("mid_write")
            self.rows_in_txn += len(self.pending)
            self.pending = []

    def _begin(self) -> None:
        self.txn_id = self._new_txn_id()
        self.writer.begin(self.txn_id)

    def _new_txn_id(self) -> str:
        # Unique per attempt, so an ack names exactly one sink transaction.
        return f"{self.plan.sink_txn_prefix(self.task)}{secrets.token_hex(4)}"

    # -- the two-phase commit -------------------------------------------------------------
    def _checkpoint(self, k: int) -> None:
        started = time.monotonic()
        if not self._commit_transaction(k):
            return
        self.aligner.committed(k)
        self._refresh_held()
        self.counters.checkpoint = k
        self.counters.extra["checkpoint_ms"] = round((time.monotonic() - started) * 1000, 1)
        # Committed rows are reported at once: a crash right after must not lose their count.
        self.reporter.progress(self.task, self.counters, force=True)
        log.debug("%s: checkpoint %s committed in %.3fs", self.task, k, time.monotonic() - started)
        self._release_held()
        if k >= FINAL and self.aligner.all_final() and not self.finished_reported:
            self.finished_reported = True
            self.reporter.finished(self.task, self.counters)

    def _commit_transaction(self, k: int) -> bool:
        """Both phases for everything written so far, acked as checkpoint ``k``, then a fresh
        sink transaction. False when Kafka did not commit: the sink was rolled back and every
        partition restarted from its committed offset."""
        self._flush()
        for r in self.writer.flush():  # statements still running, before phase one
            self.dirty.append(dirty_record(self.plan, self.task, r))
        topic = self.plan.data_topic
        offsets = {f"{topic}:{p}": o for p, o in self.next_offset.items()}
        tps = [TopicPartition(topic, p, o) for p, o in self.next_offset.items()]
        self.writer.pre_commit(self.txn_id, offsets)
        self.faults.hit("after_prepare")
        ack = WriterAck(
            job=self.plan.job_name,
            checkpoint=k,
            task=self.task,
            rows=self.rows_in_txn - len(self.dirty),  # applied: the rejected are in dirty
            offsets={f"{topic}:{p}": self.next_offset.get(p, -1) for p in self.aligner.partitions},
            ts_ms=int(time.time() * 1000),
            txn=self.txn_id,
            final_partitions=[str(p) for p in self.aligner.final_partitions()]
            if k >= FINAL
            else [],
            errors=len(self.dirty),
        )
        try:
            if self.plan.exactly_once:
                with deadline(
                    KAFKA_DECISION_DEADLINE_S, f"{self.task}: Kafka commit of checkpoint {k}"
                ):
                    self.producer.begin_transaction()
                    self._produce_dirty()
                    self._produce_output()
                    self.producer.produce(
                        self.plan.control_topic, self.serde.encode(ack), partition=0
                    )
                    if tps:
                        self.producer.send_offsets_to_transaction(
                            tps, self.consumer.consumer_group_metadata(), KAFKA_CALL_TIMEOUT_S
                        )
                    # commit_transaction flushes anyway; flushing first means a crash here
                    # leaves this transaction's records in the log, for tests to see aborted.
                    self.producer.flush(KAFKA_CALL_TIMEOUT_S)
                    self.faults.hit("before_kafka_commit")
                    # From here until it returns, the decision may be taken without our
                    # knowing: a timeout or a broker bounce can hide a commit that happened.
                    self.decision_in_doubt = True
                    self.producer.commit_transaction(KAFKA_CALL_TIMEOUT_S)
                    if self.faults.due("commit_unconfirmed"):
                        raise KafkaException(
                            KafkaError(KafkaError._TIMED_OUT, "injected: commit not confirmed")
                        )
                    self.decision_in_doubt = False
            else:
                # At-least-once: the sink committed in pre_commit; a crash before the offsets
                # commit below re-applies these rows.
                self._produce_dirty()
                self._produce_output()
                self.producer.produce(self.plan.control_topic, self.serde.encode(ack), partition=0)
                self.producer.flush(60)
                if tps:
                    self.consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            err = e.args[0]
            if self.decision_in_doubt and not err.txn_requires_abort():
                # Committed or not, only the broker knows. Leave the sink prepared: the next
                # incarnation's init_transactions settles the Kafka transaction and recover()
                # then commits or rolls back the sink by whether the ack is visible.
                raise TransientError(
                    f"{self.task}: outcome of the Kafka commit of checkpoint {k} unknown ({e}); "
                    "the task restarts and settles it"
                ) from e
            self.decision_in_doubt = False
            # Not decided in Kafka → roll the sink back and start over from committed offsets.
            log.warning(
                "%s: checkpoint %s not committed in Kafka (%s); rolling back", self.task, k, e
            )
            if not self._abort_kafka() or err.fatal():
                # The producer cannot go on (fenced, fatal state): a new incarnation must.
                serve_client_logs(self.producer)  # librdkafka's own line says why
                self.writer.abort()
                raise TransientError(
                    f"{self.task}: Kafka producer unusable after checkpoint {k} failed ({e}); "
                    "the task restarts"
                ) from e
            self.writer.abort()
            self._start_from_committed()
            return False
        self.faults.hit("after_kafka_commit")
        self.writer.commit(self.txn_id)
        self.faults.hit("after_sink_commit")
        self._measure_committed()
        self.counters.rows += self.rows_in_txn - len(self.dirty)
        self.counters.bytes += self.bytes_in_txn
        self.counters.errors += len(self.dirty)
        self.dirty.clear()
        self.rows_in_txn = 0
        self.bytes_in_txn = 0
        self._begin()
        return True

    def _measure_committed(self) -> None:
        """End-to-end latency of the rows just committed: sink commit time − event time
        (the source's commit time for CDC, in whole seconds for a binlog: up to 1 s more than
        the truth; the read time for snapshot rows). Rejected rows, by FlinkX's error class."""
        now_ms = time.time() * 1000
        assert self.counters.latency is not None
        for ts_ms, n in self.event_times.items():
            self.counters.latency.observe(now_ms - ts_ms, n)
        self.event_times.clear()
        for _key, value in self.dirty:
            cls = error_class(json.loads(value).get("code"))
            self.counters.errors_by_class[cls] = self.counters.errors_by_class.get(cls, 0) + 1
        elapsed = time.monotonic() - self.started
        self.counters.extra["rows_per_s"] = round(
            (self.counters.rows + self.rows_in_txn) / elapsed, 1
        )

    def _schema_change(self, change: SchemaChange, p: int, offset: int) -> None:
        """DDL met on partition ``p``, after every row before it there. A change the sink
        must apply first commits what is pending (see ``SinkWriter.schema_change_needs_
        commit``), with the change itself left unconsumed, so a crash before the ALTER meets
        it again; the sink's change is idempotent."""
        self._flush()
        if self.writer.schema_change_needs_commit(change):
            self.next_offset[p] = offset
            if not self._commit_transaction(self.aligner.last_committed):
                # Partitions were rewound mid-batch: start over rather than read on.
                raise ConnectError(
                    f"{self.task}: Kafka did not commit before the schema change of "
                    f"{change.qualified_name}; the task restarts from its committed offsets"
                )
            self.next_offset[p] = offset + 1
        self.writer.schema_change(change)

    def _produce_dirty(self) -> None:
        """Rejected rows go to the dirty-data topic in the checkpoint's own transaction, so
        each appears there exactly once, like the rows that were applied."""
        for key, value in self.dirty:
            self.producer.produce(self.plan.dirty_topic, value, key)

    def _produce_output(self) -> None:
        """A Kafka sink's records (``SinkWriter.pending_records``), in the same transaction as
        the offsets of the rows they came from: visible exactly when those offsets commit."""
        for r in self.writer.pending_records():
            while True:
                try:
                    self.producer.produce(r.topic, r.value, r.key, headers=r.headers)
                    break
                except BufferError:  # local queue full: let librdkafka send, then retry
                    self.producer.poll(0.1)

    def _abort_kafka(self) -> bool:
        """Abort the open Kafka transaction; False if the producer could not."""
        if not self.plan.exactly_once:
            return True
        try:
            self.producer.abort_transaction(60)
        except KafkaException as e:
            log.warning("%s: abort_transaction: %s", self.task, e)
            return False
        return True

    def _refresh_held(self) -> None:
        """After the aligner's state changed other than by a barrier (reset, assign, commit)."""
        self.held_parts = {p for p in self.aligner.partitions if self.aligner.is_held(p)}

    def _release_held(self) -> None:
        paused = self.consumer.assignment()
        held, self.held = self.held, defaultdict(deque)
        for _p, queue in sorted(held.items()):
            for m in queue:
                self._handle(m)
        still_held = {p for p in self.aligner.partitions if self.aligner.is_held(p)}
        self.consumer.resume([tp for tp in paused if tp.partition not in still_held])


# A dirty record over the record limit keeps this much of each long value (see dirty_record).
DIRTY_VALUE_CHARS = 1024


def dirty_record(plan: JobPlan, task: str, rejected: Rejected) -> tuple[bytes, bytes]:
    """(key, JSON value) of a rejected row: what, why, and where it came from."""
    ev = rejected.event
    row = ev.after if ev.after is not None else ev.before
    src = ev.source
    values = dict(zip(ev.table.column_names, map(_jsonable, row or ()), strict=False))
    value: dict[str, Any] = {
        "job": plan.job_name,
        "run": plan.run_id,
        "writer": task,
        "table": ev.table.qualified_name,
        "op": ev.op.value,
        "reason": rejected.reason,
        "code": rejected.code,
        "source": {
            "task": src.task,
            "seq": src.seq,
            "chunk": src.chunk,
            "file": src.file,
            "pos": src.pos,
            "gtid": src.gtid,
        },
        "row": values,
        "ts_ms": int(time.time() * 1000),
    }
    encoded = json.dumps(value, ensure_ascii=False).encode()
    if len(encoded) > MAX_RECORD_BYTES:
        # A row near the record limit, rejected, grows past it as JSON (bytes as hex): Kafka
        # would refuse the checkpoint's transaction on every retry. Its long values are cut
        # to their first DIRTY_VALUE_CHARS, and `cut` gives each one's full length (a cut
        # value is a str: _jsonable renders bytes and the rest as text).
        cut = {
            c: len(v)
            for c, v in values.items()
            if isinstance(v, str) and len(v) > DIRTY_VALUE_CHARS
        }
        value["row"] = {
            c: v[:DIRTY_VALUE_CHARS] if isinstance(v, str) and c in cut else v
            for c, v in values.items()
        }
        value["cut"] = cut
        encoded = json.dumps(value, ensure_ascii=False).encode()
    return ev.event_id.encode(), encoded


def _jsonable(v: object) -> object:
    if v is None or isinstance(v, int | float | str | bool):
        return v
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)


def run_writer(
    plan: JobPlan, index: int, reporter: TaskReporter, stop: Any, faults: Faults
) -> None:
    WriterTask(plan, index, reporter, stop, faults).run()
