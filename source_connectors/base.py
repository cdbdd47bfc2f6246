"""The source contract. A source is a factory of parts; each part is read by one reader task.

Modelled on Bytewax's partitioned sources and Kafka Connect's ``SourceTask``: the runner
(``coordinator.reader_task``) owns Kafka, transactions, barriers and retries; a source only
reads. A source *declares* what it can do so the runner can refuse a job up front instead of
failing halfway:

* ``supports_resume`` — a part can restart from the state its ``snapshot()`` returned. Without
  it, exactly-once delivery is impossible and the runner says so before starting.
* ``bounded`` — parts end (a table copy) or run forever (a binlog).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from schemas.events import RowEvent, SchemaChange
from schemas.table import TableSchema


@dataclass(frozen=True)
class SourceContext:
    job: str
    reader_channels: int
    restore_column: str | None = None
    """FlinkX ``setting.restore.restoreColumnName``: the column a part resumes after."""
    exactly_once: bool = True
    """``setting.delivery``: whether a part must resume exactly where it stopped (a table
    source then needs a unique resume key), or may read its rows again."""


class StateStore(Protocol):
    """A durable key/value log of a connector's own (a compacted Kafka topic): state that
    outlives runs and is not a part's position, such as binlog schema history."""

    def load(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) written so far, oldest first (a key may repeat: last wins)."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Write one record; durable once this returns (raises ``ConnectError`` if not)."""
        ...


class StateStores(Protocol):
    """What the runner hands a part reader: named stores, opened (created) on demand."""

    def open(self, name: str) -> StateStore: ...


class SourcePartReader(ABC):
    """Reads one part. Used by exactly one reader task at a time, from one thread."""

    @abstractmethod
    def next_batch(self) -> list[RowEvent] | None:
        """The next events, in source order.

        Returns ``None`` once a bounded part is exhausted, and ``[]`` when an unbounded part has
        nothing right now. A batch always ends at a source-transaction boundary, so the runner
        may place a checkpoint barrier after any batch without splitting a source transaction.
        """

    @abstractmethod
    def snapshot(self) -> dict[str, str]:
        """The position right after the last event returned by ``next_batch``.

        The runner commits it in the same Kafka transaction as those events; passing it back to
        ``Source.build_part`` must resume with the next event, none skipped or repeated.
        """

    def take_schema_changes(self) -> list[SchemaChange]:
        """DDL that the batch just returned ended with, in source order (CDC sources).

        The runner writes each change to *every* partition of the data topic, after the
        batch's rows and before the next batch's, in the same Kafka transaction as the
        batch: every writer then meets it in order with the table's rows on each of its
        partitions. Sources without DDL keep this default.
        """
        return []

    def attach_stores(self, stores: StateStores) -> None:  # noqa: B027 - optional hook
        """Called once by the runner before the first :meth:`next_batch`. A connector keeps
        state beyond its position only in ``stores`` (it never opens Kafka clients itself).
        Sources without such state keep this default."""

    def committed(self, state: dict[str, str]) -> None:  # noqa: B027 - optional hook
        """Called by the runner once ``state`` (what :meth:`snapshot` returned) is durably
        committed with every event before it, from the thread that reads. A log-based
        source may now let its server discard the log before that position — never
        earlier, or a crash would find it gone. Sources without such a log keep this
        default."""

    def bytes_behind(self) -> int | None:
        """How far this reader is behind its source's end in bytes (a log-based source's
        lag metric), or None when the source cannot say. Called every few seconds."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Correctness must not depend on it being called."""


class Source(ABC):
    """A configured source: checks itself, splits the work, builds part readers."""

    supports_resume: ClassVar[bool] = False
    bounded: ClassVar[bool] = True

    def __init__(self, config: Any, context: SourceContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def for_config(cls, config: Any) -> type[Source]:
        """The class that reads ``config``: this one, unless one plugin reads in several
        ways by its config (``mysqlreader`` with ``increColumn`` polls). The runner builds
        it, and asks it, not the plugin's class, whether the source ends or resumes."""
        return cls

    @classmethod
    def bounded_for(cls, config: Any) -> bool:
        """Whether a source of this plugin built from ``config`` ends: what a sink is told
        before the source is built."""
        return cls.for_config(config).bounded

    @abstractmethod
    def check(self) -> None:
        """Connect and verify everything the job needs (tables, columns, privileges).

        Called once, before any topic is created or any row moves. Raises ``ConfigError`` /
        ``ConnectError`` with a message naming the table, column or URL at fault.
        """

    @abstractmethod
    def list_parts(self) -> list[str]:
        """Stable ids of the parts, one reader task each (``reader_channels`` of them, usually).

        Called after :meth:`check`, only for a fresh run (a resumed run keeps the parts it
        recorded) and before anything is written; raises ``ConfigError`` for what only a
        fresh run depends on, such as where it starts.
        """

    @abstractmethod
    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        """A reader for ``part_id`` run by reader task ``task`` (which names its events),
        positioned after ``resume_state`` (None: from the start)."""

    def estimate_rows(self) -> int | None:
        """Rough number of rows a bounded source will produce, for progress and ETA."""
        return None

    def tables(self) -> list[TableSchema]:
        """The tables this source reads, as known after ``check()``."""
        return []
