"""Every MySQL type survives MariaDB -> PyMySQL -> EventSerde -> PyMySQL -> MariaDB exactly.

Rows with edge values are read from one table, encoded and decoded through the Kafka-topic
schema registry (a second registry instance decodes, as another process would), written
into a table of the same definition with PyMySQL parameters, and the two tables must be
identical by CHECKSUM TABLE and row by row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import TableNotFound, load_table_schema
from schemas.registry import KafkaTopicSchemaRegistry
from schemas.serde import EventSerde
from testkit.mysql import mysql_connect, mysql_params

pytestmark = pytest.mark.integration

ALL_TYPES = """
CREATE TABLE src (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  boo BOOLEAN,
  d65 DECIMAL(65,30), d10 DECIMAL(10,2), d0 DECIMAL(65,0), num NUMERIC(5,5),
  f FLOAT, db DOUBLE, re REAL,
  c CHAR(10), vc VARCHAR(255), tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  lat VARCHAR(20) CHARACTER SET latin1,
  bin BINARY(4), vb VARBINARY(16), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  dt DATE, tm TIME(6), tm0 TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL, yr YEAR,
  en ENUM('a','b''c',''), en2 ENUM('x','y'), st SET('x','y','z'), js JSON,
  b1 BIT(1), b64 BIT(64), b5 BIT(5),
  `my-col` INT, `sp ace` VARCHAR(10), `ünï` INT,
  uu UUID, ip INET6,
  nn_dt DATE NOT NULL, nn_dtm DATETIME(6) NOT NULL, nn_vc VARCHAR(10) NOT NULL DEFAULT ''
) DEFAULT CHARSET=utf8mb4
"""

# Inserted with sql_mode='' so zero dates and the invalid ENUM value are accepted.
EDGE_ROWS: list[dict[str, Any]] = [
    {"id": 1, "nn_dt": "2024-02-29", "nn_dtm": "2024-02-29 12:00:00"},  # NULL everywhere else
    {
        "id": 2, "ti": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607,
        "miu": 16777215, "i": 2147483647, "iu": 4294967295, "bi": 9223372036854775807,
        "biu": 18446744073709551615, "boo": 1,
        "d65": "99999999999999999999999999999999999.999999999999999999999999999999",
        "d10": "99999999.99", "d0": "9" * 65, "num": "0.99999",
        "f": "3.40282e38", "db": "1.7976931348623157e308", "re": "0.30000000000000004",
        "c": "🐍🐍", "vc": "emoji 👩‍👩‍👧 ünïcödé", "tt": "tiny", "tx": "😀" * 1000,
        "mt": "m" * 70000, "lt": "l" * 300000, "lat": "café",
        "bin": b"ab", "vb": b"\xff\x00\xfe", "tb": bytes(range(256)), "bl": b"\x00" * 1000,
        "mb": bytes(range(256)) * 300, "lb": b"\xfe" * 100000,
        "dt": "9999-12-31", "tm": "838:59:59.000000", "tm0": "838:59:59",
        "dtm": "9999-12-31 23:59:59.999999", "dtm0": "9999-12-31 23:59:59",
        "ts": "2038-01-19 03:14:07.999999", "yr": 2155,
        "en": "b'c", "en2": "y", "st": "x,y,z", "js": '{"k": [1, 2.5, "🎉"], "n": null}',
        "b1": b"\x01", "b64": b"\xff" * 8, "b5": b"\x1f",
        "my-col": 7, "sp ace": "s p", "ünï": 8,
        "uu": "123e4567-e89b-12d3-a456-426614174000", "ip": "2001:db8::ff00:42:8329",
        "nn_dt": "0000-00-00", "nn_dtm": "0000-00-00 00:00:00", "nn_vc": "x",
    },
    {
        "id": 3, "ti": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
        "i": -2147483648, "iu": 0, "bi": -9223372036854775808, "biu": 0, "boo": 0,
        "d65": "-99999999999999999999999999999999999.999999999999999999999999999999",
        "d10": "-0.01", "d0": "-" + "9" * 65, "num": "-0.00001",
        "f": "-1.17549e-38", "db": "-2.2250738585072014e-308", "re": "-1e-300",
        "c": "", "vc": "'q' \"d\" \\ back\\slash \x00 nul\n\r\t\x1a", "tt": "", "tx": "",
        "mt": "", "lt": "", "lat": "",
        "bin": b"\x00\x00\x00\x00", "vb": b"", "tb": b"", "bl": b"", "mb": b"", "lb": b"",
        "dt": "1000-01-01", "tm": "-838:59:59.000000", "tm0": "-838:59:59",
        "dtm": "1000-01-01 00:00:00.000001", "dtm0": "1000-01-01 00:00:00",
        "ts": "1970-01-01 00:00:01", "yr": 1901,
        "en": "", "en2": "bogus", "st": "", "js": "null",
        "b1": b"\x00", "b64": b"\x00" * 8, "b5": b"\x00",
        "my-col": -1, "sp ace": "", "ünï": 0,
        "uu": "00000000-0000-0000-0000-000000000000", "ip": "::",
        "nn_dt": "2020-00-00", "nn_dtm": "2020-02-00 00:00:00.000000", "nn_vc": "",
    },
    {
        "id": 4, "d65": "0", "d10": "1.5", "num": "0", "f": "3.14159", "db": "0", "re": "-0",
        "dt": "0000-00-00", "tm": "-00:00:00.000001", "tm0": "00:00:00",
        "dtm": "0000-00-00 00:00:00.000000", "dtm0": "2020-00-00 00:00:00",
        "ts": "0000-00-00 00:00:00", "yr": 0, "en": "a", "st": "z,x", "js": "[]",
        "b64": b"\x80" + b"\x00" * 7, "c": "trailing  ", "vc": "trailing  ",
        "nn_dt": "0001-01-01", "nn_dtm": "2020-02-30 00:00:00",
    },
    {
        "id": 5, "f": "1.1", "db": "1.2345678901234567", "tm": "12:34:56.789012",
        "dtm": "1969-12-31 23:59:59.999999", "dt": "2020-02-00", "ts": "2001-02-03 04:05:06.7",
        "yr": 2000, "st": "y", "b1": b"\x01", "b64": b"\x00\x00\x00\x00\x00\x00\x00\x01",
        "nn_dt": "2024-01-01", "nn_dtm": "2024-01-01 00:00:00.5",
    },
]  # fmt: skip


@pytest.fixture
def conns(mysql_url: str, mysql_database: str) -> Iterator[tuple[Any, Any]]:
    """A reader and a writer connection, both as Sluice's: UTC sessions, zero dates allowed."""
    pair = (mysql_connect(mysql_url, mysql_database), mysql_connect(mysql_url, mysql_database))
    for conn in pair:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00', sql_mode = ''")
    yield pair
    for conn in pair:
        conn.close()


@pytest.fixture
def schema_topic(kafka_bootstrap: str, unique_name: str) -> Iterator[str]:
    yield unique_name
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_topics([unique_name], operation_timeout=30).values():
        with contextlib.suppress(KafkaException):
            future.result(30)


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_every_type_round_trips_exactly(
    conns: tuple[Any, Any], mysql_database: str, kafka_bootstrap: str, schema_topic: str
) -> None:
    reader, writer = conns
    with reader.cursor() as cur:
        cur.execute(ALL_TYPES)
        cur.execute("CREATE TABLE dst LIKE src")
        for values in EDGE_ROWS:
            names = ", ".join(f"`{name}`" for name in values)
            marks = ", ".join(["%s"] * len(values))
            cur.execute(f"INSERT INTO src ({names}) VALUES ({marks})", tuple(values.values()))
    table = load_table_schema(reader, mysql_database, "src")
    source_rows = _rows(reader, "SELECT * FROM src ORDER BY id")
    assert len(source_rows) == len(EDGE_ROWS)

    encoder = EventSerde(KafkaTopicSchemaRegistry(kafka_bootstrap, schema_topic))
    decoder = EventSerde(KafkaTopicSchemaRegistry(kafka_bootstrap, schema_topic))
    decoded_rows = []
    for seq, row in enumerate(source_rows):
        event = RowEvent(Op.SNAPSHOT, table, None, row, SourcePosition("reader-0", seq=seq), 0)
        decoded = decoder.decode(encoder.encode(event))
        assert isinstance(decoded, RowEvent) and decoded.after is not None
        assert decoded.after == row
        assert [type(v) for v in decoded.after] == [type(v) for v in row]
        assert decoded.table == table
        decoded_rows.append(decoded.after)

    marks = ", ".join(["%s"] * len(table.columns))
    with writer.cursor() as cur:
        cur.executemany(f"INSERT INTO dst VALUES ({marks})", decoded_rows)
    assert _rows(reader, "SELECT * FROM dst ORDER BY id") == source_rows
    checksums = dict(_rows(reader, "CHECKSUM TABLE src, dst EXTENDED"))
    assert checksums[f"{mysql_database}.src"] == checksums[f"{mysql_database}.dst"]
    assert checksums[f"{mysql_database}.src"] is not None


def test_load_table_schema(conns: tuple[Any, Any], mysql_url: str, mysql_database: str) -> None:
    reader, _ = conns
    with reader.cursor() as cur:
        cur.execute(ALL_TYPES)
        cur.execute("CREATE TABLE nopk (a INT NULL, b INT NOT NULL, c INT NOT NULL, UNIQUE (a),"
                    " UNIQUE KEY kb (c, b))")  # fmt: skip
        cur.execute("CREATE TABLE composite (x INT, y VARCHAR(3), z INT, PRIMARY KEY (y, x))")
        cur.execute("CREATE TABLE nokey (x INT)")
    table = load_table_schema(reader, mysql_database, "src", version=4)
    assert table.version == 4 and table.primary_key == ("id",)
    assert table.column_names[:3] == ("id", "ti", "tiu") and table.column_names[-1] == "nn_vc"
    by_name = {c.name: c for c in table.columns}
    assert by_name["js"].data_type == "json" and by_name["js"].column_type == "longtext"
    assert by_name["lt"].data_type == "longtext"
    assert by_name["biu"].unsigned and by_name["biu"].data_type == "bigint"
    assert (by_name["d65"].numeric_precision, by_name["d65"].numeric_scale) == (65, 30)
    assert by_name["dtm"].datetime_precision == 6 and by_name["tm0"].datetime_precision == 0
    assert by_name["vc"].character_set == "utf8mb4" and by_name["lat"].character_set == "latin1"
    assert not by_name["id"].nullable and by_name["ti"].nullable
    assert by_name["en"].column_type == "enum('a','b''c','')"
    assert load_table_schema(reader, mysql_database, "nopk").primary_key == ("c", "b")
    assert load_table_schema(reader, mysql_database, "composite").primary_key == ("y", "x")
    assert load_table_schema(reader, mysql_database, "nokey").primary_key == ()
    dict_conn = pymysql.connect(
        **mysql_params(mysql_url),
        database=mysql_database,
        cursorclass=pymysql.cursors.DictCursor,
    )
    try:  # whatever cursor class the caller's connection uses
        assert load_table_schema(dict_conn, mysql_database, "src", version=4) == table
    finally:
        dict_conn.close()
    with pytest.raises(TableNotFound, match=f"{mysql_database}.missing does not exist"):
        load_table_schema(reader, mysql_database, "missing")
    with pytest.raises(LookupError):
        load_table_schema(reader, mysql_database, "missing")
