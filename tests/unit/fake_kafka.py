"""An in-memory Kafka with the semantics the exactly-once protocol rests on, behind the
tasks' :class:`~coordinator.kafka_port.KafkaPort`.

What it models, and nothing more (anything else raises :class:`NotImplementedError`):

* topics of numbered partitions; every record takes the next offset of its partition, and
  each commit or abort writes a control marker that takes an offset too, as in Kafka, so
  offsets have gaps where transactions ended;
* transactional producers: ``init_transactions`` fences the producer that held the same
  ``transactional.id`` (its later calls raise a fatal ``_FENCED`` error, as librdkafka's do)
  and aborts its open transaction; records of an open or aborted transaction are invisible
  to ``read_committed`` consumers, which stop at the partition's last stable offset (the
  first offset of a transaction still open);
* ``send_offsets_to_transaction``: the group's offsets change when, and only if, the
  transaction commits;
* consumers: ``assign`` / ``seek`` / ``pause`` / ``resume`` / ``consume`` / ``committed``,
  ``read_committed`` only (all the tasks use).

A task *process* is a :class:`FakeProcess`: the clients it made die with it. ``kill()`` is
SIGKILL: nothing more of that process reaches Kafka (each later call raises
:class:`ProcessKilled`), and its open transaction stays open until a new incarnation fences
it, exactly what a broker sees of a killed task.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from coordinator.kafka_port import Record
from schemas.registry import InMemorySchemaRegistry, SchemaRegistry
from source_connectors.base import StateStore, StateStores


class ProcessKilled(BaseException):
    """The task's process died here (SIGKILL): a BaseException, so no ``except Exception``
    of the task handles it, as none could handle a real SIGKILL."""


def _fenced() -> KafkaException:
    return KafkaException(
        KafkaError(
            KafkaError._FENCED,
            "Producer fenced by newer instance: Failed to acquire transactional PID from "
            "broker: Broker: Producer attempted to use an outdated epoch",
            fatal=True,
        )
    )


def _state(what: str) -> KafkaException:
    return KafkaException(KafkaError(KafkaError._STATE, f"Operation not valid in state: {what}"))


@dataclass
class _Transaction:
    transactional_id: str
    state: Literal["open", "committed", "aborted"] = "open"
    first: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) → the transaction's first offset there."""
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)
    """(group, topic, partition) → next offset, applied to the group on commit."""


@dataclass
class _Entry:
    key: bytes | None
    value: bytes | None
    headers: Any
    txn: _Transaction | None
    marker: bool = False

    def visible(self, read_committed: bool) -> bool:
        if self.marker:
            return False
        if self.txn is None or not read_committed:
            return True
        return self.txn.state == "committed"


@dataclass(frozen=True)
class GroupMetadata:
    group_id: str


class FakeKafka:
    """The broker: topics, transactions, consumer groups. Shared by every incarnation."""

    def __init__(self) -> None:
        self.logs: dict[str, list[list[_Entry]]] = {}
        self.group_offsets: dict[tuple[str, str, int], int] = {}
        self.transactional_ids: dict[str, FakeProducer] = {}
        self.open: list[_Transaction] = []
        """The producer that holds each transactional.id now (the last to init)."""
        self.registry = InMemorySchemaRegistry()
        self.before_commit: list[Callable[[FakeProducer], None]] = []
        """Called by each commit_transaction before it takes effect: a test's hook may
        raise there (a KafkaException the broker answered, or ProcessKilled)."""

    def create_topic(self, name: str, partitions: int) -> None:
        if name in self.logs:
            raise ValueError(f"topic {name} exists")
        self.logs[name] = [[] for _ in range(partitions)]

    def process(self) -> FakeProcess:
        return FakeProcess(self)

    # -- what tests look at -----------------------------------------------------------------
    def partition(self, topic: str, p: int) -> list[_Entry]:
        if topic not in self.logs:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC, f"no topic {topic}"))
        log = self.logs[topic]
        if not 0 <= p < len(log):
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, f"{topic} [{p}]"))
        return log[p]

    def stable_end(self, topic: str, p: int) -> int:
        """The last stable offset: a read_committed consumer reads no further."""
        firsts = [t.first[(topic, p)] for t in self.open if (topic, p) in t.first]
        return min(firsts, default=len(self.partition(topic, p)))

    def records(self, topic: str, *, read_committed: bool = True) -> list[Record]:
        """What a consumer of this isolation level reads of ``topic`` from the beginning."""
        out: list[Record] = []
        for p, entries in enumerate(self.logs[topic]):
            end = self.stable_end(topic, p) if read_committed else len(entries)
            out.extend(
                (e.key, e.value, p, o)
                for o, e in enumerate(entries[:end])
                if e.visible(read_committed)
            )
        return out

    def end_offsets(self, topic: str) -> dict[int, int]:
        return {p: len(entries) for p, entries in enumerate(self.logs[topic])}

    def open_transactions(self) -> list[str]:
        return sorted(t.transactional_id for t in self.open if t.first)

    # -- used by the clients ------------------------------------------------------------------
    def _append(self, topic: str, p: int, entry: _Entry) -> int:
        entries = self.partition(topic, p)
        entries.append(entry)
        return len(entries) - 1

    def _end(self, txn: _Transaction, state: Literal["committed", "aborted"]) -> None:
        txn.state = state
        self.open.remove(txn)
        for topic, p in sorted(txn.first):
            self._append(topic, p, _Entry(None, None, None, txn, marker=True))
        if state == "committed":
            self.group_offsets.update(txn.offsets)


class FakeProcess:
    """One task process's view of the broker (a :class:`KafkaPort`); ``kill()`` ends it."""

    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka
        self.alive = True

    def kill(self) -> None:
        self.alive = False

    def check(self) -> None:
        if not self.alive:
            raise ProcessKilled("this task process was killed")

    def producer(self, transactional_id: str | None = None) -> FakeProducer:
        self.check()
        return FakeProducer(self, transactional_id)

    def consumer(self, group_id: str) -> FakeConsumer:
        self.check()
        return FakeConsumer(self, group_id)

    def read_to_end(self, topic: str) -> list[Record]:
        self.check()
        if topic not in self.kafka.logs:
            return []  # as read_to_end does for a topic that does not exist
        return self.kafka.records(topic)

    def schema_registry(self, url: str | None) -> SchemaRegistry:
        if url is not None:
            raise NotImplementedError("fake Kafka: only the Kafka-topic schema registry")
        return self.kafka.registry

    def state_stores(self) -> StateStores:
        self.check()
        return _NoStores()


class _NoStores:
    """The test sources keep no state beyond their positions."""

    def open(self, name: str) -> StateStore:
        raise NotImplementedError(f"fake Kafka: no state store {name!r}")


class FakeProducer:
    def __init__(self, process: FakeProcess, transactional_id: str | None) -> None:
        self.process = process
        self.kafka = process.kafka
        self.transactional_id = transactional_id
        self.initialized = False
        self.fenced = False
        self.txn: _Transaction | None = None
        self._deliveries: list[tuple[Callable[[Any, Any], None], Message]] = []
        self._next_keyless = 0

    def _check(self) -> None:
        self.process.check()
        if self.fenced:
            raise _fenced()

    def _check_transactional(self, need_open: bool) -> _Transaction | None:
        self._check()
        if self.transactional_id is None:
            raise KafkaException(
                KafkaError(
                    KafkaError._NOT_CONFIGURED,
                    "The Transactional API requires transactional.id to be configured",
                )
            )
        if not self.initialized:
            raise _state("Init")
        if need_open and self.txn is None:
            raise _state("Ready")
        return self.txn

    def init_transactions(self, timeout: float = -1) -> None:
        self._check()
        if self.transactional_id is None:
            raise KafkaException(KafkaError(KafkaError._NOT_CONFIGURED, "no transactional.id"))
        previous = self.kafka.transactional_ids.get(self.transactional_id)
        if previous is not None and previous is not self:
            previous.fenced = True
            if previous.txn is not None:
                self.kafka._end(previous.txn, "aborted")
                previous.txn = None
        self.kafka.transactional_ids[self.transactional_id] = self
        self.initialized = True

    def begin_transaction(self) -> None:
        if self._check_transactional(need_open=False) is not None:
            raise _state("InTransaction")
        assert self.transactional_id is not None
        self.txn = _Transaction(self.transactional_id)
        self.kafka.open.append(self.txn)

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        *,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None:
        self._check()
        if self.transactional_id is not None and self.txn is None:
            raise _state("not in a transaction")
        key_b = key.encode() if isinstance(key, str) else key
        value_b = value.encode() if isinstance(value, str) else value
        self.kafka.partition(topic, 0)  # the topic exists
        n = len(self.kafka.logs[topic])
        if partition < 0:
            # Any stable choice will do here: only "one key, one partition" matters.
            if key_b is not None:
                partition = zlib.crc32(key_b) % n
            else:
                partition, self._next_keyless = self._next_keyless % n, self._next_keyless + 1
        offset = self.kafka._append(topic, partition, _Entry(key_b, value_b, headers, self.txn))
        if self.txn is not None:
            self.txn.first.setdefault((topic, partition), offset)
        if on_delivery is not None:
            msg = Message(topic=topic, partition=partition, offset=offset, key=key_b, value=value_b)
            self._deliveries.append((on_delivery, msg))

    def poll(self, timeout: float = -1) -> int:
        self._check()
        deliveries, self._deliveries = self._deliveries, []
        for callback, msg in deliveries:
            callback(None, msg)
        return len(deliveries)

    def flush(self, timeout: float = -1) -> int:
        self.poll(0)
        return 0

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = -1
    ) -> None:
        txn = self._check_transactional(need_open=True)
        assert txn is not None
        if not isinstance(group_metadata, GroupMetadata):
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "not a group metadata"))
        for tp in positions:
            if tp.offset < 0:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG, f"offset {tp}"))
            self.kafka.partition(tp.topic, tp.partition)
            txn.offsets[(group_metadata.group_id, tp.topic, tp.partition)] = tp.offset

    def commit_transaction(self, timeout: float = -1) -> None:
        txn = self._check_transactional(need_open=True)
        assert txn is not None
        self.flush()
        for hook in list(self.kafka.before_commit):
            hook(self)
        self.kafka._end(txn, "committed")
        self.txn = None

    def abort_transaction(self, timeout: float = -1) -> None:
        txn = self._check_transactional(need_open=True)
        assert txn is not None
        self._deliveries.clear()
        self.kafka._end(txn, "aborted")
        self.txn = None


class FakeConsumer:
    """A ``read_committed`` consumer with manual assignment and no auto commit."""

    def __init__(self, process: FakeProcess, group_id: str) -> None:
        self.process = process
        self.kafka = process.kafka
        self.group_id = group_id
        self.positions: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self.closed = False
        self._turn = 0

    def _check(self) -> None:
        self.process.check()
        if self.closed:
            raise RuntimeError("Consumer closed")

    def _start(self, tp: TopicPartition) -> int:
        self.kafka.partition(tp.topic, tp.partition)
        if tp.offset == OFFSET_BEGINNING:
            return 0
        if tp.offset == OFFSET_INVALID:  # no committed offset: auto.offset.reset=earliest
            return self.kafka.group_offsets.get((self.group_id, tp.topic, tp.partition), 0)
        if tp.offset < 0:
            raise NotImplementedError(f"fake Kafka: logical offset {tp.offset}")
        return tp.offset

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._check()
        self.positions = {(tp.topic, tp.partition): self._start(tp) for tp in partitions}
        self.paused.clear()

    def assignment(self) -> list[TopicPartition]:
        self._check()
        return [TopicPartition(t, p) for t, p in self.positions]

    def _owned(self, partitions: list[TopicPartition]) -> list[tuple[str, int]]:
        out = [(tp.topic, tp.partition) for tp in partitions]
        for tp in out:
            if tp not in self.positions:
                raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, f"{tp} unassigned"))
        return out

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._check()
        self.paused.update(self._owned(partitions))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._check()
        self.paused.difference_update(self._owned(partitions))

    def seek(self, partition: TopicPartition) -> None:
        self._check()
        (tp,) = self._owned([partition])
        self.positions[tp] = self._start(partition)

    def committed(
        self, partitions: list[TopicPartition], timeout: float = -1
    ) -> list[TopicPartition]:
        self._check()
        return [
            TopicPartition(
                tp.topic,
                tp.partition,
                self.kafka.group_offsets.get(
                    (self.group_id, tp.topic, tp.partition), OFFSET_INVALID
                ),
            )
            for tp in partitions
        ]

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition] | None:
        self._check()
        for tp in offsets:
            self.kafka.group_offsets[(self.group_id, tp.topic, tp.partition)] = tp.offset
        return offsets

    def consumer_group_metadata(self) -> GroupMetadata:
        self._check()
        return GroupMetadata(self.group_id)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to ``num_messages`` committed records, taken from the unpaused partitions in
        turn (so records of different partitions interleave, as fetches do); never waits."""
        self._check()
        out: list[Message] = []
        active = [tp for tp in self.positions if tp not in self.paused]
        progressed = True
        while len(out) < num_messages and progressed:
            progressed = False
            for i in range(len(active)):
                topic, p = active[(self._turn + i) % len(active)]
                msg = self._next(topic, p)
                if msg is not None:
                    out.append(msg)
                    progressed = True
                    if len(out) == num_messages:
                        break
            self._turn += 1
        return out

    def _next(self, topic: str, p: int) -> Message | None:
        entries = self.kafka.partition(topic, p)
        end = self.kafka.stable_end(topic, p)
        offset = self.positions[(topic, p)]
        while offset < end:
            e = entries[offset]
            offset += 1
            if e.visible(read_committed=True):
                self.positions[(topic, p)] = offset
                return Message(
                    topic=topic, partition=p, offset=offset - 1, key=e.key, value=e.value
                )
        self.positions[(topic, p)] = offset
        return None

    def close(self) -> None:
        self._check()
        self.closed = True
