"""The C row-image decoder on hand-made and broken event bodies: a body cut anywhere, or
garbage, raises a Python exception (ValueError for a short body) and never reads past it.
The values themselves are checked against mysql-replication on a real server
(``tests/integration/test_binlog_native.py``)."""

from __future__ import annotations

import contextlib
import decimal
import random
from datetime import datetime

import pytest
from pymysqlreplication.column import Column as BinlogColumn
from pymysqlreplication.constants import FIELD_TYPE

from schemas.table import Column, TableSchema
from source_connectors.mysql import binlog_native as bn
from source_connectors.mysql import binlog_values as values

native = bn._native
pytestmark = pytest.mark.skipif(native is None, reason="_binlog_rows is not built")

SPEC = (
    (bn.K_INT64, 0, 0, None, bn.F_NONE, 0, None),
    (bn.K_STRING, 1, bn.C_UTF8, None, bn.F_NONE, 0, None),
    (bn.K_DECIMAL, 5, 0, None, bn.F_NONE, 0, None),
    (bn.K_DATETIME2, 0, 0, None, bn.F_NONE, 0, None),
    (bn.K_STRING, 1, bn.C_BYTES, None, bn.F_PAD, 4, None),
    (bn.K_ENUM, 1, 0, ("", "red", "blue"), bn.F_NONE, 0, None),
)


def datetime2(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bytes:
    ym = year * 13 + month
    raw = 1 << 39 | ym << 22 | day << 17 | hour << 12 | minute << 6 | second
    return raw.to_bytes(5, "big")


ROW = (
    b"\x00"  # no NULLs
    + (-5).to_bytes(8, "little", signed=True)
    + b"\x04h\xc3\xa9!"  # 'hé!'
    + b"\x80\x30\x39"  # DECIMAL(5,0) 12345
    + datetime2(2024, 2, 29, 12, 34, 56)
    + b"\x02\xab\xcd"  # BINARY(4) with its trailing zeros stripped
    + b"\x02"
)
VALUE = (
    -5,
    "hé!",
    decimal.Decimal("12345"),
    datetime(2024, 2, 29, 12, 34, 56),
    b"\xab\xcd\0\0",
    "blue",
)


def test_decodes_a_hand_made_body():
    plan = native.plan(SPEC)
    body = b"junk" + ROW + ROW + b"CRC!"
    assert native.decode(plan, body, 4, 4 + 2 * len(ROW), 1, "strict") == [VALUE, VALUE]
    assert native.decode(plan, ROW + ROW, 0, 2 * len(ROW), 2, "strict") == [(VALUE, VALUE)]
    nulls = b"\x3f"  # every column NULL: nothing follows the bitmap
    assert native.decode(plan, nulls, 0, 1, 1, "strict") == [(None,) * 6]


def test_a_body_cut_anywhere_raises_value_error():
    plan = native.plan(SPEC)
    body = ROW + ROW
    for end in range(1, len(body)):
        if end == len(ROW):
            continue
        with pytest.raises(ValueError, match="truncated"):
            native.decode(plan, body, 0, end, 1, "strict")
    for start, end in ((-1, 3), (5, 2), (0, len(body) + 1)):
        with pytest.raises(ValueError, match="bounds"):
            native.decode(plan, body, start, end, 1, "strict")


EVERY_KIND = (
    *((kind, 0, 0, None, bn.F_UNSIGNED, 64, None) for kind in range(bn.K_INT8, bn.K_UINT64 + 1)),
    (bn.K_FLOAT, 0, 0, None, bn.F_NONE, 0, None),
    (bn.K_DOUBLE, 0, 0, None, bn.F_NONE, 0, None),
    (bn.K_YEAR, 0, 0, None, bn.F_YEAR, 0, None),
    (bn.K_DECIMAL, 65, 30, None, bn.F_NONE, 0, None),
    (bn.K_DATETIME2, 5, 0, None, bn.F_NONE, 0, None),
    (bn.K_DATE, 0, 0, None, bn.F_NONE, 0, None),
    (bn.K_TIME2, 3, 0, None, bn.F_NONE, 0, None),
    (bn.K_TIMESTAMP2, 1, 0, None, bn.F_ZERO_TS, 0, "0000-00-00 00:00:00.0"),
    (bn.K_STRING, 2, bn.C_CODEC, "cp1252", bn.F_BYTES, 0, None),
    (bn.K_ENUM, 2, 0, None, bn.F_NONE, 0, None),
)


@pytest.mark.parametrize("spec", [SPEC, EVERY_KIND], ids=["some", "every-kind"])
def test_garbage_raises_or_decodes_but_never_crashes(spec):
    plan = native.plan(spec)
    rng = random.Random(9)
    expected = (ValueError, IndexError, UnicodeDecodeError, decimal.InvalidOperation)
    for _ in range(3000):
        body = rng.randbytes(rng.randrange(1, 120))
        with contextlib.suppress(*expected):
            native.decode(plan, body, 0, len(body), rng.choice((1, 2)), "strict")


def test_a_bad_plan_is_refused():
    with pytest.raises(ValueError, match="column 0"):
        native.plan(((bn.K_DECIMAL, 70, 2, None, bn.F_NONE, 0, None),))
    with pytest.raises(ValueError, match="column 1"):
        native.plan((SPEC[0], (99, 0, 0, None, bn.F_NONE, 0, None)))


def binlog_column(type_: int, **attrs: object) -> BinlogColumn:
    base = {"name": f"c{type_}", "unsigned": False, "character_set_name": "utf8mb4"}
    return BinlogColumn(type=type_, **{**base, **attrs})


def schema(*columns: Column) -> TableSchema:
    return TableSchema("db", "t", columns, (), 1)


def test_plans_only_what_it_decodes_exactly():
    ints = [binlog_column(FIELD_TYPE.LONG, unsigned=True), binlog_column(FIELD_TYPE.YEAR)]
    spec = bn.plan_spec(
        ints, schema(Column("a", "int", "int(10) unsigned"), Column("y", "year", "year(4)"))
    )
    assert spec == (
        (bn.K_UINT32, 0, 0, None, bn.F_UNSIGNED, 32, None),
        (bn.K_YEAR, 0, 0, None, bn.F_YEAR, 0, None),
    )
    blob = binlog_column(FIELD_TYPE.BLOB, length_size=2, character_set_name="binary")
    assert bn.plan_spec([blob], schema(Column("b", "blob", "blob")))[0][:5] == (
        bn.K_STRING,
        2,
        bn.C_BYTES,
        None,
        bn.F_BYTES,
    )
    latin = binlog_column(FIELD_TYPE.VARCHAR, max_length=300, character_set_name="latin1")
    assert bn.plan_spec([latin], schema(Column("v", "varchar", "varchar(300)")))[0][:4] == (
        bn.K_STRING,
        2,
        bn.C_CODEC,
        "cp1252",
    )
    # the Python path keeps BIT, SET, JSON, old temporal types and mismatched pairs
    for column, col in (
        (binlog_column(FIELD_TYPE.BIT, bits=1, bytes=1), Column("b", "bit", "bit(1)")),
        (binlog_column(FIELD_TYPE.SET, size=1, set_values=["a"]), Column("s", "set", "set('a')")),
        (binlog_column(FIELD_TYPE.JSON, length_size=4), Column("j", "json", "json")),
        (binlog_column(FIELD_TYPE.DATETIME), Column("d", "datetime", "datetime")),
        (
            binlog_column(FIELD_TYPE.VAR_STRING, max_length=10),
            Column("v", "varchar", "varchar(10)"),
        ),
        (binlog_column(FIELD_TYPE.DATETIME2, fsp=0), Column("t", "timestamp", "timestamp")),
        (binlog_column(FIELD_TYPE.LONG), Column("y", "year", "year(4)")),
    ):
        assert bn.plan_spec([column], schema(col)) is None, (column.type, col.data_type)
    assert bn.plan_spec([ints[0]], schema()) is None  # widths differ


@pytest.mark.parametrize(
    "data_type, column_type",
    [
        *((t, t) for t in ("tinyint", "smallint", "mediumint", "int", "bigint")),
        *((t, f"{t} unsigned") for t in ("tinyint", "smallint", "mediumint", "int", "bigint")),
        *((t, t) for t in ("decimal", "float", "double", "date", "datetime", "time", "year")),
        *((t, t) for t in ("char", "varchar", "text", "tinytext", "mediumtext", "longtext")),
        *((t, t) for t in ("binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob")),
        ("timestamp", "timestamp(3)"),
        ("enum", "enum('a')"),
        ("set", "set('a')"),
        ("bit", "bit(3)"),
        ("json", "json"),
    ],
)
def test_repairs_what_the_row_converter_repairs(data_type, column_type):
    """A column gets a repair exactly when binlog_values.column_converter gives it one."""
    col = Column("c", data_type, column_type, datetime_precision=3)
    kinds = {"year": bn.K_YEAR, "timestamp": bn.K_TIMESTAMP2}
    kind = kinds.get(data_type, bn.K_STRING if "bin" in data_type or "blob" in data_type else 1)
    binlog_type = FIELD_TYPE.LONG if kind == 1 else FIELD_TYPE.STRING
    try:
        fix = bn._repair(kind, binlog_type, col)[0]
    except bn._Unsupported:
        fix = None
    converter = values.column_converter(col)
    if data_type in ("set", "bit"):
        assert fix is None  # left to the Python path
    else:
        assert (fix != bn.F_NONE) == (converter is not None), (fix, converter)
