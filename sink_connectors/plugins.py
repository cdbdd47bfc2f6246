"""Sluice's own writers, declared as any package declares a plugin: each object here is named
by an entry point of the ``sluice.connectors`` group in pyproject.toml.

``idempotent`` is what ``sluice replay`` relies on: applying events again leaves the target as
applying them once. ``mysqlwriter`` and ``postgresqlwriter`` upsert; the others append (files,
records, lines).
"""

from __future__ import annotations

from coordinator.plugins import Plugin

MYSQLWRITER = Plugin(
    name="mysqlwriter",
    kind="writer",
    config="sink_connectors.mysql.config:MysqlWriterConfig",
    factory="sink_connectors.mysql.writer:MysqlSink",
    depends={
        # sink_connectors.mysql.keys refuses replace/update on a target without such a key.
        "idempotent": 'writeMode "replace" or "update" (on a primary or unique NOT NULL '
        'key) yes, "insert" no',
    },
)
POSTGRESQLWRITER = Plugin(
    name="postgresqlwriter",
    kind="writer",
    config="sink_connectors.postgres.config:PostgresWriterConfig",
    factory="sink_connectors.postgres.writer:PostgresSink",
    aliases=("postgreswriter",),
    depends={
        "idempotent": 'writeMode "replace" or "update" (on a primary or unique NOT NULL '
        'key) yes, "insert" no',
    },
)
HDFSWRITER = Plugin(
    name="hdfswriter",
    kind="writer",
    config="sink_connectors.hdfs.config:HdfsWriterConfig",
    factory="sink_connectors.hdfs.writer:HdfsSink",
    idempotent=False,
)
STREAMWRITER = Plugin(
    name="streamwriter",
    kind="writer",
    config="sink_connectors.stream_config:StreamWriterConfig",
    factory="sink_connectors.stream:StreamSink",
    idempotent=False,
)
KAFKAWRITER = Plugin(
    name="kafkawriter",
    kind="writer",
    config="sink_connectors.kafka.config:KafkaWriterConfig",
    factory="sink_connectors.kafka.writer:KafkaSink",
    idempotent=False,
)
