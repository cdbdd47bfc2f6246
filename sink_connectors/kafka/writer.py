"""``kafkawriter``: rows to Kafka topics, exactly once, without a transaction of its own.

The writer task already commits every checkpoint in one Kafka transaction (its ack and the
consumer offsets of the rows applied). This sink only turns rows into records and hands them
over (``SinkWriter.pending_records``); the runner produces them inside that same transaction.
So the records of a checkpoint become visible to ``read_committed`` consumers exactly when
the offsets of the rows they came from commit, and vanish with them when it aborts (a crash,
a fenced zombie): consume-transform-produce, as Kafka Streams does it. Nothing is left to
recover after a crash, and there is no second phase.

Records of a checkpoint wait in memory (already encoded) until it commits: a checkpoint's
rows should fit in memory (``restore.maxRowNumForCheckpoint`` bounds them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaException

from coordinator.errors import ConfigError, ConnectError, TaskFailed
from coordinator.kafka_io import TopicSpec, admin, ensure_topics
from schemas.events import RowEvent, SchemaChange
from schemas.registry import make_registry
from schemas.serde import EventSerde
from schemas.table import TableSchema
from sink_connectors.base import (
    OutputRecord,
    Rejected,
    Sink,
    SinkContext,
    SinkWriter,
    TwoPhaseSinkWriter,
)
from sink_connectors.kafka.config import PLACEHOLDER, KafkaWriterConfig, servers
from sink_connectors.kafka.formats import WHERE, RecordEncoder, TableLayout

log = logging.getLogger("sluice.sink.kafka")
_NOT_TOPIC_CHAR = re.compile(r"[^A-Za-z0-9._-]")


class TopicRouter:
    """Which topic a table's rows go to (``topic``: a name, a pattern, or a map)."""

    def __init__(self, spec: str | dict[str, str]) -> None:
        self.spec = spec

    def topic(self, database: str, table: str) -> str:
        pattern = self.spec
        if isinstance(pattern, dict):
            found = pattern.get(f"{database}.{table}", pattern.get(table, pattern.get("*")))
            if found is None:
                raise ConfigError(
                    f"{WHERE}.topic: no topic for table {database}.{table}; add "
                    f'"{database}.{table}" or "*" to the map'
                )
            pattern = found
        # Debezium's rule: characters a topic name cannot hold become '_'.
        values = {"schema": database, "table": table}
        return PLACEHOLDER.sub(lambda m: _NOT_TOPIC_CHAR.sub("_", values[m.group(1)]), pattern)


class KafkaSink(Sink):
    """Exactly-once without a pre-commit of its own: its output rides in the writer task's
    checkpoint transaction (see the module docstring), so ``supports_precommit`` holds."""

    supports_precommit = True
    config: KafkaWriterConfig

    def __init__(self, config: Any, context: SinkContext) -> None:
        super().__init__(config, context)
        self.format = config.format_for(context.reader_config)
        self.router = TopicRouter(config.topic)
        self.partitions = config.partitions or context.partitions
        self.replication = config.replicationFactor or context.replication_factor

    @property
    def bootstrap(self) -> str:
        if not self.context.kafka_bootstrap:
            raise ConfigError(
                "job.setting.kafka.bootstrapServers: kafkawriter needs the job's Kafka cluster"
            )
        return self.context.kafka_bootstrap

    def check(self) -> None:
        """The target cluster must be the job's: one Kafka transaction cannot span two."""
        named = self.config.target_bootstrap
        if named and servers(named) != servers(self.bootstrap):
            key = (
                "bootstrapServers"
                if self.config.bootstrapServers
                else ('producerSettings."bootstrap.servers"')
            )
            raise ConfigError(
                f"{WHERE}.{key}: {named} is not the job's Kafka ({self.bootstrap}); "
                "kafkawriter writes in the writer task's own Kafka transaction, which cannot "
                "span two clusters: set job.setting.kafka.bootstrapServers to the target "
                "cluster instead"
            )
        ignored = sorted(k for k in self.config.producerSettings if k != "bootstrap.servers")
        if ignored:
            log.warning(
                "%s.producerSettings: %s ignored: records go through the writer task's "
                "transactional producer",
                WHERE,
                ", ".join(ignored),
            )

    def check_input(self, tables: list[TableSchema]) -> None:
        """Before any row moves: every table has a topic, ``tableFields`` and ``key`` name
        its columns; missing topics are created."""
        encoder = RecordEncoder("json", fields=self.config.tableFields, key=self.config.key)
        topics = set()
        for table in tables:
            try:
                encoder.layout(table)
            except TaskFailed as e:  # the same message, as a configuration error
                raise ConfigError(str(e)) from None
            topics.add(self.router.topic(table.database, table.table))
        create_missing_topics(self.bootstrap, topics, self.partitions, self.replication)

    def build_writer(self, task_id: str) -> SinkWriter:
        serde = None
        if self.format == "avro":
            serde = EventSerde(make_registry(self.bootstrap, self.context.schema_registry_url))
        encoder = RecordEncoder(
            self.format,
            fields=self.config.tableFields,
            key=self.config.key,
            server_name=self.config.serverName or self.context.job,
            decimal=self.config.decimalHandling,
            tombstones=self.config.tombstonesOnDelete,
            serde=serde,
            source_database=getattr(getattr(self.context.reader_config, "jdbc", None),
                                    "database", None),
        )  # fmt: skip
        return KafkaWriter(self, encoder, task_id)


class KafkaWriter(TwoPhaseSinkWriter):
    def __init__(self, sink: KafkaSink, encoder: RecordEncoder, task: str) -> None:
        self.sink = sink
        self.encoder = encoder
        self.task = task
        self.buffer: list[OutputRecord] = []
        self.topics: dict[tuple[str, str], str] = {}
        self.logged_changes: set[tuple[str, int]] = set()

    def recover(
        self, txn_prefix: str, is_committed: Callable[[str], bool]
    ) -> list[tuple[str, bool]]:
        # Records of an undecided checkpoint were only ever in its Kafka transaction, which
        # the new incarnation's init_transactions has aborted: nothing is left to resolve.
        return []

    def begin(self, txn_id: str) -> None:
        self.buffer = []

    def write(self, events: list[RowEvent]) -> list[Rejected]:
        for ev in events:
            self.buffer.extend(self.encoder.records(self._topic(ev.table), ev))
        return []

    def _topic(self, table: TableSchema) -> str:
        name = (table.database, table.table)
        topic = self.topics.get(name)
        if topic is None:
            try:
                topic = self.sink.router.topic(*name)
            except ConfigError as e:  # a table that appeared after the job started
                raise TaskFailed(str(e)) from None
            create_missing_topics(
                self.sink.bootstrap, {topic}, self.sink.partitions, self.sink.replication
            )
            self.topics[name] = topic
        return topic

    def pre_commit(self, txn_id: str, offsets: Mapping[str, int]) -> None:
        return None  # durable and decided together, in the runner's Kafka transaction

    def pending_records(self) -> list[OutputRecord]:
        out, self.buffer = self.buffer, []
        return out

    def commit(self, txn_id: str) -> None:
        return None

    def abort(self) -> None:
        self.buffer = []

    def schema_change(self, change: SchemaChange) -> None:
        # Rows carry their own columns, so later rows simply show the new shape; DDL itself
        # is not written (Debezium's separate schema-change topic is not produced).
        version = change.new_schema.version if change.new_schema else -1
        if (change.qualified_name, version) not in self.logged_changes:
            self.logged_changes.add((change.qualified_name, version))
            log.info(
                "%s: schema change of %s not written: %s",
                self.task,
                change.qualified_name,
                change.ddl,
            )


def create_missing_topics(
    bootstrap: str, topics: set[str], partitions: int, replication: int
) -> None:
    """Create the topics that do not exist; existing ones are used as they are (a user's
    topic may have any number of partitions)."""
    if not topics:
        return
    try:
        existing = admin(bootstrap).list_topics(timeout=30).topics
    except KafkaException as e:
        raise ConnectError(f"Kafka at {bootstrap}: cannot list topics: {e.args[0]}") from None
    missing = sorted(t for t in topics if t not in existing)
    if missing:
        log.info("creating topics %s (%d partitions)", ", ".join(missing), partitions)
        ensure_topics(
            bootstrap, [TopicSpec(t, partitions, replication_factor=replication) for t in missing]
        )


__all__ = ["KafkaSink", "KafkaWriter", "TableLayout", "TopicRouter", "create_missing_topics"]
