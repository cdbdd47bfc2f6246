"""The records that travel on a job's data topic: row changes and checkpoint barriers.

Inside Sluice a row is a tuple of DB-API values (what PyMySQL returns and accepts) in the
table's column order; it becomes Avro only at the serde boundary (``schemas.serde``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.table import TableSchema


class Op(StrEnum):
    SNAPSHOT = "SNAPSHOT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


@dataclass(frozen=True)
class SourcePosition:
    """Where in the source an event comes from; enough to resume right after it."""

    task: str
    """Reader task id, e.g. ``reader-0``."""
    chunk: str | None = None
    """Snapshot split id (``0/3`` for channel 0 of 3), None for binlog events."""
    restore_value: str | None = None
    """Last value of the restore column (FlinkX ``restoreColumnName``), as text."""
    file: str | None = None
    pos: int | None = None
    gtid: str | None = None
    row: int | None = None
    """Index of the row inside its binlog rows event."""
    seq: int = 0
    """Per-task sequence number, strictly increasing: lets checks name missing/extra events."""


@dataclass(frozen=True)
class RowEvent:
    op: Op
    table: TableSchema
    before: tuple[object, ...] | None
    after: tuple[object, ...] | None
    source: SourcePosition
    ts_ms: int
    """Event time: source commit time for CDC, read time for snapshots."""

    @property
    def event_id(self) -> str:
        """Stable across re-reads of the same source position: task + sequence number."""
        return f"{self.source.task}:{self.source.seq}"


@dataclass(frozen=True)
class Barrier:
    """Checkpoint marker a reader task writes to every partition of the data topic.

    ``final`` marks the end of a bounded reader's input: the task will write nothing more, and
    a writer treats it as having passed every later checkpoint.
    """

    checkpoint: int
    task: str
    final: bool = False
    position: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemaChange:
    """DDL on a captured table, at its place in the source's stream (binlog CDC).

    A reader task writes it to *every* partition of the data topic, like a barrier: the
    table's rows are spread over all partitions by key, so each writer must meet the change
    on each of its partitions in order with the rows before and after it.
    """

    database: str
    table: str
    ddl: str
    """The statement as the source logged it."""
    new_schema: TableSchema | None
    """The table after the change (its ``version`` one higher); None when it was dropped."""
    source: SourcePosition
    ts_ms: int
    old_schema: TableSchema | None = None
    """The table right before the change, as the reader decoded its rows; None when not
    known (no rows or schema of it met before) or it did not exist. Tells which columns the
    DDL changed (``ALTER TABLE … MODIFY``), so a sink follows those and keeps the others."""

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.table}"
