"""Neutral column types (issue 15 item 1): MySQL declarations map onto them, every kind has
one Avro form that the fast codec writes byte for byte as fastavro does, columns carry them
through every record that describes a table (row schemas, schema changes, schema history),
and a MySQL target gets a declaration that holds every value of a kind another family
declared."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas import types as t
from schemas.avro_types import RowCodec, row_envelope_schema, table_from_avro
from schemas.control import control_from_avro, control_schema, control_to_avro
from schemas.errors import SchemaError, UnsupportedColumnType
from schemas.events import Op, RowEvent, SchemaChange, SourcePosition
from schemas.mysql_types import as_mysql_table, mysql_declaration
from schemas.row_binary import RowEnvelopeCodec
from schemas.table import Column, TableSchema
from schemas.types import LogicalType


def mysql(column_type: str, **kw: Any) -> LogicalType:
    data_type = column_type.split("(")[0].split(" ")[0].lower()
    return Column("c", data_type, column_type, **kw).logical


@pytest.mark.parametrize(
    ("column_type", "kw", "neutral"),
    [
        ("tinyint(4)", {}, "int8"),
        ("tinyint(3) unsigned", {}, "uint8"),
        ("mediumint(8) unsigned", {}, "uint24"),
        ("int(10) unsigned", {}, "uint32"),
        ("bigint(20)", {}, "int64"),
        ("bigint(20) unsigned", {}, "uint64"),
        ("year(4)", {}, "uint16"),
        ("decimal(65,30)", {"numeric_precision": 65, "numeric_scale": 30}, "decimal(65,30)"),
        ("decimal(10,2)", {}, "decimal(10,2)"),  # from the declaration when the info is absent
        ("float", {}, "float32"),
        ("double", {}, "float64"),
        ("varchar(40)", {}, "string(40)"),
        ("longtext", {}, "string"),
        ("tinytext", {}, "string(255)"),
        ("varbinary(16)", {}, "bytes(16)"),
        ("longblob", {}, "bytes"),
        ("bit(13)", {}, "bit(13)"),
        ("enum('a','b''c')", {}, "enum(2 members)"),
        ("set('x','y','z')", {}, "set(3 members)"),
        ("date", {}, "date"),
        ("datetime(6)", {"datetime_precision": 6}, "timestamp(6)"),
        ("timestamp(3)", {}, "timestamp_tz(3)"),
        ("time", {}, "time"),
        ("json", {}, "json"),
        ("uuid", {}, "uuid"),
        ("inet6", {}, "opaque"),
        ("geometry", {}, "unsupported"),
    ],
)
def test_mysql_declarations_have_neutral_types(column_type: str, kw: dict, neutral: str) -> None:
    assert mysql(column_type, **kw).describe() == neutral


def test_enum_symbols_are_the_declared_members() -> None:
    assert mysql("enum('a','b''c','')").symbols == ("a", "b'c", "")


def test_a_column_of_another_family_needs_its_type() -> None:
    with pytest.raises(SchemaError, match="column c: a postgresql column needs its type"):
        Column("c", "timestamptz", "timestamp with time zone", dialect="postgresql")


def test_bad_neutral_types_are_refused() -> None:
    with pytest.raises(SchemaError, match="no neutral type 'varchar'"):
        LogicalType("varchar")
    with pytest.raises(SchemaError, match="int needs bits"):
        LogicalType(t.INT, bits=12, signed=True)
    with pytest.raises(SchemaError, match="array needs an element"):
        LogicalType(t.ARRAY)


# --- every kind through Avro, as another family would declare it ------------------------------

ARRAY_OF_DATES = LogicalType(t.ARRAY, element=t.simple(t.DATE))
NEUTRAL_COLUMNS = (
    ("k", t.int_type(64), False),
    ("u64", t.int_type(64, signed=False), True),
    ("i16", t.int_type(16), True),
    ("money", t.decimal_type(38, 4), True),
    ("big", t.simple(t.NUMERIC), True),
    ("f", t.simple(t.FLOAT32), True),
    ("flag", t.simple(t.BOOLEAN), True),
    ("name", LogicalType(t.STRING, length=300), True),
    ("raw", t.simple(t.BYTES), True),
    ("day", t.simple(t.DATE), True),
    ("at", LogicalType(t.TIMESTAMP_TZ, fsp=6), True),
    ("span", t.simple(t.INTERVAL), True),
    ("id", t.simple(t.UUID), True),
    ("doc", t.simple(t.JSON), True),
    ("ints", LogicalType(t.ARRAY, element=t.int_type(32)), True),
    ("days", ARRAY_OF_DATES, True),
    ("addr", t.simple(t.OPAQUE), True),
)
NEUTRAL_TABLE = TableSchema(
    "app",
    "things",
    tuple(
        Column(n, lt.kind, lt.describe(), nullable, logical=lt, dialect="postgresql")
        for n, lt, nullable in NEUTRAL_COLUMNS
    ),
    ("k",),
)
FULL_ROW = (
    1, 2**64 - 1, -(2**15), Decimal("-1234567890123456789012345678901234.5678"),
    Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781640628"),
    0.5, True, "😀" * 300, b"\x00\xff" * 50, date(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59),
    "1 year 2 mons 3 days 04:05:06.789", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    '{"a": [1, 2, {"b": null}]}', [1, None, -(2**31)], [date(2020, 2, 29), None, "infinity"],
    "192.168.0.1/24",
)  # fmt: skip
EMPTY_ROW = (2, None, None, None, None, None, False, "", b"", "-infinity", None, None, None,
             None, [], [], None)  # fmt: skip


@pytest.mark.parametrize("row", [FULL_ROW, EMPTY_ROW], ids=["full", "empty"])
def test_every_neutral_kind_round_trips_and_the_fast_codec_writes_fastavros_bytes(
    row: tuple[Any, ...],
) -> None:
    event = RowEvent(
        Op.INSERT, NEUTRAL_TABLE, None, row, SourcePosition("reader-0", seq=7), 1_700_000_000_000
    )
    codec, fast = RowCodec(NEUTRAL_TABLE), RowEnvelopeCodec(NEUTRAL_TABLE)
    record = {
        "op": "INSERT",
        "before": None,
        "after": (codec.value_record_name, _named_dates(codec.to_avro(row))),
        "source": {
            "task": "reader-0", "chunk": None, "restore_value": None, "file": None,
            "pos": None, "gtid": None, "row": None, "seq": 7,
        },
        "event_id": event.event_id,
        "ts_ms": event.ts_ms,
        "table": "app.things",
        "schema_version": 1,
    }  # fmt: skip
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(row_envelope_schema(NEUTRAL_TABLE)), record)
    assert fast.encode(event) == buf.getvalue()
    decoded = fast.decode(buf.getvalue(), 0)
    assert decoded.after == row
    assert decoded.after is not None
    for (name, _, _), got, want in zip(NEUTRAL_COLUMNS, decoded.after, row, strict=True):
        assert type(got) is type(want), name
    assert str(decoded.after[4]) == str(row[4])  # an unbounded numeric keeps every digit


def _named_dates(record: dict[str, Any]) -> dict[str, Any]:
    # fastavro's validator cannot resolve a str in [date, string] unnamed: name the branch.
    out = dict(record)
    if isinstance(out["day"], str):
        out["day"] = ("string", out["day"])
    out["days"] = [("string", d) if isinstance(d, str) else d for d in out["days"]]
    return out


def test_unsupported_names_the_column() -> None:
    table = TableSchema("db", "shapes", (Column("g", "geometry", "geometry"),))
    with pytest.raises(UnsupportedColumnType, match="column db.shapes.g has type 'geometry'"):
        RowEnvelopeCodec(table)


# --- carried through every record that describes a table -------------------------------------


def test_row_schemas_carry_neutral_types_and_rebuild_the_table() -> None:
    schema = row_envelope_schema(NEUTRAL_TABLE)
    assert table_from_avro(schema) == NEUTRAL_TABLE
    fields = schema["fields"][1]["type"][1]["fields"]
    assert [f["sluice.type"] for f in fields][:4] == ["int64", "uint64", "int16", "decimal(38,4)"]


def test_a_row_schema_written_before_neutral_types_reads_as_mysql() -> None:
    table = TableSchema("db", "t", (Column("n", "int", "int(10) unsigned", False),))
    schema = row_envelope_schema(table)
    field = schema["fields"][1]["type"][1]["fields"][0]
    del field["sluice.column"]["logical"], field["sluice.column"]["dialect"]
    (column,) = table_from_avro(schema).columns
    assert column.logical == t.int_type(32, signed=False) and column.dialect == "mysql"


def test_schema_changes_carry_neutral_types() -> None:
    change = SchemaChange(
        "app", "things", "ALTER TABLE things ADD days date[]", NEUTRAL_TABLE,
        SourcePosition("reader-0", file="0/16B3748", pos=1), 1, old_schema=None,
    )  # fmt: skip
    parsed = parse_schema(control_schema("SchemaChange"))
    buf = io.BytesIO()
    schemaless_writer(buf, parsed, control_to_avro(change))
    buf.seek(0)
    back = control_from_avro(SchemaChange, schemaless_reader(buf, parsed, None))  # type: ignore[arg-type]
    assert isinstance(back, SchemaChange)
    assert back.new_schema == NEUTRAL_TABLE
    assert back.new_schema is not None
    assert back.new_schema.column("days").logical == ARRAY_OF_DATES


def test_neutral_types_json_round_trip() -> None:
    for _, lt, _ in NEUTRAL_COLUMNS:
        assert LogicalType.from_json(lt.to_json()) == lt
    nested = LogicalType(t.ARRAY, element=LogicalType(t.ARRAY, element=t.decimal_type(5, 2)))
    assert LogicalType.from_json(nested.to_json()) == nested
    assert nested.describe() == "array<array<decimal(5,2)>>"


# --- a MySQL target for another family's columns ----------------------------------------------


@pytest.mark.parametrize(
    ("neutral", "declaration"),
    [
        (t.int_type(8), "tinyint"),
        (t.int_type(64, signed=False), "bigint unsigned"),
        (t.decimal_type(65, 30), "decimal(65,30)"),
        (t.decimal_type(100, 2), "longtext"),
        (t.simple(t.BOOLEAN), "tinyint(1)"),
        (LogicalType(t.STRING, length=255), "varchar(255)"),
        (LogicalType(t.STRING, length=1000), "text"),
        (LogicalType(t.STRING, length=20000), "mediumtext"),
        (t.simple(t.STRING), "longtext"),
        (LogicalType(t.BYTES, length=16), "varbinary(16)"),
        (t.simple(t.BYTES), "longblob"),
        (LogicalType(t.TIMESTAMP_TZ, fsp=6), "datetime(6)"),
        (LogicalType(t.TIME, fsp=3), "time(3)"),
        (t.simple(t.UUID), "char(36)"),
        (LogicalType(t.ENUM, symbols=("a", "it's")), "enum('a','it''s')"),
        (LogicalType(t.BIT, bits=64), "bit(64)"),
        (ARRAY_OF_DATES, "longtext"),
    ],
)
def test_mysql_declarations_of_neutral_types(neutral: LogicalType, declaration: str) -> None:
    assert mysql_declaration(neutral) == declaration


def test_mysql_declarations_of_mysql_types_hold_the_same_values() -> None:
    """A MySQL column's neutral type declared back on MySQL holds every value the column
    held (display widths and charsets aside): MySQL → neutral → MySQL loses nothing."""
    for column_type, again in [
        ("int(10) unsigned", "int unsigned"),
        ("decimal(10,2)", "decimal(10,2)"),
        ("datetime(6)", "datetime(6)"),
        ("varchar(40)", "varchar(40)"),
        ("text", "mediumtext"),  # 65,535 bytes; as characters, up to 4 bytes each
        ("mediumtext", "longtext"),
        ("set('x','y')", "set('x','y')"),
        ("bit(13)", "bit(13)"),
        ("year", "smallint unsigned"),
    ]:
        assert mysql_declaration(mysql(column_type)) == again, column_type


def test_a_mysql_table_of_another_family_keeps_names_keys_and_types() -> None:
    table = as_mysql_table(NEUTRAL_TABLE)
    assert table.column_names == NEUTRAL_TABLE.column_names
    assert table.primary_key == ("k",)
    assert all(c.dialect == "mysql" for c in table.columns)
    assert [c.logical for c in table.columns] == [c.logical for c in NEUTRAL_TABLE.columns]
    assert table.column("id").column_type == "char(36)"
