"""Rows per second through :class:`EventSerde`, one core: ``python -m bench.serde``.

The row is the reference row of the serde's performance goal: INT, BIGINT, VARCHAR(64),
DECIMAL(10,2), DATETIME and a nullable INT (NULL). Prints one JSON object; the schema
registry is in memory, since it is only asked once per table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from schemas.events import Op, RowEvent, SourcePosition
from schemas.registry import InMemorySchemaRegistry
from schemas.serde import EventSerde
from schemas.table import Column, TableSchema

TABLE = TableSchema(
    "shop",
    "orders",
    (
        Column("id", "int", "int(11)", False, 10, 0),
        Column("customer", "bigint", "bigint(20)", False, 19, 0),
        Column("name", "varchar", "varchar(64)", False, character_set="utf8mb4"),
        Column("amount", "decimal", "decimal(10,2)", False, 10, 2),
        Column("created", "datetime", "datetime", False, datetime_precision=0),
        Column("note_id", "int", "int(11)", True, 10, 0),
    ),
    primary_key=("id",),
)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn``, best of three runs of about ``seconds`` / 3 each."""
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        deadline = start + seconds / 3
        while time.perf_counter() < deadline:
            for _ in range(1000):
                fn()
            calls += 1000
        best = max(best, calls / (time.perf_counter() - start))
    return best


def main(seconds: float = 3.0) -> dict[str, object]:
    serde = EventSerde(InMemorySchemaRegistry())
    event = RowEvent(
        Op.INSERT,
        TABLE,
        None,
        (
            123456,
            2**40 + 7,
            "Ada Lovelace order",
            Decimal("12345.67"),
            datetime(2024, 5, 6, 7, 8, 9),
            None,
        ),
        SourcePosition("reader-0", chunk="0/4", seq=1_000_000),
        1_700_000_000_000,
    )
    data = serde.encode(event)
    assert serde.decode(data) == event
    result = {
        "bench": "serde",
        "encode_rows_per_s": round(_rate(lambda: serde.encode(event), seconds)),
        "decode_rows_per_s": round(_rate(lambda: serde.decode(data), seconds)),
        "bytes_per_row": len(data),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
