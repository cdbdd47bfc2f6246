"""MySQL -> Avro type mapping and the row codecs, without servers.

Edge values go through every path a row can take: ``RowCodec`` + fastavro (what any Avro
reader sees) and the specialized ``RowEnvelopeCodec`` (Sluice's hot path), and the two must
produce identical bytes.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.avro_types import (
    COLUMN_PROP,
    SYMBOLS_PROP,
    RowCodec,
    avro_name,
    field_names,
    field_type,
    row_envelope_schema,
    shortest_float32,
    table_from_avro,
)
from schemas.errors import SerdeError, UnsupportedColumnType
from schemas.events import Op, RowEvent, SourcePosition
from schemas.mysql_types import sql_list_members
from schemas.row_binary import RowEnvelopeCodec, read_long, write_long
from schemas.table import Column, TableSchema


def col(name: str, column_type: str, nullable: bool = True, **kw: Any) -> Column:
    data_type = kw.pop("data_type", column_type.split("(")[0].split(" ")[0].lower())
    return Column(name, data_type, column_type, nullable, **kw)


EDGE_COLUMNS = (
    col("id", "int(11)", False, numeric_precision=10, numeric_scale=0),
    col("ti", "tinyint(4)"),
    col("tiu", "tinyint(3) unsigned"),
    col("si", "smallint(6)"),
    col("siu", "smallint(5) unsigned"),
    col("mi", "mediumint(9)"),
    col("miu", "mediumint(8) unsigned"),
    col("i", "int(11)"),
    col("iu", "int(10) unsigned"),
    col("bi", "bigint(20)"),
    col("biu", "bigint(20) unsigned"),
    col("d65", "decimal(65,30)", numeric_precision=65, numeric_scale=30),
    col("d10", "decimal(10,2)", numeric_precision=10, numeric_scale=2),
    col("d0", "decimal(65,0)", numeric_precision=65, numeric_scale=0),
    col("f", "float"),
    col("db", "double"),
    col("c", "char(10)", character_set="utf8mb4"),
    col("vc", "varchar(255)", character_set="utf8mb4"),
    col("tx", "text", character_set="utf8mb4"),
    col("lt", "longtext", character_set="utf8mb4"),
    col("bin", "binary(4)"),
    col("vb", "varbinary(16)"),
    col("bl", "blob"),
    col("dt", "date"),
    col("tm", "time(6)", datetime_precision=6),
    col("dtm", "datetime(6)", datetime_precision=6),
    col("dtm0", "datetime", datetime_precision=0),
    col("ts", "timestamp(6)", datetime_precision=6),
    col("yr", "year(4)"),
    col("en", "enum('a','b''c','')"),
    col("st", "set('x','y','z')"),
    col("js", "json", data_type="json"),
    col("b1", "bit(1)", numeric_precision=1),
    col("b64", "bit(64)", numeric_precision=64),
    col("my-col", "int(11)"),
    col("nn_date", "date", False),
    col("nn_dtm", "datetime(6)", False, datetime_precision=6),
)
EDGE_TABLE = TableSchema("shop", "edge cases", EDGE_COLUMNS, primary_key=("id",), version=3)

_NULL_ROW: dict[str, Any] = {c.name: None for c in EDGE_COLUMNS}
EDGE_ROWS: list[tuple[Any, ...]] = []


def _row(**values: Any) -> None:
    full = {**_NULL_ROW, "nn_date": date(2024, 2, 29), "nn_dtm": datetime(2024, 2, 29)}
    full.update(values)
    EDGE_ROWS.append(tuple(full[c.name] for c in EDGE_COLUMNS))


_row(id=1)  # every nullable column NULL
_row(
    id=2,
    ti=127, tiu=255, si=32767, siu=65535, mi=8388607, miu=16777215,
    i=2147483647, iu=4294967295, bi=9223372036854775807, biu=18446744073709551615,
    d65=Decimal("99999999999999999999999999999999999.999999999999999999999999999999"),
    d10=Decimal("99999999.99"), d0=Decimal("9" * 65),
    f=3.40282e38, db=1.7976931348623157e308,
    c="🐍🐍", vc="emoji 👩‍👩‍👧 and ünïcödé", tx="", lt="x" * 70000,
    bin=b"ab\x00\x00", vb=b"", bl=bytes(range(256)),
    dt=date(9999, 12, 31), tm=timedelta(hours=838, minutes=59, seconds=59),
    dtm=datetime(9999, 12, 31, 23, 59, 59, 999999), dtm0=datetime(2024, 1, 1),
    ts=datetime(2038, 1, 19, 3, 14, 7, 999999), yr=2155,
    en="b'c", st="x,y,z", js='{"k": [1, 2.5, "🎉"]}',
    b1=b"\x01", b64=b"\xff" * 8, **{"my-col": 7},
)  # fmt: skip
_row(
    id=3,
    ti=-128, tiu=0, si=-32768, siu=0, mi=-8388608, miu=0,
    i=-2147483648, iu=0, bi=-9223372036854775808, biu=0,
    d65=Decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
    d10=Decimal("-0.01"), d0=Decimal("-" + "9" * 65),
    f=-1.17549e-38, db=-2.2250738585072014e-308,
    c="", vc="'quoted' \\ back\\slash \x00 nul", tx="\n\r\t", lt="",
    bin=b"\x00\x00\x00\x00", vb=b"\x00", bl=b"",
    dt=date(1000, 1, 1), tm=timedelta(hours=-838, minutes=-59, seconds=-59),
    dtm=datetime(1000, 1, 1, 0, 0, 0, 1), dtm0=datetime(1970, 1, 1),
    ts=datetime(1970, 1, 1, 0, 0, 1), yr=0,
    en="", st="", js="null", b1=b"\x00", b64=b"\x00" * 8, **{"my-col": -1},
)  # fmt: skip
_row(
    id=4,
    d65=Decimal("0E-30"), d10=Decimal("0.00"), d0=Decimal("0"), f=0.0, db=-0.0,
    dt="0000-00-00", dtm="0000-00-00 00:00:00.000000", dtm0="2020-00-00 00:00:00",
    ts="0000-00-00 00:00:00.000000", tm=timedelta(0), st="x,z", en="a",
    nn_date="0000-00-00", nn_dtm="0000-00-00 00:00:00.000000",
)  # fmt: skip
_row(
    id=5, d65=Decimal("0.000000000000000000000000000001"), d10=Decimal("1.50"),
    f=3.14159, db=0.30000000000000004, tm=timedelta(hours=-1, microseconds=1),
    dtm=datetime(1969, 12, 31, 23, 59, 59, 999999), dt=date(1, 1, 1),
    tx="😀" * 1000, dtm0="2020-02-00 00:00:00",
)  # fmt: skip


def _fastavro_roundtrip(schema: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_schema(schema)
    buf = io.BytesIO()
    schemaless_writer(buf, parsed, record)
    buf.seek(0)
    result: dict[str, Any] = schemaless_reader(buf, parsed, None)  # type: ignore[assignment]
    return result


def _value_schema(table: TableSchema) -> dict[str, Any]:
    before = row_envelope_schema(table)["fields"][1]
    value: dict[str, Any] = before["type"][1]
    return value


# --- the mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (col("a", "tinyint(4)", False), "int"),
        (col("a", "smallint(5) unsigned", False), "int"),
        (col("a", "mediumint(8) unsigned", False), "int"),
        (col("a", "int(11)", False), "int"),
        (col("a", "int(10) unsigned", False), "long"),
        (col("a", "bigint(20)", False), "long"),
        (
            col("a", "bigint(20) unsigned", False),
            {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0},
        ),
        (
            col("a", "decimal(65,30)", False, numeric_precision=65, numeric_scale=30),
            {"type": "bytes", "logicalType": "decimal", "precision": 65, "scale": 30},
        ),
        (
            col("a", "numeric(5,0)", False, data_type="numeric", numeric_precision=5),
            {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 0},
        ),
        (col("a", "float", False), "float"),
        (col("a", "double", False), "double"),
        (col("a", "double", False, data_type="real"), "double"),
        (col("a", "char(3)", False), "string"),
        (col("a", "varchar(3)", False), "string"),
        (col("a", "tinytext", False), "string"),
        (col("a", "mediumtext", False), "string"),
        (col("a", "longtext", False), "string"),
        (col("a", "json", False), "string"),
        (col("a", "enum('x')", False), "string"),
        (col("a", "set('x')", False), "string"),
        (col("a", "binary(3)", False), "bytes"),
        (col("a", "varbinary(3)", False), "bytes"),
        (col("a", "tinyblob", False), "bytes"),
        (col("a", "longblob", False), "bytes"),
        (col("a", "bit(64)", False), "bytes"),
        (col("a", "date", False), [{"type": "int", "logicalType": "date"}, "string"]),
        (
            col("a", "datetime(6)", False),
            [{"type": "long", "logicalType": "local-timestamp-micros"}, "string"],
        ),
        (
            col("a", "timestamp", False),
            [{"type": "long", "logicalType": "local-timestamp-micros"}, "string"],
        ),
        (col("a", "time(6)", False), "long"),
        (col("a", "year(4)", False), "int"),
        (col("a", "int(11)"), ["null", "int"]),
        (
            col("a", "date"),
            ["null", {"type": "int", "logicalType": "date"}, "string"],
        ),
    ],
)
def test_field_type(column: Column, expected: Any) -> None:
    assert field_type(column) == expected


def test_unknown_type_names_table_column_and_type() -> None:
    table = TableSchema("shop", "places", (col("id", "int"), col("where", "point")))
    with pytest.raises(UnsupportedColumnType, match=r"shop\.places\.where.*'point'"):
        RowCodec(table)
    with pytest.raises(UnsupportedColumnType, match=r"shop\.places\.where"):
        row_envelope_schema(table)


def test_every_field_carries_its_column_and_the_table_rebuilds() -> None:
    schema = row_envelope_schema(EDGE_TABLE)
    assert table_from_avro(schema) == EDGE_TABLE
    fields = {f[COLUMN_PROP]["name"]: f for f in _value_schema(EDGE_TABLE)["fields"]}
    assert fields["d65"][COLUMN_PROP]["column_type"] == "decimal(65,30)"
    assert fields["en"][SYMBOLS_PROP] == ["a", "b'c", ""]
    assert fields["st"][SYMBOLS_PROP] == ["x", "y", "z"]
    assert "UTC" in fields["ts"]["doc"]
    assert schema["sluice.primary_key"] == ["id"] and schema["sluice.version"] == 3


def test_envelope_shape() -> None:
    schema = row_envelope_schema(EDGE_TABLE)
    assert schema["name"] == f"sluice.row.shop.{avro_name('edge cases')}"
    names = [f["name"] for f in schema["fields"]]
    assert names == [
        "op", "before", "after", "source", "event_id", "ts_ms", "table", "schema_version",
    ]  # fmt: skip
    value = schema["fields"][1]["type"][1]
    assert schema["fields"][2]["type"] == ["null", value["name"]]  # referenced by name
    parse_schema(schema)  # valid Avro


@pytest.mark.parametrize("name", ["my-col", "has space", "prénom", "1st", "", "a.b", "int", "日本"])
def test_avro_names_are_valid_and_distinct(name: str) -> None:
    sanitized = avro_name(name, type_name=True)
    parse_schema(
        {"type": "record", "name": sanitized, "fields": [{"name": sanitized, "type": "int"}]}
    )
    assert sanitized != avro_name(name + "x")
    assert avro_name("ok_name") == "ok_name"
    assert avro_name("int") == "int" and avro_name("int", type_name=True) != "int"


def test_similar_column_names_get_distinct_fields() -> None:
    table = TableSchema("d", "t", (col("a-b", "int"), col("a b", "int"), col("a_b", "int")))
    assert len(set(field_names(table))) == 3
    assert table_from_avro(row_envelope_schema(table)) == table


def test_sql_list_members() -> None:
    assert sql_list_members("enum('a','b''c','',',')") == ["a", "b'c", "", ","]
    assert sql_list_members("set('x')") == ["x"]


def test_shortest_float32_gives_back_what_mysql_printed() -> None:
    for printed in (3.14159, 1.1, -1.17549e-38, 3.40282e38, 0.1, 1.4013e-45, 123456.0):
        assert shortest_float32(_f32(printed)) == printed
    assert shortest_float32(_f32(3.1415927)) == 3.1415927  # a binlog value: all 8 digits kept


def _f32(x: float) -> float:
    import struct

    result: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return result


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)])
def test_varint(n: int) -> None:
    with pytest.raises(OverflowError):
        write_long(2**63)
    with pytest.raises(OverflowError):
        write_long(-(2**63) - 1)
    buf = io.BytesIO()
    schemaless_writer(buf, "long", n)
    assert write_long(n) == buf.getvalue()
    assert read_long(write_long(n) + b"junk", 0) == (n, len(buf.getvalue()))


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("row", EDGE_ROWS, ids=[f"row{r[0]}" for r in EDGE_ROWS])
def test_edge_rows_round_trip_through_fastavro(row: tuple[Any, ...]) -> None:
    codec = RowCodec(EDGE_TABLE)
    record = _fastavro_roundtrip(_value_schema(EDGE_TABLE), codec.to_avro(row))
    assert codec.from_avro(record) == row
    _assert_same_types(codec.from_avro(record), row)


@pytest.mark.parametrize("row", EDGE_ROWS, ids=[f"row{r[0]}" for r in EDGE_ROWS])
def test_fast_codec_writes_what_fastavro_writes(row: tuple[Any, ...]) -> None:
    event = RowEvent(
        Op.UPDATE,
        EDGE_TABLE,
        before=EDGE_ROWS[0],
        after=row,
        source=SourcePosition("reader-1", "0/3", "42", "bin.000001", 4, "0-1-9", 2, 10**12),
        ts_ms=1_700_000_000_123,
    )
    schema = row_envelope_schema(EDGE_TABLE)
    parsed = parse_schema(schema)
    codec, fast = RowCodec(EDGE_TABLE), RowEnvelopeCodec(EDGE_TABLE)
    record = {
        "op": "UPDATE",
        # Branches named, as RowCodec's zero-date tuples cannot pass fastavro's validator.
        "before": (codec.value_record_name, codec.to_avro(EDGE_ROWS[0])),
        "after": (codec.value_record_name, codec.to_avro(row)),
        "source": {
            "task": "reader-1", "chunk": "0/3", "restore_value": "42", "file": "bin.000001",
            "pos": 4, "gtid": "0-1-9", "row": 2, "seq": 10**12,
        },
        "event_id": event.event_id,
        "ts_ms": event.ts_ms,
        "table": "shop.edge cases",
        "schema_version": 3,
    }  # fmt: skip
    buf = io.BytesIO()
    schemaless_writer(buf, parsed, record)
    assert fast.encode(event) == buf.getvalue()
    decoded = fast.decode(buf.getvalue(), 0)
    assert decoded == event
    assert decoded.after is not None
    _assert_same_types(decoded.after, row)


def _assert_same_types(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    """Equal is not enough: PyMySQL must get a date, not a datetime, and bytes, not str."""
    for column, g, w in zip(EDGE_COLUMNS, got, want, strict=True):
        assert type(g) is type(w), (column.name, g, w)
        if isinstance(w, Decimal):
            assert g.as_tuple() == w.as_tuple(), (column.name, g, w)  # same scale: 1.50


def test_empty_string_and_null_stay_distinct() -> None:
    table = TableSchema("d", "t", (col("s", "varchar(5)"), col("b", "varbinary(5)")))
    fast = RowEnvelopeCodec(table)
    for row in [("", b""), (None, None)]:
        encoded = fast.encode_values(row)
        assert fast.decode_values(encoded, 0) == (row, len(encoded))


def test_wrong_python_type_names_the_column() -> None:
    amount = col("amount", "decimal(5,2)", numeric_precision=5, numeric_scale=2)
    fast = RowEnvelopeCodec(TableSchema("d", "t", (col("id", "int", False), amount)))
    with pytest.raises(SerdeError, match=r"d\.t\.amount \(decimal\(5,2\)\).*str value '12.50'"):
        fast.encode_values((1, "12.50"))
    with pytest.raises(SerdeError, match=r"d\.t\.amount.*more than 2 decimal places"):
        fast.encode_values((1, Decimal("1.234")))
    with pytest.raises(SerdeError, match=r"d\.t\.amount.*more than 5 digits"):
        fast.encode_values((1, Decimal("1234.00")))
    with pytest.raises(SerdeError, match="row has 1 values, schema version 1 has 2 columns"):
        fast.encode_values((1,))
    with pytest.raises(SerdeError, match=r"d\.t\.id \(int\).*NoneType"):
        fast.encode_values((None, Decimal("1.00")))  # NULL in a NOT NULL column
