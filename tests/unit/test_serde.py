"""EventSerde (Confluent wire format) and the registry clients, without Kafka."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from coordinator.errors import SluiceError
from schemas.avro_types import RowCodec, row_envelope_schema
from schemas.control import CheckpointTrigger, TaskState, TaskStatus, WriterAck, load_avsc
from schemas.errors import SchemaNotFound, SchemaRegistryError
from schemas.events import Barrier, Op, RowEvent, SourcePosition
from schemas.registry import (
    ConfluentSchemaRegistry,
    InMemorySchemaRegistry,
    make_registry,
    schema_fingerprint_id,
)
from schemas.serde import EventSerde, SerdeError
from schemas.table import Column, TableSchema
from tests.unit.test_avro_types import EDGE_ROWS, EDGE_TABLE

ORDERS = TableSchema(
    "shop",
    "orders",
    (
        Column("id", "int", "int(11)", False),
        Column("amount", "decimal", "decimal(10,2)", True, 10, 2),
        Column("at", "datetime", "datetime(6)", True, datetime_precision=6),
    ),
    primary_key=("id",),
)


def event(op: Op, before: Any, after: Any, seq: int = 1, table: TableSchema = ORDERS) -> RowEvent:
    return RowEvent(
        op, table, before, after, SourcePosition("reader-0", seq=seq), 1_700_000_000_000
    )


@pytest.fixture
def serde() -> EventSerde:
    return EventSerde(InMemorySchemaRegistry())


def test_wire_format_header(serde: EventSerde) -> None:
    data = serde.encode(event(Op.INSERT, None, (1, Decimal("9.99"), None)))
    schema_id = schema_fingerprint_id(row_envelope_schema(ORDERS))
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == schema_id
    registry = serde.registry
    assert isinstance(registry, InMemorySchemaRegistry)
    assert registry.subjects == {"sluice.row.shop.orders-value": {schema_id}}


@pytest.mark.parametrize(
    "ev",
    [
        event(Op.SNAPSHOT, None, (1, Decimal("1.50"), datetime(2024, 1, 1, 0, 0, 0, 1))),
        event(Op.INSERT, None, (2, None, None)),
        event(Op.UPDATE, (3, Decimal("-1.00"), None), (3, Decimal("2.00"), None)),
        event(Op.DELETE, (4, Decimal("0.00"), "0000-00-00 00:00:00.000000"), None),
        RowEvent(
            Op.INSERT,
            ORDERS,
            None,
            (5, None, None),
            SourcePosition("reader-3", "2/4", "x'y", "mysql-bin.000042", 2**40, "0-1-77", 3, 2**62),
            -1,
        ),
    ],
    ids=["snapshot", "insert", "update", "delete", "full-source"],
)
def test_row_events_round_trip(serde: EventSerde, ev: RowEvent) -> None:
    decoded = serde.decode(serde.encode(ev))
    assert decoded == ev
    assert isinstance(decoded, RowEvent) and decoded.event_id == ev.event_id


def test_edge_rows_round_trip_in_a_fresh_process_view(serde: EventSerde) -> None:
    """A second serde on the same registry (another process) decodes with no prior state."""
    other = EventSerde(serde.registry)
    for i, row in enumerate(EDGE_ROWS):
        ev = event(Op.INSERT, None, row, seq=i, table=EDGE_TABLE)
        decoded = other.decode(serde.encode(ev))
        assert decoded == ev
        assert isinstance(decoded, RowEvent) and decoded.table == EDGE_TABLE


@pytest.mark.parametrize(
    "record",
    [
        Barrier(7, "reader-1"),
        Barrier(2**40, "reader-2", final=True, position={"file": "b.000001", "pos": "4"}),
        CheckpointTrigger("job-a", 12, 1_700_000_000_000),
        WriterAck("job-a", 12, "writer-0", 5000, {"t:0": 17, "t:1": 0}, 1, "xa-1", ["0"]),
        WriterAck("job-a", 13, "writer-1", 0),
        TaskStatus("job-a", "reader-0", TaskState.RUNNING, "w1", 3, None, {"rows/s": 1.5}, 9),
        TaskStatus("job-a", "reader-0", TaskState.FAILED, error="boom: table gone"),
    ],
)
def test_control_records_round_trip(serde: EventSerde, record: Any) -> None:
    decoded = serde.decode(serde.encode(record))
    assert decoded == record and type(decoded) is type(record)


def test_control_schemas_load_from_package_data() -> None:
    for name in ("Barrier", "CheckpointTrigger", "WriterAck", "TaskStatus", "SourcePosition", "Op"):
        parse_schema(load_avsc(name))
    assert load_avsc("TaskStatus")["fields"][2]["type"]["symbols"] == [s.value for s in TaskState]


def test_bytes_are_plain_avro_for_any_reader(serde: EventSerde) -> None:
    """What a Confluent deserializer does: strip the header, read with the registered schema."""
    ev = event(Op.UPDATE, (1, None, None), (1, Decimal("3.25"), datetime(2020, 2, 29, 1, 2, 3)))
    data = serde.encode(ev)
    schema = serde.registry.get(int.from_bytes(data[1:5], "big"))
    record: Any = schemaless_reader(io.BytesIO(data[5:]), parse_schema(schema), None)
    assert record["op"] == "UPDATE" and record["table"] == "shop.orders"
    assert RowCodec(ORDERS).from_avro(record["after"]) == ev.after
    assert record["event_id"] == "reader-0:1" and record["schema_version"] == 1


def test_envelope_from_another_version_decodes_through_fastavro(serde: EventSerde) -> None:
    """A writer schema this version would not generate (here: an extra doc) still decodes."""
    schema = row_envelope_schema(ORDERS)
    schema["doc"] = "written by a future Sluice"
    schema_id = serde.registry.register("sluice.row.shop.orders-value", schema)
    codec = RowCodec(ORDERS)
    record = {
        "op": "INSERT",
        "before": None,
        "after": (codec.value_record_name, codec.to_avro((9, Decimal("0.10"), None))),
        "source": {"task": "r", "seq": 5, "chunk": None, "restore_value": None, "file": None,
                   "pos": None, "gtid": None, "row": None},
        "event_id": "r:5", "ts_ms": 3, "table": "shop.orders", "schema_version": 1,
    }  # fmt: skip
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(buf, parse_schema(schema), record)
    decoded = serde.decode(buf.getvalue())
    assert isinstance(decoded, RowEvent) and decoded.after == (9, Decimal("0.10"), None)
    assert decoded.source == SourcePosition("r", seq=5) and decoded.ts_ms == 3


def test_schema_registered_once_per_table_version(serde: EventSerde) -> None:
    calls: list[str] = []
    register = serde.registry.register

    def counting(subject: str, schema: dict[str, Any]) -> int:
        calls.append(subject)
        return register(subject, schema)

    serde.registry.register = counting  # type: ignore[method-assign]
    for i in range(3):
        serde.encode(event(Op.INSERT, None, (i, None, None)))
        # an equal TableSchema built anew (e.g. re-read after a restart) reuses the entry
        copy = TableSchema(ORDERS.database, ORDERS.table, ORDERS.columns, ORDERS.primary_key)
        serde.encode(event(Op.INSERT, None, (i, None, None), table=copy))
    v2 = TableSchema(ORDERS.database, ORDERS.table, ORDERS.columns, ORDERS.primary_key, 2)
    serde.encode(event(Op.INSERT, None, (1, None, None), table=v2))
    assert calls == ["sluice.row.shop.orders-value"] * 2


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x01\x00\x00\x00\x01\x00", "starts with 0x01"),
        (b'{"json": 1}', "starts with 0x7b"),
        (b"\x00\x00", "2 bytes"),
        (b"", "starts with nothing"),
    ],
)
def test_not_wire_format(serde: EventSerde, data: bytes, match: str) -> None:
    with pytest.raises(SerdeError, match=match) as err:
        serde.decode(data)
    assert isinstance(err.value, SluiceError)


def test_unknown_schema_id_names_it(serde: EventSerde) -> None:
    with pytest.raises(SerdeError, match="unknown schema id 4242"):
        serde.decode(b"\x00" + (4242).to_bytes(4, "big") + b"\x00")


def test_truncated_record_names_schema_id(serde: EventSerde) -> None:
    data = serde.encode(event(Op.INSERT, None, (1, Decimal("1.00"), None)))
    with pytest.raises(SerdeError, match=f"schema id {int.from_bytes(data[1:5], 'big')}"):
        serde.decode(data[:-3])


def test_encode_bad_value_names_column(serde: EventSerde) -> None:
    with pytest.raises(SerdeError, match=r"shop\.orders\.amount"):
        serde.encode(event(Op.INSERT, None, (1, 1.5, None)))
    with pytest.raises(SerdeError, match=r"event reader-0:None of shop\.orders"):
        serde.encode(event(Op.INSERT, None, (1, None, None), seq=None))  # type: ignore[arg-type]


def test_tombstone_is_a_clear_error(serde: EventSerde) -> None:
    with pytest.raises(SerdeError, match="tombstone"):
        serde.decode(None)


# --- Confluent Schema Registry client ------------------------------------------------------


class _FakeConfluent(BaseHTTPRequestHandler):
    """The two endpoints Sluice uses, as Confluent Schema Registry answers them."""

    schemas: dict[int, str] = {}
    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        self.requests.append(f"POST {self.path} {self.headers.get('Authorization')}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "broken" in self.path:
            return self._answer(422, {"error_code": 42201, "message": "Invalid schema"})
        text = body["schema"]
        found = [i for i, s in self.schemas.items() if s == text]
        schema_id = found[0] if found else len(self.schemas) + 1
        self.schemas[schema_id] = text
        self._answer(200, {"id": schema_id})

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(f"GET {self.path}")
        schema_id = int(self.path.rsplit("/", 1)[1])
        if schema_id not in self.schemas:
            return self._answer(404, {"error_code": 40403, "message": "Schema not found"})
        self._answer(200, {"schema": self.schemas[schema_id]})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def confluent_url() -> Iterator[str]:
    _FakeConfluent.schemas, _FakeConfluent.requests = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeConfluent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_confluent_registry_round_trip(confluent_url: str) -> None:
    serde = EventSerde(ConfluentSchemaRegistry(confluent_url))
    ev = event(Op.INSERT, None, (1, Decimal("1.00"), None))
    data = serde.encode(ev)
    assert int.from_bytes(data[1:5], "big") == 1
    assert EventSerde(ConfluentSchemaRegistry(confluent_url)).decode(data) == ev
    serde.encode(ev)  # cached: no second POST
    posts = [r for r in _FakeConfluent.requests if r.startswith("POST")]
    assert posts == ["POST /subjects/sluice.row.shop.orders-value/versions None"]


def test_confluent_registry_errors_name_url_and_status(confluent_url: str) -> None:
    registry = ConfluentSchemaRegistry(confluent_url)
    with pytest.raises(SchemaNotFound, match="schema id 77 .*40403"):
        registry.get(77)
    with pytest.raises(SchemaRegistryError, match=f"{confluent_url}/subjects/broken.*HTTP 422"):
        registry.register("broken", {"type": "string"})
    with pytest.raises(SchemaRegistryError, match="failed"):
        ConfluentSchemaRegistry("http://127.0.0.1:9", timeout_s=2).get(1)


def test_confluent_credentials_go_in_a_header_not_in_messages(confluent_url: str) -> None:
    url = confluent_url.replace("http://", "http://user:s3cret@")
    registry = ConfluentSchemaRegistry(url)
    registry.register("x-value", {"type": "string"})
    assert _FakeConfluent.requests[-1].endswith("Basic dXNlcjpzM2NyZXQ=")
    with pytest.raises(SchemaRegistryError) as err:
        registry.register("broken", {"type": "string"})
    assert "s3cret" not in str(err.value)


def test_make_registry_picks_confluent_when_a_url_is_given(confluent_url: str) -> None:
    assert isinstance(make_registry("127.0.0.1:1", confluent_url), ConfluentSchemaRegistry)
    assert type(make_registry("127.0.0.1:1", None)).__name__ == "KafkaTopicSchemaRegistry"
