"""The binlog row decoder (:mod:`source_connectors.mysql.binlog_rows`) without a server: the C
decoder and the Python reference give the same values, types and errors on hand-made bodies,
on bodies cut anywhere and on random bytes; each value is the one PyMySQL would return for the
column (zero dates as text, exact negative TIME fractions, SET and BIT as the text protocol
gives them); every column type MariaDB writes is planned and the rest refused by name. Real
binlogs of every type: ``tests/integration/test_binlog_native.py``."""

from __future__ import annotations

import decimal
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymysqlreplication.column import Column as BinlogColumn
from pymysqlreplication.constants import FIELD_TYPE

from schemas.table import Column, TableSchema
from source_connectors.mysql import binlog_rows as br

native = br._native
Decode = Callable[[tuple[br.Spec, ...], bytes, int, int, int], list[Any]]


def decode_c(spec: tuple[br.Spec, ...], data: bytes, start: int, end: int, images: int) -> Any:
    return native.decode(native.plan(spec), data, start, end, images, "strict")


DECODERS = [
    pytest.param(br.decode_python, id="python"),
    pytest.param(
        decode_c,
        id="c",
        marks=pytest.mark.skipif(native is None, reason="_binlog_rows is not built"),
    ),
]
needs_c = pytest.mark.skipif(native is None, reason="_binlog_rows is not built")


def entry(kind: int, a: int = 0, b: int = 0, obj: Any = None, fix: int = 0, arg: int = 0,
          fix_obj: Any = None) -> br.Spec:  # fmt: skip
    return (kind, a, b, obj, fix, arg, fix_obj)


SPEC = (
    entry(br.K_INT64),
    entry(br.K_STRING, 1, br.C_UTF8),
    entry(br.K_DECIMAL, 5, 0),
    entry(br.K_DATETIME2),
    entry(br.K_STRING, 1, br.C_BYTES, fix=br.F_PAD, arg=4),
    entry(br.K_ENUM, 1, obj=("", "red", "blue")),
    entry(br.K_SET, 1, obj=("a", "b", "c")),
    entry(br.K_BIT, 2),
)


def datetime2(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: bytes = b"") -> bytes:
    raw = (y * 13 + mo) << 22 | d << 17 | h << 12 | mi << 6 | s
    return (raw + 0x8000000000).to_bytes(5, "big") + frac


ROW = (
    b"\x00"  # no NULLs
    + (-5).to_bytes(8, "little", signed=True)
    + b"\x04h\xc3\xa9!"  # 'hé!'
    + b"\x80\x30\x39"  # DECIMAL(5,0) 12345
    + datetime2(2024, 2, 29, 12, 34, 56)
    + b"\x02\xab\xcd"  # BINARY(4) with its trailing zeros stripped
    + b"\x02"
    + b"\x05"  # SET: a and c
    + b"\x01\x02"  # BIT(10)
)
VALUE = (
    -5,
    "hé!",
    decimal.Decimal("12345"),
    datetime(2024, 2, 29, 12, 34, 56),
    b"\xab\xcd\0\0",
    "blue",
    "a,c",
    b"\x01\x02",
)


@pytest.mark.parametrize("decode", DECODERS)
def test_decodes_a_hand_made_body(decode: Decode):
    body = b"junk" + ROW + ROW + b"CRC!"
    assert decode(SPEC, body, 4, 4 + 2 * len(ROW), 1) == [VALUE, VALUE]
    assert decode(SPEC, ROW + ROW, 0, 2 * len(ROW), 2) == [(VALUE, VALUE)]
    nulls = b"\xff"  # every column NULL: nothing follows the bitmap
    assert decode(SPEC, nulls, 0, 1, 1) == [(None,) * len(SPEC)]
    empty_set = ROW[:-3] + b"\x00" + ROW[-2:]
    assert decode(SPEC, empty_set, 0, len(ROW), 1)[0][6] == ""  # not NULL: the empty SET


@pytest.mark.parametrize("decode", DECODERS)
def test_a_body_cut_anywhere_raises_value_error(decode: Decode):
    body = ROW + ROW
    for end in range(1, len(body)):
        if end == len(ROW):
            continue
        with pytest.raises(ValueError, match="truncated"):
            decode(SPEC, body, 0, end, 1)
    for start, end in ((-1, 3), (5, 2), (0, len(body) + 1)):
        with pytest.raises(ValueError, match="bounds"):
            decode(SPEC, body, start, end, 1)


EVERY_KIND = (
    *(entry(kind, fix=br.F_UNSIGNED, arg=64) for kind in range(br.K_INT8, br.K_UINT64 + 1)),
    entry(br.K_INT24, fix=br.F_UNSIGNED, arg=24),
    entry(br.K_FLOAT),
    entry(br.K_DOUBLE),
    entry(br.K_YEAR, fix=br.F_YEAR),
    entry(br.K_DECIMAL, 65, 30),
    entry(br.K_DECIMAL, 10, 10),
    entry(br.K_DATETIME2, 5),
    entry(br.K_DATE),
    entry(br.K_TIME2, 3),
    entry(br.K_TIME2, 6),
    entry(br.K_TIMESTAMP2, 1, fix=br.F_ZERO_TS, fix_obj="0000-00-00 00:00:00.0"),
    entry(br.K_STRING, 2, br.C_CODEC, "cp1252", br.F_BYTES),
    entry(br.K_STRING, 1, br.C_UTF8),
    entry(br.K_ENUM, 2),
    entry(br.K_ENUM, 1, obj=("", "x")),
    entry(br.K_SET, 8, obj=tuple("abcdefghij")),
    entry(br.K_BIT, 8),
    entry(br.K_DATETIME),
    entry(br.K_TIME),
    entry(br.K_TIMESTAMP, fix=br.F_ZERO_TS, fix_obj="0000-00-00 00:00:00"),
)


def outcome(decode: Decode, spec: Any, body: bytes, images: int) -> Any:
    """The rows with each value's type, or the exception's type."""
    try:
        rows = decode(spec, body, 0, len(body), images)
    except (ValueError, IndexError, OverflowError, decimal.InvalidOperation) as e:
        return type(e).__name__
    return repr([[(type(v).__name__, v) for v in r] for r in rows])


@needs_c
@pytest.mark.parametrize("spec", [SPEC, EVERY_KIND], ids=["some", "every-kind"])
def test_c_and_python_agree_on_random_bodies(spec):
    rng = random.Random(9)
    for _ in range(3000):
        body = rng.randbytes(rng.randrange(1, 160))
        images = rng.choice((1, 2))
        assert outcome(decode_c, spec, body, images) == outcome(
            br.decode_python, spec, body, images
        ), body.hex()


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.data())
def test_c_and_python_agree_on_one_kind_at_a_time(data):
    """One column of each kind, with values that are mostly valid (random prefixes)."""
    spec = (data.draw(st.sampled_from(EVERY_KIND)),)
    body = b"\x00" + data.draw(st.binary(min_size=0, max_size=24))
    assert outcome(decode_c, spec, body, 1) == outcome(br.decode_python, spec, body, 1)


@needs_c
def test_a_bad_plan_is_refused():
    with pytest.raises(ValueError, match="column 0"):
        native.plan((entry(br.K_DECIMAL, 70, 2),))
    with pytest.raises(ValueError, match="column 1"):
        native.plan((SPEC[0], entry(99)))
    with pytest.raises(ValueError, match="column 0"):
        native.plan((entry(br.K_SET, 9, obj=()),))
    with pytest.raises(ValueError, match="column 0"):
        native.plan((entry(br.K_SET, 1, obj=(1,)),))


# --- exact values ------------------------------------------------------------------------------


def one(decode: Decode, spec: br.Spec, value: bytes) -> Any:
    (row,) = decode((spec,), b"\x00" + value, 0, 1 + len(value), 1)
    return row[0]


def time2_bytes(value: timedelta, fsp: int) -> bytes:
    """MySQL's my_time_packed_to_binary (sql-common/my_time.c)."""
    micros = abs(value) // timedelta(microseconds=1)
    seconds, frac = divmod(micros, 10**6)
    hms = (seconds // 3600) << 12 | (seconds // 60 % 60) << 6 | seconds % 60
    packed = (hms << 24) + frac
    packed = -packed if value < timedelta(0) else packed
    size = (fsp + 1) // 2
    if size == 3:
        return (packed + 0x800000000000).to_bytes(6, "big")
    intpart = packed >> 24  # arithmetic: floor
    rest = abs(packed) % (1 << 24) * (-1 if packed < 0 else 1)  # C's %: sign of the dividend
    out = (intpart + 0x800000).to_bytes(3, "big")
    if size == 1:
        out += (rest // 10000 if rest >= 0 else -(-rest // 10000)).to_bytes(1, "big", signed=True)
    elif size == 2:
        out += (rest // 100 if rest >= 0 else -(-rest // 100)).to_bytes(2, "big", signed=True)
    return out


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("fsp", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    "text",
    ["00:00:00", "838:59:59", "-838:59:59", "-00:00:00.5", "-01:02:03.25", "12:34:56.78"],
)
def test_time2_decodes_negative_fractions_exactly(decode: Decode, text: str, fsp: int):
    sign = -1 if text.startswith("-") else 1
    h, m, s = text.lstrip("-").split(":")
    value = sign * timedelta(hours=int(h), minutes=int(m), seconds=float(s))
    unit = timedelta(microseconds=10 ** (6 - fsp))
    value = sign * unit * round(abs(value) / unit)
    assert one(decode, entry(br.K_TIME2, fsp), time2_bytes(value, fsp)) == value


@pytest.mark.parametrize("decode", DECODERS)
def test_time2_smallest_negative_fraction(decode: Decode):
    tiny = timedelta(microseconds=-1)
    assert one(decode, entry(br.K_TIME2, 6), time2_bytes(tiny, 6)) == tiny


def date_bytes(y: int, m: int, d: int) -> bytes:
    return (y << 9 | m << 5 | d).to_bytes(3, "little")


@pytest.mark.parametrize("decode", DECODERS)
def test_zero_and_partial_dates_stay_text(decode: Decode):
    d = entry(br.K_DATE)
    assert one(decode, d, date_bytes(2024, 2, 29)) == date(2024, 2, 29)
    assert one(decode, d, date_bytes(0, 0, 0)) == "0000-00-00"
    assert one(decode, d, date_bytes(2020, 5, 0)) == "2020-05-00"
    ok = datetime2(9999, 12, 31, 23, 59, 59, (999999).to_bytes(3, "big"))
    assert one(decode, entry(br.K_DATETIME2, 6), ok) == datetime(9999, 12, 31, 23, 59, 59, 999999)
    zero = datetime2(0, 0, 0, 0, 0, 0, (0).to_bytes(2, "big"))
    assert one(decode, entry(br.K_DATETIME2, 3), zero) == "0000-00-00 00:00:00.000"
    partial = datetime2(2020, 1, 0, 1, 2, 3)
    assert one(decode, entry(br.K_DATETIME2, 0), partial) == "2020-01-00 01:02:03"
    zero_ts = entry(br.K_TIMESTAMP2, 3, fix=br.F_ZERO_TS, fix_obj="0000-00-00 00:00:00.000")
    assert one(decode, zero_ts, bytes(6)) == "0000-00-00 00:00:00.000"
    assert one(decode, zero_ts, (1).to_bytes(4, "big") + (50).to_bytes(2, "big")) == datetime(
        1970, 1, 1, 0, 0, 1, 5000
    )


@pytest.mark.parametrize("decode", DECODERS)
def test_the_old_temporal_formats(decode: Decode):
    old = entry(br.K_DATETIME)
    assert one(decode, old, (20240229123456).to_bytes(8, "little")) == datetime(
        2024, 2, 29, 12, 34, 56
    )
    assert one(decode, old, bytes(8)) == "0000-00-00 00:00:00"
    assert one(decode, old, (20200100000000).to_bytes(8, "little")) == "2020-01-00 00:00:00"
    t = entry(br.K_TIME)
    assert one(decode, t, (8385959).to_bytes(3, "little")) == timedelta(hours=838, seconds=3599)
    minus = (-123456).to_bytes(3, "little", signed=True)
    assert one(decode, t, minus) == -timedelta(hours=12, minutes=34, seconds=56)
    ts = entry(br.K_TIMESTAMP, fix=br.F_ZERO_TS, fix_obj="0000-00-00 00:00:00")
    assert one(decode, ts, bytes(4)) == "0000-00-00 00:00:00"
    assert one(decode, ts, (2**31 - 1).to_bytes(4, "little")) == datetime(2038, 1, 19, 3, 14, 7)


@pytest.mark.parametrize("decode", DECODERS)
def test_integers_decimals_and_strings(decode: Decode):
    u64 = entry(br.K_INT64, fix=br.F_UNSIGNED, arg=64)
    assert one(decode, u64, b"\xff" * 8) == 2**64 - 1  # an unsigned BIGINT logged as signed
    assert one(decode, entry(br.K_UINT24), b"\xff\xff\xff") == 2**24 - 1
    assert one(decode, entry(br.K_INT24), b"\xff\xff\xff") == -1
    assert one(decode, entry(br.K_YEAR, fix=br.F_YEAR), b"\x00") == 0
    assert one(decode, entry(br.K_YEAR), b"\x00") == 1900
    neg = bytes(b ^ 0xFF for b in b"\x81" + (5).to_bytes(4, "big"))  # -(1.000000005)
    assert one(decode, entry(br.K_DECIMAL, 10, 9), neg) == decimal.Decimal("-1.000000005")
    latin = entry(br.K_STRING, 1, br.C_CODEC, "cp1252")
    assert one(decode, latin, b"\x03caf\xe9"[:1] + b"caf\xe9"[:3]) == "caf"
    assert one(decode, latin, b"\x04caf\xe9") == "café"
    text_as_bytes = entry(br.K_STRING, 1, br.C_UTF8, fix=br.F_BYTES)
    assert one(decode, text_as_bytes, b"\x02\xc3\xa9") == "é".encode()


# --- plans -------------------------------------------------------------------------------------


def binlog_column(type_: int, **attrs: object) -> BinlogColumn:
    base = {"name": f"c{type_}", "unsigned": False, "character_set_name": "utf8mb4"}
    return BinlogColumn(type=type_, **{**base, **attrs})


def schema(*columns: Column) -> TableSchema:
    return TableSchema("db", "t", columns, (), 1)


EVERY_TYPE = [
    (binlog_column(FIELD_TYPE.LONG, unsigned=True), Column("a", "int", "int(10) unsigned"),
     (br.K_UINT32, 0, 0, None, br.F_UNSIGNED, 32, None)),
    (binlog_column(FIELD_TYPE.YEAR), Column("y", "year", "year(4)"),
     (br.K_YEAR, 0, 0, None, br.F_YEAR, 0, None)),
    (binlog_column(FIELD_TYPE.BLOB, length_size=2, character_set_name="binary"),
     Column("b", "blob", "blob"), (br.K_STRING, 2, br.C_BYTES, None, br.F_BYTES, 0, None)),
    (binlog_column(FIELD_TYPE.VARCHAR, max_length=300, character_set_name="latin1"),
     Column("v", "varchar", "varchar(300)"),
     (br.K_STRING, 2, br.C_CODEC, "cp1252", br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.STRING, max_length=4, character_set_name="binary"),
     Column("bn", "binary", "binary(4)"), (br.K_STRING, 1, br.C_BYTES, None, br.F_PAD, 4, None)),
    (binlog_column(FIELD_TYPE.BIT, bits=10, bytes=2), Column("b", "bit", "bit(10)"),
     (br.K_BIT, 2, 0, None, br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.SET, size=1, set_values=["a", "b"]),
     Column("s", "set", "set('a','b')"), (br.K_SET, 1, 0, ("a", "b"), br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.GEOMETRY, length_size=4), Column("g", "point", "point"),
     (br.K_STRING, 4, br.C_BYTES, None, br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.BLOB, length_size=4), Column("j", "json", "longtext"),
     (br.K_STRING, 4, br.C_UTF8, None, br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.DATETIME), Column("d", "datetime", "datetime"),
     (br.K_DATETIME, 0, 0, None, br.F_NONE, 0, None)),
    (binlog_column(FIELD_TYPE.TIMESTAMP), Column("t", "timestamp", "timestamp"),
     (br.K_TIMESTAMP, 0, 0, None, br.F_ZERO_TS, 0, "0000-00-00 00:00:00")),
    (binlog_column(FIELD_TYPE.TIMESTAMP2, fsp=3),
     Column("t", "timestamp", "timestamp(3)", datetime_precision=3),
     (br.K_TIMESTAMP2, 3, 0, None, br.F_ZERO_TS, 0, "0000-00-00 00:00:00.000")),
]  # fmt: skip


@pytest.mark.parametrize(("column", "col", "expected"), EVERY_TYPE)
def test_every_column_type_is_planned(column, col, expected):
    assert br.plan_spec([column], schema(col)) == (expected,)


@pytest.mark.parametrize(
    ("column", "col", "message"),
    [
        (binlog_column(FIELD_TYPE.JSON, length_size=4), Column("j", "json", "json"),
         r"column j \(json\): binlog type JSON"),
        (binlog_column(FIELD_TYPE.DECIMAL), Column("d", "decimal", "decimal(5,2)"),
         "binlog type DECIMAL"),
        (binlog_column(FIELD_TYPE.DATETIME),
         Column("d", "datetime", "datetime(3)", datetime_precision=3), "MariaDB 5.3"),
        (binlog_column(FIELD_TYPE.BIT, bits=3, bytes=0), Column("b", "bit", "bit(12)"),
         r"bit\(3\) rows for a bit\(12\) column"),
        (binlog_column(FIELD_TYPE.LONG), Column("y", "year", "year(4)"), "year.* stored as"),
        (binlog_column(FIELD_TYPE.DATETIME2, fsp=0), Column("t", "timestamp", "timestamp"),
         "stored as"),
    ],
)  # fmt: skip
def test_what_cannot_be_decoded_exactly_is_refused_by_name(column, col, message):
    with pytest.raises(br.UndecodableColumn, match=message):
        br.plan_spec([column], schema(col))


def test_a_table_map_of_another_width_is_refused():
    with pytest.raises(br.UndecodableColumn, match="1 columns, the schema 0"):
        br.plan_spec([binlog_column(FIELD_TYPE.LONG)], schema())
