"""Records of the control plane, and the fixed Avro schemas (``schemas/avsc/*.avsc``).

The coordinator, reader and writer tasks exchange these on the control and status topics;
:class:`schemas.serde.EventSerde` encodes them (and :class:`~schemas.events.Barrier`, which
travels on data topics) with the schemas loaded here from package data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from schemas.events import Barrier, SchemaChange, SourcePosition
from schemas.table import Column, TableSchema


@cache
def _avsc_text(name: str) -> str:
    return resources.files("schemas").joinpath("avsc", f"{name}.avsc").read_text("utf-8")


def load_avsc(name: str) -> dict[str, Any]:
    """A fresh copy of ``schemas/avsc/<name>.avsc`` (callers may embed or alter it)."""
    schema: dict[str, Any] = json.loads(_avsc_text(name))
    return schema


def control_schema(name: str) -> dict[str, Any]:
    """``schemas/avsc/<name>.avsc`` with references to ``sluice.SourcePosition`` replaced by
    its definition (one file defines it; a schema must be complete to be registered)."""
    schema = load_avsc(name)
    for f in schema["fields"]:
        if f["type"] == "sluice.SourcePosition":
            f["type"] = load_avsc("SourcePosition")
    return schema


@dataclass(frozen=True)
class CheckpointTrigger:
    """The coordinator asks every reader task of ``job`` to write Barrier ``checkpoint``."""

    job: str
    checkpoint: int
    ts_ms: int


@dataclass(frozen=True)
class WriterAck:
    """A writer task pre-committed all rows before ``checkpoint`` (step 2 of its 2PC).

    Produced in the same Kafka transaction as the consumer offsets it covers; ``offsets``
    maps :meth:`offset_key` (``topic:partition``) to the next offset to consume.
    """

    job: str
    checkpoint: int
    task: str
    rows: int
    offsets: dict[str, int] = field(default_factory=dict)
    ts_ms: int = 0
    txn: str = ""
    """The sink transaction (e.g. MySQL XA xid) pre-committed for this checkpoint: after a
    crash, a prepared sink transaction is committed iff a committed ack names it."""
    final_partitions: list[str] = field(default_factory=list)
    """Data topic partitions on which every reader's final barrier has arrived."""
    errors: int = 0
    """Rows the sink rejected in this checkpoint; they went to the dirty-data topic in the
    same Kafka transaction."""

    @staticmethod
    def offset_key(topic: str, partition: int) -> str:
        return f"{topic}:{partition}"

    @staticmethod
    def parse_offset_key(key: str) -> tuple[str, int]:
        """Inverse of :meth:`offset_key` (Kafka topic names cannot contain ``:``)."""
        topic, _, partition = key.rpartition(":")
        return topic, int(partition)


class TaskState(StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FAILED = "FAILED"
    FINISHED = "FINISHED"
    UNASSIGNED = "UNASSIGNED"


@dataclass(frozen=True)
class TaskStatus:
    """State of one task, as the worker running it last reported (status topic)."""

    job: str
    task: str
    state: TaskState
    worker: str = ""
    """Worker id running the task, ``""`` when unassigned."""
    checkpoint: int = 0
    """Last checkpoint the task completed, 0 for none."""
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    ts_ms: int = 0


ControlRecord = Barrier | CheckpointTrigger | WriterAck | TaskStatus | SchemaChange

CONTROL_SCHEMAS: dict[type, str] = {
    Barrier: "Barrier",
    CheckpointTrigger: "CheckpointTrigger",
    WriterAck: "WriterAck",
    TaskStatus: "TaskStatus",
    SchemaChange: "SchemaChange",
}
"""Control record class -> its .avsc name (the Avro record is ``sluice.control.<name>``)."""


def control_to_avro(record: ControlRecord) -> dict[str, Any]:
    """The Avro record of a control dataclass (field names match the .avsc)."""
    if isinstance(record, SchemaChange):
        return _schema_change_to_avro(record)
    out = {f.name: getattr(record, f.name) for f in fields(record)}
    if isinstance(record, TaskStatus):
        out["state"] = record.state.value
    return out


def control_from_avro(cls: type, record: dict[str, Any]) -> ControlRecord:
    """The dataclass ``cls`` from its decoded Avro record; fields the class lacks are dropped."""
    if cls is SchemaChange:
        return _schema_change_from_avro(record)
    kwargs = {f.name: record[f.name] for f in fields(cls) if f.name in record}
    if cls is TaskStatus:
        kwargs["state"] = TaskState(kwargs["state"])
    result: ControlRecord = cls(**kwargs)
    return result


def _table_to_avro(table: TableSchema | None) -> dict[str, Any] | None:
    if table is None:
        return None
    return {
        "version": table.version,
        "primary_key": list(table.primary_key),
        "columns": [_column_to_avro(c) for c in table.columns],
    }


def _column_to_avro(col: Column) -> dict[str, Any]:
    data = col.to_json()
    data["logical"] = json.dumps(data["logical"])  # nested, open-ended: as JSON text
    return data


def _table_from_avro(db: str, name: str, data: dict[str, Any] | None) -> TableSchema | None:
    if data is None:
        return None
    return TableSchema(
        database=db,
        table=name,
        columns=tuple(Column.from_json(c) for c in data["columns"]),
        primary_key=tuple(data["primary_key"]),
        version=data["version"],
    )


def _schema_change_to_avro(change: SchemaChange) -> dict[str, Any]:
    return {
        "database": change.database,
        "table": change.table,
        "ddl": change.ddl,
        "new_schema": _table_to_avro(change.new_schema),
        "source": asdict(change.source),
        "ts_ms": change.ts_ms,
        "old_schema": _table_to_avro(change.old_schema),
    }


def _schema_change_from_avro(record: dict[str, Any]) -> SchemaChange:
    db, name = record["database"], record["table"]
    known = {f.name for f in fields(SourcePosition)}
    source = SourcePosition(**{k: v for k, v in record["source"].items() if k in known})
    return SchemaChange(
        db,
        name,
        record["ddl"],
        _table_from_avro(db, name, record["new_schema"]),
        source,
        record["ts_ms"],
        _table_from_avro(db, name, record.get("old_schema")),  # absent: an older writer
    )
