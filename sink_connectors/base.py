"""The sink contract, modelled on Kafka Connect's ``SinkTask`` (put / preCommit) and Quix
Streams' sinks (add / flush-at-checkpoint).

The writer runner (``coordinator.writer_task``) consumes the data topic, aligns checkpoint
barriers and drives the two-phase commit; a sink only applies rows and exposes the phases:

    begin(txn) → write(events)* → pre_commit(txn, offsets) → [Kafka commit] → commit(txn)

A sink that ``supports_precommit`` makes ``pre_commit`` durable and undecided — after it, the
transaction survives a crash of this process and can still be committed or rolled back
(MySQL XA PREPARE, an HDFS in-progress file). That is what exactly-once needs. A sink without
it commits in ``pre_commit`` and gives at-least-once delivery; the runner refuses to run it in
an exactly-once job. A sink whose output is Kafka records (``kafkawriter``) hands them to the
runner (``pending_records``), which produces them in the checkpoint's own Kafka transaction:
that one commit is both their durability and the decision, so such a sink is exactly-once too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from coordinator.errors import ConfigError
from schemas.events import RowEvent, SchemaChange
from schemas.table import TableSchema


def source_indexes(source: TableSchema, names: list[str], where: str) -> list[int]:
    """Which source value feeds each writer column: by name when every writer column is a
    source column, else by position (FlinkX maps reader ``column`` i to writer ``column`` i)."""
    if all(n in source.column_index for n in names):
        return [source.column_index[n] for n in names]
    if len(names) == len(source.columns):
        return list(range(len(names)))
    raise ConfigError(
        f"{where}.column: {len(names)} writer columns {names} cannot be matched to the "
        f"{len(source.columns)} source columns {list(source.column_names)} of "
        f"{source.qualified_name} (same names, or the same number in order)"
    )


@dataclass(frozen=True)
class Rejected:
    event: RowEvent
    reason: str
    code: int = 0


@dataclass(frozen=True)
class OutputRecord:
    """A Kafka record a sink hands to the runner (see :meth:`SinkWriter.pending_records`)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]] | None = None


@dataclass(frozen=True)
class SinkContext:
    job: str
    writer_channels: int
    exactly_once: bool
    source_bounded: bool = True
    """False for an endless source (binlog CDC), whose tables may change while it runs."""
    reader_config: Any = None
    """The reader's validated ``parameter`` block, for sinks that follow a reader setting
    (``kafkawriter`` takes the reader's ``pavingData`` as the default of its ``format``)."""
    kafka_bootstrap: str | None = None
    """The job's Kafka: where the runner produces :meth:`SinkWriter.pending_records`."""
    partitions: int = 1
    """Partitions of the job's data topic (``setting.kafka.partitions``)."""
    replication_factor: int = 1
    """``setting.kafka.replication_factor``, for topics a sink creates."""
    schema_registry_url: str | None = None
    """``setting.kafka.schemaRegistryUrl``, for sinks that write Sluice Avro."""


class SinkWriter(ABC):
    """Applies rows for one writer task. One thread; one open transaction at a time.

    A sink without two-phase commit (``supports_precommit = False``: at-least-once only)
    implements :meth:`write` and :meth:`flush`, which must leave every row written so far
    durable: the runner commits the offsets after it returns. A two-phase sink extends
    :class:`TwoPhaseSinkWriter` instead. The other methods are optional hooks.
    """

    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        """Finish what an earlier incarnation of this writer left pre-committed.

        Called once before ``begin``. Transactions whose id starts with ``txn_prefix`` are this
        writer's. For each such transaction, ``is_committed(txn_id)`` says
        whether the Kafka side of its checkpoint committed: then it is committed, else rolled
        back. Returns ``(txn_id, committed)`` for each one resolved. A sink without
        two-phase commit has none.
        """
        return []

    def begin(self, txn_id: str) -> None:  # noqa: B027 - optional hook
        """Open a sink transaction; every ``write`` until ``pre_commit`` belongs to it."""

    @abstractmethod
    def write(self, events: list[RowEvent]) -> list[Rejected]:
        """Apply events in order inside the open transaction.

        Returns the events the sink rejected for their data (too long, out of range,
        duplicate key, constraint) with the reason; the rest are applied. The runner sends
        rejected rows to the job's dirty-data topic and enforces ``setting.errorLimit``.
        Raises on anything else (the task stops, or restarts if the error is transient)."""

    def flush(self) -> list[Rejected]:
        """Finish writes still in flight and return their rejected rows, like :meth:`write`.
        A sink may apply a batch in the background while the runner decodes the next one
        (``mysqlwriter`` does); the runner calls this before :meth:`pre_commit`."""
        return []

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:  # noqa: B027
        """Phase one: make the transaction durable but undecided, with ``offsets``
        (``topic:partition`` → next offset) stored inside it."""

    def commit(self, txn_id: str) -> None:  # noqa: B027 - optional hook
        """Phase two, after the Kafka transaction committed. Must be idempotent."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Roll back the open transaction (before ``pre_commit``), e.g. on rebalance."""

    def pending_records(self) -> list[OutputRecord]:
        """Kafka records this transaction's rows became, handed over for the runner to
        produce; the sink forgets them. Called once per checkpoint, after :meth:`pre_commit`.

        A sink whose output is Kafka never produces itself (connectors never touch Kafka
        transactions): in an exactly-once job the runner produces these records inside the
        checkpoint's own Kafka transaction, with the writer's ack and consumer offsets, so
        they become visible exactly when those offsets commit and vanish if it aborts. In an
        at-least-once job it produces and flushes them before committing the offsets. The
        default hands over nothing.
        """
        return []

    def schema_change_needs_commit(self, change: SchemaChange) -> bool:
        """Whether applying ``change`` needs the open transaction committed first.

        Called when the runner meets a schema change on a partition, after every row before
        it has been written. A sink that must alter its target says True: an ALTER waits
        for every transaction that touched the table, this writer's own open one included.
        The runner then commits both phases (acked as the last checkpoint) before calling
        :meth:`schema_change`. May raise ``TaskFailed`` to refuse the change.
        """
        return False

    def schema_change(self, change: SchemaChange) -> None:  # noqa: B027 - optional hook
        """Carry DDL of a source table over to the target, or decide to ignore it.

        Called after :meth:`schema_change_needs_commit`, once per partition the change is
        met on (and again after a restart), so it must be idempotent. The default ignores
        it: sinks without a fixed schema take rows of any shape.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Correctness must not depend on it being called."""


def follows_source_ddl(config: Any, context: SinkContext) -> bool:
    """Whether a table sink's targets follow the source's DDL (``schemaChange: evolve``):
    CDC jobs (an endless source) writing all columns. A bounded job's target is never
    altered; a column it lacks is an error at once."""
    return (
        not context.source_bounded
        and getattr(config, "schemaChange", None) == "evolve"
        and config.column_names is None
    )


class TwoPhaseSinkWriter(SinkWriter):
    """A writer of a sink with two-phase commit (``supports_precommit = True``): exactly
    once. Its transactions are opened, pre-committed, committed or rolled back, and
    resolved after a crash, as the runner decides (see coordinator/writer_task.py)."""

    @abstractmethod
    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]: ...

    @abstractmethod
    def begin(self, txn_id: str) -> None: ...

    @abstractmethod
    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None: ...

    @abstractmethod
    def commit(self, txn_id: str) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...


class Sink(ABC):
    supports_precommit: ClassVar[bool] = False

    def __init__(self, config: Any, context: SinkContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def check(self) -> None:
        """Connect and verify the target (table exists, columns match). Writes nothing."""

    @property
    def batch_rows(self) -> int:
        """How many rows the runner gathers before a :meth:`SinkWriter.write` call."""
        return 1024

    def check_input(self, tables: list[TableSchema]) -> None:  # noqa: B027 - optional hook
        """After :meth:`check`, before any row moves: raise ``ConfigError`` if one of the
        source's ``tables`` cannot be written (a column the target lacks, a type it cannot
        hold, a key it needs). The default takes any table."""

    def prepare_target(self) -> None:  # noqa: B027 - optional hook
        """Once per fresh job run, before any writer starts (FlinkX ``preSql``)."""

    def not_idempotent(self) -> tuple[str, str] | None:
        """``(JSON path, why)`` when applying the same events again would not leave the target
        as applying them once does (what ``sluice replay`` refuses); None when it would. By
        default a sink appends, so a replay duplicates."""
        return "job.content[0].writer", "this sink appends, so rows applied again are duplicated"

    def finish_target(self) -> None:  # noqa: B027 - optional hook
        """Once after a bounded job's last checkpoint committed (FlinkX ``postSql``)."""

    @abstractmethod
    def build_writer(self, task_id: str) -> SinkWriter:
        """A writer for one writer task; ``task_id`` is stable across restarts."""
