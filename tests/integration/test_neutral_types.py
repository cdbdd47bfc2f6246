"""Neutral types on a real MariaDB (issue 15 item 1): a column another family declared gets
a MySQL declaration that holds its values exactly, and a source that is not MySQL at all
(streamreader, whose columns carry only neutral types) copies exactly into MySQL through
Kafka."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from coordinator.connectors import build_sink
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from coordinator.mysql_client import quote_ident
from schemas import types as t
from schemas.events import Op, RowEvent, SourcePosition
from schemas.mysql_types import mysql_declaration
from schemas.table import Column, TableSchema
from schemas.types import LogicalType
from source_connectors.stream import STREAM_TYPES, stream_value
from testkit.mysql import jdbc_url, mysql_connect, mysql_job, mysql_params
from testkit.sinks import commit_once

pytestmark = pytest.mark.integration

# (neutral type, the values of it a MySQL target must give back unchanged)
EXTREMES: list[tuple[LogicalType, list[object]]] = [
    (t.int_type(8), [-128, 127]),
    (t.int_type(24, signed=False), [0, 2**24 - 1]),
    (t.int_type(64), [-(2**63), 2**63 - 1]),
    (t.int_type(64, signed=False), [2**64 - 1]),
    (t.decimal_type(65, 30), [Decimal("-" + "9" * 35 + "." + "9" * 30)]),
    (t.decimal_type(100, 50), [Decimal("1" * 50 + "." + "2" * 50)]),  # beyond MySQL: text
    (t.simple(t.NUMERIC), [Decimal("3.14159265358979323846264338327950288419716939937510")]),
    (t.simple(t.FLOAT64), [2.2250738585072014e-308, -1.7976931348623157e308]),
    (LogicalType(t.STRING, length=255), ["😀" * 255]),
    (LogicalType(t.STRING, length=5000), ["😀" * 5000]),
    (t.simple(t.STRING), ["x" * 70_000]),
    (LogicalType(t.BYTES, length=255), [bytes(range(256))[:255]]),
    (LogicalType(t.BYTES, length=100_000), [bytes(range(256)) * 390]),
    (t.simple(t.DATE), [date(1000, 1, 1), date(9999, 12, 31)]),
    (LogicalType(t.TIMESTAMP, fsp=6), [datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]),
    (LogicalType(t.TIMESTAMP_TZ, fsp=3), [datetime(1970, 1, 1, 0, 0, 0, 1000), datetime(2200, 1, 1)]),
    (LogicalType(t.TIME, fsp=6), [timedelta(hours=-838, minutes=-59, seconds=-59), timedelta(microseconds=1)]),
    (t.simple(t.UUID), ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    (t.simple(t.JSON), ['{"a": [1, 2, {"b": null}], "ü": "😀"}']),
    (LogicalType(t.ENUM, symbols=("a", "it's", "")), ["it's", ""]),
    (LogicalType(t.SET, symbols=("x", "y", "w")), ["x,w"]),
    (LogicalType(t.BIT, bits=64), [b"\xff" * 8, b"\x00" * 8]),
    (LogicalType(t.ARRAY, element=t.decimal_type(5, 1)), [[Decimal("1.5"), None, Decimal("-3.0")]]),
    (t.simple(t.INTERVAL), ["1 year 2 mons 3 days 04:05:06.789"]),
    (t.simple(t.OPAQUE), ["fe80::1/64"]),
]  # fmt: skip


def test_the_mysql_sink_writes_every_neutral_kind_exactly(mysql_url, mysql_database, unique_name):
    """Rows of another family's table (every neutral kind, extreme values) through the real
    MySQL sink, its XA phases and all, into columns mysql_declaration declared."""
    conn = mysql_connect(mysql_url, mysql_database)
    columns = [Column("n", "int", "integer", False, logical=t.int_type(32), dialect="postgresql")]
    columns += [
        Column(f"v{i}", lt.kind, lt.describe(), logical=lt, dialect="postgresql")
        for i, (lt, _) in enumerate(EXTREMES)
    ]
    source = TableSchema("app", "extremes", tuple(columns), ("n",))
    with conn.cursor() as cur:
        decls = ", ".join(f"{c.name} {mysql_declaration(c.logical)}" for c in columns)
        cur.execute(f"CREATE TABLE extremes ({decls}, PRIMARY KEY (n)) DEFAULT CHARSET=utf8mb4")
    width = max(len(values) for _, values in EXTREMES)
    rows = [
        (n, *(values[n] if n < len(values) else None for _, values in EXTREMES))
        for n in range(width)
    ]
    sink = build_sink(
        build_job(mysql_job(mysql_url, mysql_database, "extremes", "extremes", name=unique_name))
    )
    sink.check()
    writer = sink.build_writer("writer-0")
    xid = f"sl-{unique_name[-8:]}-writer-0-1"
    events = [
        RowEvent(Op.INSERT, source, None, row, SourcePosition("reader-0", seq=n), 0)
        for n, row in enumerate(rows)
    ]
    commit_once(writer, xid, events, {"topic:0": len(rows)})
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM extremes ORDER BY n")
        got = cur.fetchall()
    conn.close()
    assert len(got) == width
    for i, (lt, values) in enumerate(EXTREMES):
        declaration = mysql_declaration(lt)
        want = [_text(v) for v in values] if declaration == "longtext" else values
        have = [row[i + 1] for row in got[: len(values)]]
        assert have == want, f"{lt.describe()} as {declaration}: {have!r:.300}"


def _text(value: object) -> str:
    if isinstance(value, list):  # arrays land as JSON
        return json.dumps([None if v is None else str(v) for v in value])
    return str(value)


def test_a_source_with_only_neutral_types_copies_exactly_into_mysql(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    kinds = ["id", "int", "bigint", "string", "double", "decimal", "date", "datetime"]
    kinds += ["boolean", "bytes"]
    columns = [{"name": f"c_{k}", "type": k} for k in kinds]
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        decls = ", ".join(
            f"{quote_ident(c['name'])} {mysql_declaration(STREAM_TYPES[c['type']])}"
            for c in columns
        )
        cur.execute(f"CREATE TABLE dst ({decls}, PRIMARY KEY (c_id)) DEFAULT CHARSET=utf8mb4")
    p = mysql_params(mysql_url)
    job = {
        "job": {
            "name": unique_name,
            "content": [
                {
                    "reader": {
                        "name": "streamreader",
                        "parameter": {
                            "column": columns,
                            "sliceRecordCount": [1500, 2500],
                            "seed": 7,
                        },
                    },
                    "writer": {
                        "name": "mysqlwriter",
                        "parameter": {
                            "username": p["user"],
                            "password": p["password"],
                            "connection": [
                                {"jdbcUrl": jdbc_url(mysql_url, mysql_database), "table": ["dst"]}
                            ],
                            "column": ["*"],
                            "writeMode": "insert",
                        },
                    },
                }
            ],
            "setting": {
                "speed": {"readerChannel": 2, "writerChannel": 2},
                "restore": {"checkpointInterval": 1000},
            },
        }
    }
    summary = LocalJobRunner(
        build_job(json.loads(json.dumps(job))), kafka_bootstrap, quiet=True
    ).run()
    assert summary.status == "finished"
    expected = {}
    for channel, rows in enumerate((1500, 2500)):
        for n in range(rows):
            rng = random.Random(f"7/{channel}/{n}")
            gid = n * 2 + channel
            row = tuple(stream_value(k, rng, gid) for k in kinds)
            expected[row[0]] = row
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM dst")
        got = {r[0]: r for r in cur.fetchall()}
    conn.close()
    assert len(got) == len(expected) == 4000
    wrong = [k for k, row in expected.items() if got.get(k) != row]
    assert not wrong, (
        f"{len(wrong)} rows differ, e.g. {expected[wrong[0]]!r} vs {got.get(wrong[0])!r}"
    )
