"""``streamreader`` (FlinkX's test source): generated rows, ``sliceRecordCount`` per channel.

Values are a pure function of (seed, channel, row number), so a resumed part regenerates
exactly what it would have, and a test can recompute every expected row. Resumable and
bounded: exactly-once capable.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from decimal import Decimal
from typing import Any

from schemas import types
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema
from schemas.types import LogicalType
from source_connectors.base import Source, SourceContext, SourcePartReader

# streamreader column type → its neutral type (the values stream_value makes fit it).
STREAM_TYPES: dict[str, LogicalType] = {
    "id": types.int_type(64),
    "int": types.int_type(32),
    "bigint": types.int_type(64),
    "string": LogicalType(types.STRING, length=255),
    "double": types.simple(types.FLOAT64),
    "decimal": types.decimal_type(38, 10),
    "date": types.simple(types.DATE),
    "datetime": LogicalType(types.TIMESTAMP, fsp=6),
    "boolean": types.simple(types.BOOLEAN),
    "bytes": LogicalType(types.BYTES, length=65535),
}
BATCH = 1000


def stream_value(kind: str, rng: random.Random, row: int) -> object:
    if kind == "id":
        return row
    if kind == "int":
        return rng.randint(-(2**31), 2**31 - 1)
    if kind == "bigint":
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == "string":
        return "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ✓😀")
            for _ in range(rng.randint(0, 24))
        )
    if kind == "double":
        return rng.uniform(-1e9, 1e9)
    if kind == "decimal":
        return Decimal(rng.randint(-(10**20), 10**20)).scaleb(-10)
    if kind == "date":
        return dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 10_000))
    if kind == "datetime":
        return dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10**15))
    if kind == "boolean":
        return rng.randint(0, 1) == 1
    if kind == "bytes":
        return rng.randbytes(rng.randint(0, 32))
    raise ValueError(kind)


class StreamSource(Source):
    supports_resume = True
    bounded = True

    def __init__(self, config: Any, context: SourceContext) -> None:
        super().__init__(config, context)
        self.schema = TableSchema(
            database="stream",
            table="stream",
            columns=tuple(
                Column(
                    name=c.name,
                    data_type=c.type,
                    column_type=c.type,
                    logical=STREAM_TYPES[c.type],
                    dialect="stream",
                )
                for c in config.column
            ),
            primary_key=tuple(c.name for c in config.column if c.type == "id")[:1],
        )

    def check(self) -> None:
        return None

    def tables(self) -> list[TableSchema]:
        return [self.schema]

    def _counts(self) -> list[int]:
        n = self.context.reader_channels
        counts = self.config.sliceRecordCount
        if isinstance(counts, int):
            return [counts] * n
        return [counts[i] if i < len(counts) else counts[-1] for i in range(n)]

    def list_parts(self) -> list[str]:
        return [json.dumps({"i": i, "rows": c}) for i, c in enumerate(self._counts())]

    def estimate_rows(self) -> int | None:
        return sum(self._counts())

    def build_part(
        self, part_id: str, task: str, resume_state: dict[str, str] | None
    ) -> SourcePartReader:
        part = json.loads(part_id)
        return StreamPartReader(
            self, task, part["i"], part["rows"], int((resume_state or {}).get("next", 0))
        )


class StreamPartReader(SourcePartReader):
    def __init__(
        self, source: StreamSource, task: str, channel: int, rows: int, start: int
    ) -> None:
        self.source = source
        self.task = task
        self.channel = channel
        self.rows = rows
        self.next = start
        cols = source.config.column
        self.kinds = [(c.type, getattr(c, "value", None)) for c in cols]

    def row(self, n: int) -> tuple[object, ...]:
        """Row ``n`` of this channel; ``id`` columns number rows across channels uniquely."""
        rng = random.Random(f"{self.source.config.seed}/{self.channel}/{n}")
        global_id = n * self.source.context.reader_channels + self.channel
        return tuple(
            value if value is not None else stream_value(kind, rng, global_id)
            for kind, value in self.kinds
        )

    def next_batch(self) -> list[RowEvent] | None:
        if self.next >= self.rows:
            return None
        end = min(self.rows, self.next + BATCH)
        now = int(time.time() * 1000)
        out = [
            RowEvent(
                Op.SNAPSHOT,
                self.source.schema,
                None,
                self.row(n),
                SourcePosition(task=self.task, chunk=str(self.channel), seq=n + 1),
                now,
            )
            for n in range(self.next, end)
        ]
        self.next = end
        return out

    def snapshot(self) -> dict[str, str]:
        return {"next": str(self.next)}
