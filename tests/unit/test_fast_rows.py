"""The snapshot hot path's shortcuts give exactly what PyMySQL gives.

Without servers: the compiled row parser against PyMySQL's own on hand-made packets, the
fast DATETIME/DATE converters against PyMySQL's, the writer's fast literals against
``escape_item``. With MariaDB: every type of the all-types table (edge rows included)
read by the snapshot connection both ways, value for value and type for type.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from pymysql.connections import MySQLResult
from pymysql.converters import convert_date, convert_datetime, escape_item
from pymysql.protocol import MysqlPacket

from sink_connectors.mysql.statements import fast_literal
from source_connectors.mysql import fast_rows
from source_connectors.mysql.fast_rows import FAST_DECODERS, fast_date, fast_datetime
from testkit.alltypes import create_all_types
from testkit.mysql import mysql_params

CONVERTERS: list[tuple[str | None, Any]] = [
    ("ascii", int),
    ("utf8", None),
    (None, None),  # binary
    ("ascii", Decimal),
    ("ascii", fast_datetime),
    ("ascii", float),
    ("ascii", fast_date),
]


def _lenenc(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 251:
        return bytes((n,)) + value
    if n < 2**16:
        return b"\xfc" + n.to_bytes(2, "little") + value
    if n < 2**24:
        return b"\xfd" + n.to_bytes(3, "little") + value
    return b"\xfe" + n.to_bytes(8, "little") + value


class _Result:
    def __init__(self, converters: list[tuple[str | None, Any]]) -> None:
        self.converters = converters


ROWS = [
    [b"-9223372036854775808", "é😀".encode(), b"\x00\xff", b"-1.50", b"2024-02-29 12:34:56.789012", b"1.5e-07", b"2024-01-01"],
    [b"0", b"", b"", b"0.000000000000000000000000000001", b"0000-00-00 00:00:00", b"-0", b"0000-00-00"],
    [None, None, None, None, None, None, None],
    [b"18446744073709551615", b"x" * 300, b"y" * 70_000, b"9" * 35 + b"." + b"9" * 30, b"1000-01-01 00:00:00", b"1e308", b"2024-02-30"],
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_compiled_parser_matches_pymysql(row: list[bytes | None]) -> None:
    data = b"".join(_lenenc(v) for v in row)
    want = MySQLResult._read_row_from_packet(_Result(CONVERTERS), MysqlPacket(data, "utf8"))
    got = fast_rows.compile_row_parser(CONVERTERS)(MysqlPacket(data, "utf8"))
    assert got == want
    assert [type(g) for g in got] == [type(w) for w in want]


def test_truncated_packet_is_an_error_not_garbage() -> None:
    data = b"\xfc" + (500).to_bytes(2, "little") + b"short"
    with pytest.raises(ValueError, match="shorter than its values"):
        fast_rows.compile_row_parser([("utf8", None)])(MysqlPacket(data, "utf8"))


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29 12:34:56.789012",
        "2024-02-29 12:34:56.5",
        "2024-02-29 12:34:56",
        "9999-12-31 23:59:59.999999",
        "0000-00-00 00:00:00",
        "0000-00-00 00:00:00.000000",
        "2024-02-30 00:00:00",
        "2024-00-10 00:00:00",
    ],
)
def testfast_datetime_is_pymysqls(text: str) -> None:
    got, want = fast_datetime(text), convert_datetime(text)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("text", ["2024-02-29", "1000-01-01", "0000-00-00", "2024-02-30"])
def testfast_date_is_pymysqls(text: str) -> None:
    got, want = fast_date(text), convert_date(text)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    "value",
    [
        0, -5, 2**64, None, True, 1.5, -0.0, "a'b\\c", b"\x00'",
        datetime(2024, 1, 1), datetime(2024, 1, 1, 0, 0, 0, 1), datetime(1, 1, 1, 23, 59, 59, 999999),
        Decimal("1.50"), Decimal("-0.000000000000000000000000000001"), Decimal("0E-30"),
        Decimal("99999999999999999999999999999999999.999999999999999999999999999999"),
        date(2024, 1, 1), timedelta(hours=-1, microseconds=5), "0000-00-00 00:00:00",
    ],
)  # fmt: skip
def test_fast_literal_is_pymysqls(value: object) -> None:
    def lit(v: object) -> str:
        return str(escape_item(v, "utf8mb4"))

    assert fast_literal(lit)(value) == lit(value)


ROW_VALUES: tuple[object, ...] = (
    0, -5, 2**63 - 1, -(2**63), 2**64, -(2**70), None, True, 1.5, -0.0,
    "", "a'b\\c", "\x00\n\r\x1a\"'\\", "é😀'x", "\ud800", b"\x00'",
    datetime(2024, 1, 1), datetime(2024, 1, 1, 0, 0, 0, 1), datetime(1, 1, 1, 23, 59, 59, 999999),
    datetime(2024, 1, 1, tzinfo=UTC),
    Decimal("1.50"), Decimal("-0.000000000000000000000000000001"), Decimal("0E-30"),
    date(2024, 1, 1), timedelta(hours=-1, microseconds=5), "0000-00-00 00:00:00",
)  # fmt: skip


@pytest.mark.parametrize("no_backslash", [False, True])
def test_row_text_is_pymysqls(no_backslash: bool) -> None:
    """A whole row at once (C when built) renders as PyMySQL renders each value."""

    def lit(v: object) -> str:
        if isinstance(v, str) and no_backslash:
            return "'" + v.replace("'", "''") + "'"
        return str(escape_item(v, "utf8mb4"))

    literal = fast_literal(lit, lambda: no_backslash)
    want = "(" + ",".join(lit(v) for v in ROW_VALUES) + ")"
    assert literal.row(ROW_VALUES) == want
    index = (3, 0, 11, 11)
    assert literal.row(ROW_VALUES, index) == "(" + ",".join(lit(ROW_VALUES[i]) for i in index) + ")"
    with pytest.raises(IndexError):
        literal.row(ROW_VALUES, (len(ROW_VALUES),))


def _read_all(mysql_url: str, database: str, fast: bool) -> list[tuple[Any, ...]]:
    conn = pymysql.connect(
        **mysql_params(mysql_url),
        database=database,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
        init_command="SET time_zone = '+00:00'",
    )
    try:
        if fast:
            conn.decoders.update(FAST_DECODERS)
        with conn.cursor() as cur:
            cur.execute("SELECT *, CAST(f AS DOUBLE) FROM t ORDER BY id")
            if fast:
                assert fast_rows.install(cur)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_all_types_read_alike(mysql_url: str, mysql_database: str) -> None:
    conn = pymysql.connect(**mysql_params(mysql_url), autocommit=True, charset="utf8mb4")
    try:
        create_all_types(conn, mysql_database, "t", 500)
    finally:
        conn.close()
    slow = _read_all(mysql_url, mysql_database, fast=False)
    fast = _read_all(mysql_url, mysql_database, fast=True)
    assert len(fast) == len(slow) == 506
    for a, b in zip(fast, slow, strict=True):
        assert a == b
        assert [type(x) for x in a] == [type(y) for y in b], a[0]


def test_varints_are_fastavros() -> None:
    import io
    import random

    from fastavro import schemaless_writer

    from schemas.row_binary import read_long, write_long

    rng = random.Random(9)
    values = [rng.randint(-(2**63), 2**63 - 1) for _ in range(3000)]
    values += [rng.randint(-(2**k), 2**k) for k in range(1, 63) for _ in range(20)]
    for n in values:
        buf = io.BytesIO()
        schemaless_writer(buf, "long", n)
        assert write_long(n) == buf.getvalue(), n
        assert read_long(buf.getvalue(), 0) == (n, len(buf.getvalue()))
