"""KafkaTopicSchemaRegistry against a real Kafka: ids agree across instances and processes,
schemas survive in a compacted topic, collisions and misconfigured topics are refused."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from schemas.avro_types import row_envelope_schema
from schemas.control import load_avsc
from schemas.errors import SchemaIdCollision, SchemaNotFound, SchemaRegistryError
from schemas.registry import KafkaTopicSchemaRegistry, schema_fingerprint_id
from schemas.table import Column, TableSchema

pytestmark = pytest.mark.integration


def table_schema(version: int, width: int = 64) -> dict[str, Any]:
    columns = (
        Column("id", "int", "int(11)", False),
        Column("name", "varchar", f"varchar({width})"),
    )
    return row_envelope_schema(TableSchema("shop", "orders", columns, ("id",), version))


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name: str) -> Iterator[str]:
    yield unique_name
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_topics([unique_name], operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # never created
            future.result(30)


def test_two_instances_agree_on_ids_without_talking(kafka_bootstrap: str, topic: str) -> None:
    one = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    two = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    schema = table_schema(1)
    first = one.register("sluice.row.shop.orders-value", schema)
    assert first == two.register("sluice.row.shop.orders-value", schema)
    assert first == schema_fingerprint_id(schema) and 0 < first < 2**31
    # Props alone (a column widened) change the id: they hold the column's declaration.
    assert one.register("sluice.row.shop.orders-value", table_schema(1, width=128)) != first
    one.close()
    two.close()


def test_fresh_instance_gets_what_another_registered(kafka_bootstrap: str, topic: str) -> None:
    writer = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    ids = {writer.register(f"s{v}-value", table_schema(v)): table_schema(v) for v in (1, 2, 3)}
    barrier_id = writer.register("sluice.control.Barrier-value", load_avsc("Barrier"))
    reader = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    for schema_id, schema in ids.items():
        assert reader.get(schema_id) == schema
    # registered after the reader's first read: found on the next miss
    late = writer.register("late-value", table_schema(4))
    assert reader.get(late) == table_schema(4)
    assert reader.get(barrier_id) == load_avsc("Barrier")
    with pytest.raises(SchemaNotFound, match=f"schema id 12345 is not registered in topic {topic}"):
        reader.get(12345)


def test_schema_topic_is_compacted_single_partition(kafka_bootstrap: str, topic: str) -> None:
    KafkaTopicSchemaRegistry(kafka_bootstrap, topic).register("x-value", table_schema(1))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["cleanup.policy"].value == "compact"
    assert list(admin.list_topics(topic, timeout=30).topics[topic].partitions) == [0]


def test_refuses_a_topic_that_would_delete_schemas(kafka_bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    new = NewTopic(topic, num_partitions=1, replication_factor=1)
    admin.create_topics([new])[topic].result(30)
    registry = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    with pytest.raises(SchemaRegistryError, match=f"{topic} .* cleanup.policy=delete"):
        registry.register("x-value", table_schema(1))


def test_id_collision_is_refused(
    kafka_bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = KafkaTopicSchemaRegistry(kafka_bootstrap, topic).register("a-value", table_schema(1))
    monkeypatch.setattr("schemas.kafka_registry.schema_fingerprint_id", lambda schema: taken)
    other = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    with pytest.raises(SchemaIdCollision, match=f"schema id {taken} for subject 'b-value'"):
        other.register("b-value", table_schema(2))
    assert other.get(taken) == table_schema(1)  # the first schema keeps its id


def test_many_threads_and_processes_register_at_once(kafka_bootstrap: str, topic: str) -> None:
    schemas = [table_schema(v) for v in range(1, 6)]
    expected = [schema_fingerprint_id(s) for s in schemas]
    script = (
        "import sys, json\n"
        "from schemas.registry import KafkaTopicSchemaRegistry\n"
        "from tests.integration.test_schema_registry import table_schema\n"
        "r = KafkaTopicSchemaRegistry(sys.argv[1], sys.argv[2])\n"
        "print(json.dumps([r.register(f's{v}', table_schema(v)) for v in range(1, 6)]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, kafka_bootstrap, topic], stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    shared = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    with ThreadPoolExecutor(4) as pool:
        from_threads = list(pool.map(lambda s: shared.register("t-value", s), schemas * 4))
    assert from_threads == expected * 4
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert [int(x) for x in out.decode().strip()[1:-1].split(",")] == expected
    fresh = KafkaTopicSchemaRegistry(kafka_bootstrap, topic)
    assert [fresh.get(i) for i in expected] == schemas
