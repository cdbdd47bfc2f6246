"""PostgreSQL ⇄ neutral types without a server: the catalog's declarations (typmods included)
map as README's table says, values load into their neutral forms, neutral values bind as a
PostgreSQL column takes them, and a declaration for another family's column holds its
values. Real servers: tests/integration/test_postgres_connectors.py, tests/conformance."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from coordinator.jdbc import JdbcUrlError, parse_jdbc_url
from schemas import postgres_types as pt
from schemas import types as t
from schemas.types import LogicalType


def col(typname: str, typmod: int = -1, **kw: object) -> pt.CatalogColumn:
    args = {"name": "c", "declared": typname, "not_null": False, "typname": typname,
            "typtype": "b", "typmod": typmod, "labels": None, "element": None}  # fmt: skip
    args.update(kw)
    return pt.CatalogColumn(**args)  # type: ignore[arg-type]


def numeric_typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0x7FF)) + 4


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        (col("int2"), t.int_type(16)),
        (col("int4"), t.int_type(32)),
        (col("int8"), t.int_type(64)),
        (col("numeric"), t.simple(t.NUMERIC)),
        (col("numeric", numeric_typmod(10, 2)), t.decimal_type(10, 2)),
        (col("numeric", numeric_typmod(1000, 1000)), t.decimal_type(1000, 1000)),
        (col("numeric", numeric_typmod(5, -2)), t.decimal_type(7, 0)),
        (col("float4"), t.simple(t.FLOAT32)),
        (col("float8"), t.simple(t.FLOAT64)),
        (col("bool"), t.simple(t.BOOLEAN)),
        (col("varchar", 24), LogicalType(t.STRING, length=20)),
        (col("varchar"), LogicalType(t.STRING)),
        (col("bpchar", 9), LogicalType(t.STRING, length=5)),
        (col("text"), LogicalType(t.STRING)),
        (col("bytea"), LogicalType(t.BYTES)),
        (col("date"), t.simple(t.DATE)),
        (col("time"), LogicalType(t.TIME, fsp=6)),
        (col("time", 3), LogicalType(t.TIME, fsp=3)),
        (col("timestamp", 0), LogicalType(t.TIMESTAMP, fsp=0)),
        (col("timestamptz"), LogicalType(t.TIMESTAMP_TZ, fsp=6)),
        (col("interval"), t.simple(t.INTERVAL)),
        (col("uuid"), t.simple(t.UUID)),
        (col("jsonb"), t.simple(t.JSON)),
        (col("mood", typtype="e", labels=("a", "b")), LogicalType(t.ENUM, symbols=("a", "b"))),
        (col("bit", 10), LogicalType(t.BIT, bits=10)),
        (col("money"), t.decimal_type(19, 2)),
        (col("_int4", element="int4"), LogicalType(t.ARRAY, element=t.int_type(32))),
        (col("_numeric", numeric_typmod(5, 1), element="numeric"),
         LogicalType(t.ARRAY, element=t.decimal_type(5, 1))),
        (col("_mood", element="mood", element_typtype="e", labels=("a",)), t.simple(t.OPAQUE)),
        (col("timetz"), t.simple(t.OPAQUE)),
        (col("inet"), t.simple(t.OPAQUE)),
        (col("varbit"), t.simple(t.OPAQUE)),
        (col("point"), t.simple(t.OPAQUE)),
    ],
)  # fmt: skip
def test_catalog_types_map_to_neutral_types(catalog: pt.CatalogColumn, expected: LogicalType):
    assert pt.logical_type(catalog) == expected


def test_a_column_keeps_its_declaration_and_reads_opaque_and_money_as_text_or_numeric():
    c = pt.column_from_catalog(col("numeric", numeric_typmod(10, 2), declared="numeric(10,2)"))
    assert (c.data_type, c.column_type, c.dialect) == ("numeric", "numeric(10,2)", "postgresql")
    assert (c.numeric_precision, c.numeric_scale) == (10, 2)
    # inet as its output function prints it (what the WAL carries), not its text cast's form
    assert pt.select_expr(pt.column_from_catalog(col("inet", name="ip", declared="inet"))) == (
        'abbrev("ip")'
    )
    assert pt.select_expr(pt.column_from_catalog(col("macaddr", name="m", declared="macaddr"))) == (
        '"m"::text'
    )
    assert pt.select_expr(pt.column_from_catalog(col("money", declared="money"))) == '"c"::numeric'
    assert pt.select_expr(pt.column_from_catalog(col("int4", name='we"ird'))) == '"we""ird"'


def test_values_load_in_their_neutral_forms():
    load = pt.LOADERS
    assert load["date"](b"2024-02-29") == date(2024, 2, 29)
    assert load["date"](b"infinity") == "infinity"
    assert load["date"](b"4713-01-01 BC") == "4713-01-01 BC"
    assert load["timestamp"](b"2024-02-29 12:34:56.5") == datetime(2024, 2, 29, 12, 34, 56, 500000)
    assert load["timestamptz"](b"2038-01-19 01:14:07.123456+00") == datetime(
        2038, 1, 19, 1, 14, 7, 123456
    )
    assert load["timestamptz"](b"2001-02-03 04:05:06+05:30") == datetime(2001, 2, 2, 22, 35, 6)
    assert load["timestamptz"](b"-infinity") == "-infinity"
    assert load["time"](b"24:00:00") == timedelta(days=1)
    assert load["time"](b"00:00:00.001") == timedelta(microseconds=1000)
    assert load["bit"](b"1010101010") == b"\x02\xaa"
    assert load["bit"](b"") == b""
    assert load["interval"](b"1 year 2 mons") == "1 year 2 mons"


def test_values_bind_as_the_target_column_takes_them():
    time3 = pt.value_converter(LogicalType(t.TIME, fsp=3))
    assert time3 is not None and time3(timedelta(hours=25, microseconds=5)) == "25:00:00.000005"
    assert time3(-timedelta(seconds=1)) == "-00:00:01.000000"  # refused by the server: rejected
    bits = pt.value_converter(LogicalType(t.BIT, bits=10))
    assert bits is not None and bits(b"\x02\xaa") == "1010101010"
    tz = pt.value_converter(LogicalType(t.TIMESTAMP_TZ, fsp=6))
    assert tz is not None and tz(datetime(2001, 1, 1, 1, 2, 3)) == "2001-01-01T01:02:03+00:00"
    boolean = pt.value_converter(t.simple(t.BOOLEAN))
    assert boolean is not None and (boolean(1), boolean(0), boolean(2)) == (True, False, 2)
    array = pt.value_converter(LogicalType(t.ARRAY, element=t.int_type(32)))
    assert array is not None and array("[1, null, -3]") == [1, None, -3]
    assert pt.value_converter(t.int_type(32)) is None


@pytest.mark.parametrize(
    ("lt", "declaration"),
    [
        (t.int_type(8), "smallint"),
        (t.int_type(16, signed=False), "integer"),
        (t.int_type(32, signed=False), "bigint"),
        (t.int_type(64, signed=False), "numeric(20,0)"),
        (t.decimal_type(65, 30), "numeric(65,30)"),
        (LogicalType(t.STRING, length=20), "varchar(20)"),
        (LogicalType(t.STRING), "text"),
        (LogicalType(t.TIME, fsp=0), "time(0)"),
        (LogicalType(t.TIMESTAMP_TZ, fsp=6), "timestamptz"),
        (LogicalType(t.ENUM, symbols=("a",)), "text"),
        (LogicalType(t.ARRAY, element=t.simple(t.UUID)), "uuid[]"),
        (t.simple(t.OPAQUE), "text"),
    ],
)
def test_declarations_for_another_familys_columns(lt: LogicalType, declaration: str):
    assert pt.pg_declaration(lt) == declaration


def test_postgresql_urls():
    url = parse_jdbc_url("jdbc:postgresql://[::1]/shop?sslmode=disable", "postgresql")
    assert (url.host, url.port, url.database, url.options) == (
        "::1",
        5432,
        "shop",
        {"sslmode": "disable"},
    )
    with pytest.raises(JdbcUrlError, match="only PostgreSQL URLs"):
        parse_jdbc_url("jdbc:mysql://h/db", "postgresql")
    with pytest.raises(JdbcUrlError, match="credentials"):
        parse_jdbc_url("jdbc:postgresql://u:secret@h/db", "postgresql")
