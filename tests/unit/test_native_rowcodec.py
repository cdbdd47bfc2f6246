"""The C row codec (``schemas/_rowcodec.c``) against the generated Python one it replaces.

Both must write the same bytes for every value, read back the same values of the same
types, and refuse the same bad values (so the error naming the column still appears). The
Python codec is itself checked against fastavro in ``test_avro_types``.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
import struct
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas import row_binary
from schemas.errors import SerdeError
from schemas.events import Op, RowEvent, SourcePosition
from schemas.row_compile import compile_decoder, compile_encoder
from schemas.table import TableSchema
from tests.unit.test_avro_types import EDGE_ROWS, EDGE_TABLE, col

native = row_binary.native


@pytest.mark.parametrize(
    "module",
    ["schemas._rowcodec", "sink_connectors.mysql._sqltext", "source_connectors.mysql._binlog_rows"],
)
def test_extension_is_built(module: str) -> None:
    """``pip install -e .`` builds them where there is a C compiler (as in CI); a failed
    build is optional for users but must not pass unnoticed here."""
    importlib.import_module(module)
    assert native is not None, "SLUICE_NO_NATIVE is set: these tests compare the C codec"


def both(table: TableSchema) -> tuple[Any, Any, Any]:
    specs = [row_binary._column_spec(c, table.qualified_name) for c in table.columns]
    plan = row_binary.native_plan(specs, native)
    py_encode = compile_encoder(specs, row_binary._HELPERS)
    py_decode = compile_decoder(specs, row_binary._HELPERS)
    return plan, py_encode, py_decode


def same_values(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert a == b
    assert [type(x) for x in a] == [type(x) for x in b]


@pytest.mark.parametrize("row", EDGE_ROWS, ids=[f"row{r[0]}" for r in EDGE_ROWS])
def test_edge_rows_same_bytes_and_values(row: tuple[Any, ...]) -> None:
    plan, py_encode, py_decode = both(EDGE_TABLE)
    data = plan.encode(row)
    assert data == py_encode(row)
    framed = b"\x07" + data + b"tail"  # decoding starts and stops mid-buffer
    c_values, c_end = plan.decode(framed, 1)
    py_values, py_end = py_decode(framed, 1)
    assert c_end == py_end == len(framed) - 4
    same_values(c_values, py_values)


TYPED = TableSchema(
    "d",
    "t",
    (
        col("n", "bigint(20)", False),
        col("nn", "bigint(20)"),
        col("db", "double"),
        col("f", "float"),
        col("s", "varchar(10)", character_set="utf8mb4"),
        col("b", "varbinary(10)"),
        col("dt", "date"),
        col("dtm", "datetime(6)", datetime_precision=6),
        col("tm", "time(6)", datetime_precision=6),
        col("dec", "decimal(12,2)", numeric_precision=12, numeric_scale=2),
    ),
)


def random_row(rng: random.Random) -> tuple[Any, ...]:
    big = rng.choice([0, 1, -1, 63, 64, -64, -65, 2**31, -(2**63), 2**63 - 1, rng.getrandbits(62)])
    return (
        big if rng.random() < 0.5 or big == -(2**63) else -big,
        None if rng.random() < 0.2 else rng.randrange(-(2**40), 2**40),
        rng.choice([0.0, -0.0, 1e308, -1.5, rng.random() * 1e6, float("inf")]),
        rng.choice([0.5, -3.25, 3.4e38, 1.0]),
        rng.choice(["", "é", "😀" * 3, "x" * 10, "0000"]),
        rng.choice([b"", b"\x00\xff", bytes(range(10))]),
        rng.choice([date(1, 1, 1), date(1970, 1, 1), date(1969, 12, 31), date(9999, 12, 31)]),
        rng.choice(
            [
                datetime(1, 1, 1),
                datetime(1969, 12, 31, 23, 59, 59, 999999),
                datetime(1970, 1, 1),
                datetime(2026, 11, 25, 18, 30, 1, 123456),
                datetime(9999, 12, 31, 23, 59, 59, 999999),
                "0000-00-00 00:00:00.000000",
            ]
        ),
        rng.choice(
            [timedelta(0), timedelta(hours=-838, microseconds=-1), timedelta(hours=838, seconds=59)]
        ),
        rng.choice([Decimal("0.00"), Decimal("-12.5"), Decimal("9999999999.99"), None]),
    )


def test_random_rows_same_bytes_and_values() -> None:
    plan, py_encode, py_decode = both(TYPED)
    rng = random.Random(20261125)
    for _ in range(3000):
        row = random_row(rng)
        data = plan.encode(row)
        assert data == py_encode(row), row
        c_values, c_end = plan.decode(data, 0)
        py_values, py_end = py_decode(data, 0)
        assert c_end == py_end == len(data)
        same_values(c_values, py_values)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (0, 2**63),  # out of Avro's long
        (0, None),  # NULL in a NOT NULL column
        (0, 1.5),
        (1, "12"),
        (2, "1.0"),
        (3, 1e39),  # too large for a FLOAT
        (4, "\ud800"),  # a lone surrogate has no UTF-8
        (4, b"bytes"),
        (5, "text"),
        (7, datetime(2026, 1, 1, tzinfo=UTC)),
        (8, 5),
        (9, 0.1),
    ],
)
def test_bad_values_fail_like_python(column: int, value: Any) -> None:
    plan, py_encode, _ = both(TYPED)
    row = list(random_row(random.Random(1)))
    row[column] = value
    with pytest.raises(Exception) as py_error:
        py_encode(tuple(row))
    with pytest.raises(type(py_error.value)):
        plan.encode(tuple(row))


def test_values_of_other_types_encode_like_python() -> None:
    """A bool or an int where a float is expected goes through Python: same bytes."""
    plan, py_encode, _ = both(TYPED)
    row = list(random_row(random.Random(2)))
    row[0], row[2], row[3] = True, 7, 2
    assert plan.encode(tuple(row)) == py_encode(tuple(row))


def test_truncated_data_raises_instead_of_reading_past_the_end() -> None:
    plan, _, _ = both(TYPED)
    data = plan.encode(random_row(random.Random(3)))
    for cut in range(len(data)):
        # struct.error comes from the Python FLOAT decoder; serde.decode names all three
        with pytest.raises((IndexError, ValueError, struct.error)):
            plan.decode(data[:cut], 0)
    with pytest.raises(IndexError):
        plan.decode(data, len(data) + 1)


def test_codec_uses_the_c_plan_unless_disabled() -> None:
    codec = row_binary.RowEnvelopeCodec(TYPED)
    assert row_binary.native is not None
    assert type(codec._encode_row.__self__) is native.RowPlan  # type: ignore[attr-defined]


def python_codec(table: TableSchema) -> row_binary.RowEnvelopeCodec:
    codec = row_binary.RowEnvelopeCodec(table)
    specs = [row_binary._column_spec(c, table.qualified_name) for c in table.columns]
    codec._native = None
    codec._encode_row = compile_encoder(specs, row_binary._HELPERS)
    codec._decode_row = compile_decoder(specs, row_binary._HELPERS)
    return codec


SOURCES = [
    SourcePosition("reader-0", "0/3", None, None, None, None, None, 7),
    SourcePosition("reader-1", "1/3", "2024-01-01 00:00:00|17", None, None, None, None, 2**40),
    SourcePosition("binlog-0", None, None, "mysql-bin.000003", 4567, "0-1-99", 12, 123456),
    SourcePosition("binlog-é", None, None, "f", 2**62, None, 0, 0),
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: f"{s.task}-{s.seq}")
@pytest.mark.parametrize("op", list(Op))
def test_whole_envelope_same_bytes(op: Op, source: SourcePosition) -> None:
    rng = random.Random(hash((op, source.seq)))
    fast, slow = row_binary.RowEnvelopeCodec(TYPED), python_codec(TYPED)
    for _ in range(50):
        before = None if op in (Op.SNAPSHOT, Op.INSERT) else random_row(rng)
        after = None if op is Op.DELETE else random_row(rng)
        event = RowEvent(op, TYPED, before, after, source, rng.randrange(0, 2**45))
        data = fast._native.encode_event(event, b"\x00head")  # C, not a fallback
        assert data == slow.encode(event, b"\x00head") == fast.encode(event, b"\x00head")
        assert fast.decode(data, 5) == slow.decode(data, 5) == event


def test_envelope_with_a_bad_value_names_the_column() -> None:
    row = list(random_row(random.Random(4)))
    row[1] = "not a number"
    event = RowEvent(Op.INSERT, TYPED, None, tuple(row), SOURCES[2], 1)
    with pytest.raises(SerdeError, match=r"column d\.t\.nn "):
        row_binary.RowEnvelopeCodec(TYPED).encode(event)


def test_envelope_fields_of_other_types_take_the_python_path() -> None:
    """A seq that is not an int is Python's to refuse; the C path says NotImplemented."""
    event = RowEvent(Op.INSERT, TYPED, None, random_row(random.Random(5)), SOURCES[0], 1)
    plan = row_binary.RowEnvelopeCodec(TYPED)._native
    assert plan.encode_event(event, b"") == python_codec(TYPED).encode(event)
    odd = dataclasses.replace(event, source=dataclasses.replace(SOURCES[0], seq=None))
    assert plan.encode_event(odd, b"") is NotImplemented


def test_truncated_or_foreign_envelope_raises() -> None:
    fast = row_binary.RowEnvelopeCodec(TYPED)
    for source in SOURCES:
        row = random_row(random.Random(6))
        data = fast.encode(RowEvent(Op.UPDATE, TYPED, row, row, source, 99))
        assert type(fast.decode(data, 0)) is RowEvent
        for cut in range(len(data)):
            with pytest.raises((IndexError, ValueError, struct.error)):
                fast.decode(data[:cut], 0)
    other = dataclasses.replace(TYPED, version=TYPED.version + 1)
    with pytest.raises(ValueError, match="schema version"):
        row_binary.RowEnvelopeCodec(other).decode(data, 0)
