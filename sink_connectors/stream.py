"""``streamwriter`` (FlinkX's debug sink): rows to standard output as JSON lines.

Rows are buffered per checkpoint and printed when it is decided, so nothing is printed twice
by a healthy run; but stdout cannot be rolled back, so a crash may print a checkpoint's rows
again after restart: at-least-once. Jobs using it set ``"setting.delivery": "at-least-once"``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from schemas.events import RowEvent
from sink_connectors.base import Rejected, Sink, SinkWriter


def _jsonable(v: object) -> object:
    if v is None or isinstance(v, int | float | str | bool):
        return v
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


class StreamSink(Sink):
    supports_precommit = False

    def check(self) -> None:
        return None

    def build_writer(self, task_id: str) -> SinkWriter:
        fmt = self.config.format
        if fmt is None and getattr(self.context.reader_config, "pavingData", False):
            fmt = "paving"  # FlinkX: the reader's pavingData shapes what the writer prints
        return StreamWriter(self.config, task_id, fmt)


class StreamWriter(SinkWriter):
    """Prints rows as JSON lines: no transactions, only ``write`` and ``flush``."""

    def __init__(self, config: Any, task: str, fmt: str | None = None) -> None:
        self.print = config.print
        self.task = task
        self.buffer: list[str] = []
        self.encoder = None
        if fmt is not None:
            from sink_connectors.kafka.formats import RecordEncoder

            self.encoder = RecordEncoder(fmt, tombstones=False)

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        if not self.print:
            return []
        for ev in events:
            if self.encoder is not None:
                for r in self.encoder.records("", ev):
                    assert r.value is not None
                    self.buffer.append(r.value.decode())
                continue
            row = ev.after if ev.after is not None else ev.before
            assert row is not None
            record: dict[str, object] = {"op": ev.op.value, "table": ev.table.qualified_name}
            record.update(zip(ev.table.column_names, map(_jsonable, row), strict=True))
            self.buffer.append(json.dumps(record, ensure_ascii=False))
        return []

    def flush(self) -> list[Rejected]:
        # stdout cannot take back what it printed: this sink is at-least-once, so a row is
        # printed before the offsets past it commit (a crash in between prints it again).
        if self.buffer:
            sys.stdout.write("\n".join(self.buffer) + "\n")
            sys.stdout.flush()
        self.buffer = []
        return []
