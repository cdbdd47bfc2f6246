"""The smallest complete Sluice source and sink, start to finish (README: "Write a connector").

``counterreader`` counts from 0 to ``rows`` - 1 over the job's reader channels and can resume
from any position it reported, so jobs with it may be exactly once. ``jsonlwriter`` appends
each row to ``<path>/<writer task>.jsonl``; a file append cannot be rolled back, so it is
at-least-once (``"delivery": "at-least-once"``) and implements ``write`` and ``flush`` only.
Ship it as a package whose pyproject.toml declares::

    [project.entry-points."sluice.connectors"]
    counterreader = "counter_connector:COUNTERREADER"
    jsonlwriter = "counter_connector:JSONLWRITER"
"""

from __future__ import annotations

import json
import os

from pydantic import Field

from coordinator.job.base import PluginConfig
from coordinator.plugins import Plugin
from schemas import types
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema
from sink_connectors.base import Rejected, Sink, SinkWriter
from source_connectors.base import Source, SourcePartReader

# Columns carry neutral types (schemas/types.py); every sink knows how to write those.
TABLE = TableSchema(
    database="counter",
    table="numbers",
    columns=(
        Column("n", "n", "n", nullable=False, logical=types.int_type(64), dialect="counter"),
        Column("square", "square", "square", logical=types.decimal_type(40, 0), dialect="counter"),
    ),
    primary_key=("n",),
)


class CounterReaderConfig(PluginConfig):
    rows: int = Field(default=10, ge=0, description="how many numbers, over all channels")


class CounterPart(SourcePartReader):
    """Channel ``c`` of ``k`` reads c, c + k, c + 2k, ...; its position is the next one."""

    def __init__(self, rows: int, channel: int, channels: int, task: str, start: int) -> None:
        self.rows, self.channel, self.channels, self.task = rows, channel, channels, task
        self.next = start

    def next_batch(self) -> list[RowEvent] | None:
        if self.next >= self.rows:
            return None  # a bounded part ends
        batch = range(self.next, min(self.rows, self.next + 100 * self.channels), self.channels)
        self.next = batch[-1] + self.channels
        return [
            RowEvent(Op.SNAPSHOT, TABLE, None, (n, n * n), SourcePosition(self.task, seq=n), 0)
            for n in batch
        ]

    def snapshot(self) -> dict[str, str]:
        return {"next": str(self.next)}  # the runner commits it with the batch's rows


class CounterSource(Source):
    supports_resume = True  # build_part resumes from any snapshot(): exactly once possible
    bounded = True

    def check(self) -> None:
        return None  # nothing to connect to; a real source checks its server and tables here

    def tables(self) -> list[TableSchema]:
        return [TABLE]

    def list_parts(self) -> list[str]:
        return [str(c) for c in range(self.context.reader_channels)]

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        channel = int(part_id)
        start = int(resume_state["next"]) if resume_state else channel
        return CounterPart(self.config.rows, channel, self.context.reader_channels, task, start)

    def estimate_rows(self) -> int | None:
        return int(self.config.rows)


class JsonlWriterConfig(PluginConfig):
    path: str = Field(description="directory of the .jsonl files")


class JsonlWriter(SinkWriter):
    def __init__(self, path: str, task: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.file = open(os.path.join(path, f"{task}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        for ev in events:
            row = ev.after if ev.after is not None else ev.before
            assert row is not None
            record = dict(zip(ev.table.column_names, row, strict=True))
            self.file.write(json.dumps({"op": ev.op.value, **record}, default=str) + "\n")
        return []  # no row is refused

    def flush(self) -> list[Rejected]:
        # The runner commits the offsets after this returns: the rows must be on disk.
        self.file.flush()
        os.fsync(self.file.fileno())
        return []

    def close(self) -> None:
        self.file.close()


class JsonlSink(Sink):
    supports_precommit = False  # appends cannot be undone: at-least-once only

    def check(self) -> None:
        os.makedirs(self.config.path, exist_ok=True)

    def build_writer(self, task_id: str) -> SinkWriter:
        return JsonlWriter(self.config.path, task_id)


COUNTERREADER = Plugin("counterreader", "reader", config=CounterReaderConfig, factory=CounterSource)
JSONLWRITER = Plugin("jsonlwriter", "writer", config=JsonlWriterConfig, factory=JsonlSink)
