"""kafkawriter's output shapes and config, without servers: what a consumer would decode."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from coordinator.errors import ConfigError, TaskFailed
from coordinator.job import build_job
from coordinator.job.problems import JobConfigError
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema
from sink_connectors.kafka.formats import RecordEncoder
from sink_connectors.kafka.writer import TopicRouter

TABLE = TableSchema(
    "shop",
    "orders",
    (
        Column("id", "bigint", "bigint(20)", nullable=False),
        Column("amount", "decimal", "decimal(12,2)", numeric_precision=12, numeric_scale=2),
        Column("d", "date", "date"),
        Column("dt", "datetime", "datetime", datetime_precision=0),
        Column("dt6", "datetime", "datetime(6)", datetime_precision=6),
        Column("ts", "timestamp", "timestamp(6)", datetime_precision=6),
        Column("t", "time", "time"),
        Column("flag", "bit", "bit(1)"),
        Column("bits", "bit", "bit(12)"),
        Column("raw", "varbinary", "varbinary(8)"),
        Column("name", "varchar", "varchar(20)"),
    ),
    primary_key=("id",),
)
ROW = (
    7,
    Decimal("-12.50"),
    date(2024, 5, 1),
    datetime(2024, 5, 1, 12, 0, 1),
    datetime(2024, 5, 1, 12, 0, 1, 250000),
    datetime(2024, 5, 1, 12, 0, 1, 500000),
    timedelta(hours=-1, microseconds=5),
    b"\x01",
    b"\x0a\x01",
    b"\x00\xff",
    "Zoë",
)
SRC = SourcePosition("reader-0", file="binlog.000003", pos=4015, gtid="0-11-42", row=2, seq=9)


def event(op: Op, before: tuple | None, after: tuple | None) -> RowEvent:
    return RowEvent(op, TABLE, before, after, SRC, 1714564801000)


def decode(records):
    return [
        (
            json.loads(r.key) if r.key else None,
            json.loads(r.value) if r.value is not None else None,
        )
        for r in records
    ]


def test_debezium_insert_matches_debeziums_mysql_json_layout():
    enc = RecordEncoder("debezium", server_name="dbserver1")
    [(key, value)] = decode(enc.records("t", event(Op.INSERT, None, ROW)))
    assert key == {"id": 7}
    assert set(value) == {"before", "after", "source", "op", "ts_ms", "transaction"}
    assert value["op"] == "c" and value["before"] is None and value["transaction"] is None
    after = value["after"]
    assert after["amount"] == "-12.50"
    assert after["d"] == (date(2024, 5, 1) - date(1970, 1, 1)).days
    assert after["dt"] == 1714564801000  # DATETIME(0): epoch ms, read as UTC
    assert after["dt6"] == 1714564801250000  # DATETIME(6): epoch µs
    assert after["ts"] == "2024-05-01T12:00:01.5Z"
    assert after["t"] == -3599999995
    assert after["flag"] is True
    assert base64.b64decode(after["bits"]) == b"\x01\x0a"  # little-endian, as Debezium
    assert base64.b64decode(after["raw"]) == b"\x00\xff"
    assert after["name"] == "Zoë"
    src = value["source"]
    assert src == {
        "version": src["version"],
        "connector": "mysql",
        "name": "dbserver1",
        "ts_ms": 1714564801000,
        "snapshot": "false",
        "db": "shop",
        "sequence": None,
        "table": "orders",
        "server_id": 11,
        "gtid": "0-11-42",
        "file": "binlog.000003",
        "pos": 4015,
        "row": 2,
        "thread": None,
        "query": None,
    }


def test_debezium_delete_is_followed_by_a_tombstone_and_a_key_change_splits():
    enc = RecordEncoder("debezium")
    out = decode(enc.records("t", event(Op.DELETE, ROW, None)))
    assert [(k, v and v["op"]) for k, v in out] == [({"id": 7}, "d"), ({"id": 7}, None)]
    assert out[0][1]["before"]["id"] == 7 and out[0][1]["after"] is None
    moved = (8, *ROW[1:])
    out = decode(enc.records("t", event(Op.UPDATE, ROW, moved)))
    assert [(k, v and v["op"]) for k, v in out] == [
        ({"id": 7}, "d"),
        ({"id": 7}, None),
        ({"id": 8}, "c"),
    ]
    same = decode(
        RecordEncoder("debezium", tombstones=False).records("t", event(Op.DELETE, ROW, None))
    )
    assert len(same) == 1


def test_debezium_decimal_modes_and_zero_dates():
    row = list(ROW)
    row[2], row[3] = "0000-00-00", "0000-00-00 00:00:00"
    [(_, v)] = decode(
        RecordEncoder("debezium", decimal="precise").records(
            "t", event(Op.SNAPSHOT, None, tuple(row))
        )
    )
    assert v["op"] == "r" and v["source"]["snapshot"] == "true"
    unscaled = int.from_bytes(base64.b64decode(v["after"]["amount"]), "big", signed=True)
    assert unscaled == -1250
    assert v["after"]["d"] is None and v["after"]["dt"] is None
    [(_, v)] = decode(
        RecordEncoder("debezium", decimal="double").records("t", event(Op.INSERT, None, ROW))
    )
    assert v["after"]["amount"] == -12.5


def test_paving_is_flinkx_flat_shape_and_json_its_nested_one():
    upd = event(Op.UPDATE, ROW, (7, Decimal("1.00"), *ROW[2:]))
    [(key, flat)] = decode(RecordEncoder("paving", fields=["id", "amount", "d"]).records("t", upd))
    assert key == {"id": 7}
    assert flat == {
        "schema": "shop",
        "table": "orders",
        "ts": (1714564801000 << 22) | 9,
        "opTime": 1714564801000,
        "type": "UPDATE",
        "before_id": 7,
        "before_amount": "-12.50",
        "before_d": "2024-05-01",
        "after_id": 7,
        "after_amount": "1.00",
        "after_d": "2024-05-01",
    }
    [(_, nested)] = decode(RecordEncoder("json").records("t", event(Op.SNAPSHOT, None, ROW)))
    assert nested["type"] == "INSERT" and nested["before"] is None
    assert nested["after"]["dt6"] == "2024-05-01 12:00:01.250000"
    assert nested["after"]["t"] == "-00:59:59.999995"


def test_unknown_field_or_key_column_names_the_json_path():
    with pytest.raises(TaskFailed, match=r"writer\.parameter\.tableFields: column 'nope'"):
        RecordEncoder("json", fields=["id", "nope"]).records("t", event(Op.INSERT, None, ROW))
    with pytest.raises(TaskFailed, match=r"writer\.parameter\.key: column 'k'"):
        RecordEncoder("json", key=["k"]).records("t", event(Op.INSERT, None, ROW))


def test_topic_patterns_and_maps():
    assert (
        TopicRouter("cdc.${schema}.${table}").topic("shop", "order lines") == "cdc.shop.order_lines"
    )
    router = TopicRouter({"shop.orders": "o", "items": "i-${schema}", "*": "rest"})
    assert [router.topic("shop", t) for t in ("orders", "items", "x")] == ["o", "i-shop", "rest"]
    with pytest.raises(ConfigError, match=r"writer\.parameter\.topic: no topic for table a\.b"):
        TopicRouter({"x": "y"}).topic("a", "b")


def _job(reader: dict, writer: dict) -> dict:
    return {
        "job": {
            "content": [
                {
                    "reader": {"name": "binlogreader", "parameter": reader},
                    "writer": {"name": "kafkawriter", "parameter": writer},
                }
            ]
        }
    }


READER = {"jdbcUrl": "jdbc:mysql://127.0.0.1:3306/shop", "table": ["orders"]}


def test_bad_config_is_one_error_per_json_path():
    with pytest.raises(JobConfigError) as e:
        build_job(_job(READER, {"topic": "a.${tabel}", "format": "xml"}))
    text = str(e.value)
    assert "job.content[0].writer.parameter.topic" in text and "${tabel}" in text
    assert "job.content[0].writer.parameter.format" in text and "debezium" in text
    with pytest.raises(JobConfigError, match=r"writer\.parameter\.topic: .*required"):
        build_job(_job(READER, {}))
    with pytest.raises(JobConfigError, match=r"writer\.parameter\.topic.*not a Kafka topic"):
        build_job(_job(READER, {"topic": "bad topic!"}))


def test_format_defaults_to_the_readers_paving_data():
    job = build_job(_job({**READER, "pavingData": True}, {"topic": "t"}))
    assert job.writer.config.format_for(job.reader.config) == "paving"
    assert not any("pavingData" in w for w in job.warnings)
    job = build_job(_job(READER, {"topic": "t"}))
    assert job.writer.config.format_for(job.reader.config) == "debezium"


def test_the_example_job_is_valid():
    from pathlib import Path

    from coordinator.job import load_job

    job = load_job(Path(__file__).resolve().parents[2] / "examples" / "binlog_to_kafka.json")
    assert job.writer.name == "kafkawriter" and not job.warnings
    assert job.writer.config.format_for(job.reader.config) == "debezium"


def test_streamwriter_prints_flinkx_flat_rows_when_the_reader_paves(capsys):
    from types import SimpleNamespace

    from sink_connectors.base import SinkContext
    from sink_connectors.stream import StreamSink
    from sink_connectors.stream_config import StreamWriterConfig

    context = SinkContext("j", 1, False, reader_config=SimpleNamespace(pavingData=True))
    writer = StreamSink(StreamWriterConfig(), context).build_writer("writer-0")
    writer.write([event(Op.DELETE, ROW, None)])
    assert writer.flush() == []  # what the runner calls before the offsets commit
    [line] = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["type"] == "DELETE" and row["before_id"] == 7 and row["after_id"] is None
