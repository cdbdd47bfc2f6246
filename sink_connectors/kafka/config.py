"""``kafkawriter``'s ``parameter`` block: FlinkX's keys (``topic``, ``producerSettings``,
``tableFields``) plus Sluice's output shapes.

``topic`` names where each source table's rows go: one topic for all, a pattern with
``${schema}`` / ``${table}`` placeholders (Debezium's ``<server>.<db>.<table>`` layout is
``"dbserver1.${schema}.${table}"``), or an object from table to topic with ``"*"`` as the
fallback.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from coordinator.job.base import OptStr, PluginConfig, StrList, one_of, shown

FORMATS = ("debezium", "json", "paving", "avro")
Format = Literal["debezium", "json", "paving", "avro"]
DECIMAL_MODES = ("string", "double", "precise")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
PLACEHOLDERS = ("schema", "table")
TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]+")


def _check_topic(topic: object, where: str) -> str:
    if not isinstance(topic, str) or not topic.strip():
        raise ValueError(f"{where}expected a topic name, got {shown(topic)}")
    topic = topic.strip()
    for name in PLACEHOLDER.findall(topic):
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"{where}unknown placeholder ${{{name}}} in {shown(topic)}; "
                "known: ${schema}, ${table}"
            )
    fixed = PLACEHOLDER.sub("", topic)
    if fixed and not TOPIC_CHARS.fullmatch(fixed):
        raise ValueError(
            f"{where}{shown(topic)} is not a Kafka topic name (letters, digits, '.', '_', '-')"
        )
    if len(fixed) > 200:
        raise ValueError(f"{where}{shown(topic)} is too long for a Kafka topic name")
    return topic


def _topic_spec(value: object) -> object:
    if isinstance(value, dict):
        if not value:
            raise ValueError('expected a topic name or {"db.table": "topic", "*": "topic"}')
        return {str(k).strip(): _check_topic(v, f"table {shown(k)}: ") for k, v in value.items()}
    return _check_topic(value, "")


class KafkaWriterConfig(PluginConfig):
    """Rows as Kafka records in the job's Kafka cluster, exactly once: they are produced in
    the writer task's checkpoint transaction, together with the offsets they came from."""

    topic: Annotated[str | dict[str, str], Field(union_mode="left_to_right")] = Field(
        description="Target topic; may hold ${schema}/${table}; or {table: topic, '*': topic}."
    )
    format: Annotated[Format, one_of(*FORMATS)] | None = Field(
        default=None,
        description="Sluice addition: debezium, json (FlinkX rows), paving (FlinkX pavingData) "
        "or avro (Sluice Avro); default paving when the reader sets pavingData, else debezium.",
    )
    producerSettings: dict[str, Any] = Field(
        default_factory=dict,
        description="FlinkX: Kafka producer properties; only bootstrap.servers is read.",
    )
    bootstrapServers: OptStr = Field(
        default=None, description="Sluice addition: the target cluster; must be the job's."
    )
    tableFields: StrList = Field(
        default_factory=list, description="FlinkX: the columns written; default all."
    )
    key: StrList = Field(
        default_factory=list,
        description="Sluice addition: record key columns (a JSON object); default the primary key.",
    )
    serverName: OptStr = Field(
        default=None,
        description="Sluice addition: Debezium's logical server name (source.name); "
        "default the job name.",
    )
    decimalHandling: Annotated[Literal["string", "double", "precise"], one_of(*DECIMAL_MODES)] = (
        Field(
            default="string",
            description="Sluice addition: Debezium decimal.handling.mode: string, double or precise.",
        )
    )
    tombstonesOnDelete: bool = Field(
        default=True,
        description="Sluice addition: Debezium tombstones.on.delete: a null-value record after "
        "each delete, so log compaction can drop the key.",
    )
    partitions: int | None = Field(
        default=None, ge=1, description="Sluice addition: partitions of topics Sluice creates."
    )
    replicationFactor: int | None = Field(
        default=None, ge=1, description="Sluice addition: replication of topics Sluice creates."
    )

    @field_validator("topic", mode="before")
    @classmethod
    def _topic(cls, value: object) -> object:
        return _topic_spec(value)

    @field_validator("producerSettings")
    @classmethod
    def _bootstrap_is_text(cls, value: dict[str, Any]) -> dict[str, Any]:
        servers = value.get("bootstrap.servers")
        if servers is not None and (not isinstance(servers, str) or not servers.strip()):
            raise ValueError(f'"bootstrap.servers": expected host:port[,...], got {shown(servers)}')
        return value

    @model_validator(mode="after")
    def _one_cluster(self) -> Self:
        given = self.producerSettings.get("bootstrap.servers")
        if given and self.bootstrapServers and servers(given) != servers(self.bootstrapServers):
            raise ValueError(
                'bootstrapServers and producerSettings."bootstrap.servers" name different '
                "clusters; give one"
            )
        return self

    @property
    def target_bootstrap(self) -> str | None:
        """The cluster the user named, if any."""
        return self.bootstrapServers or self.producerSettings.get("bootstrap.servers")

    @property
    def column_names(self) -> list[str] | None:
        return None  # tableFields select by name; never matched to the reader by position

    def format_for(self, reader_config: object) -> Format:
        """``format``, else FlinkX's: the flat shape when the reader sets ``pavingData``."""
        if self.format is not None:
            return self.format
        return "paving" if getattr(reader_config, "pavingData", False) else "debezium"


def servers(text: str) -> frozenset[str]:
    """A bootstrap list as a set of ``host:port`` (``localhost`` counted as 127.0.0.1)."""
    out = set()
    for item in text.split(","):
        item = item.strip().lower()
        if item:
            host, _, port = item.rpartition(":")
            out.add(f"{'127.0.0.1' if host == 'localhost' else host}:{port}")
    return frozenset(out)
