"""``job.setting``: channels, limits, checkpoints, logging, delivery and Kafka.

FlinkX's sections (``speed``, ``errorLimit``, ``restore``, ``log``) keep their key names and
meaning. Sluice adds a few keys, marked "Sluice addition" below; every section and key is
optional, so a FlinkX job runs unchanged.

Unlike connector parameters, settings are read by coordinator code, so their fields have
Python names (``setting.restore.is_restore``) and the FlinkX keys are their aliases.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from coordinator.job.base import FlinkxModel, Float, Int, OptStr, one_of

_LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
_PYTHON_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


MAX_CHANNELS = 128
"""Most reader (or writer) channels of one job. Each channel is a task process with its own
source or sink connection and Kafka clients: 128 stays under MySQL's default
``max_connections`` (151) and keeps the job's topics within what one broker creates at once."""
MAX_PARTITIONS = 1024
"""Most partitions of a job's data topic: at most MAX_CHANNELS writers read it, and each
partition costs the broker files and memory."""


def _at_most(value: int | None, limit: int, why: str) -> int | None:
    if value is not None and value > limit:
        raise ValueError(f"expected at most {limit}, got {value}: {why}")
    return value


class SettingModel(FlinkxModel):
    """A ``job.setting`` section: snake_case fields, FlinkX camelCase keys as aliases."""

    model_config = ConfigDict(alias_generator=to_camel)


class Speed(SettingModel):
    """``setting.speed``: how many reader and writer tasks, and how fast.

    ``channel`` sets both sides; ``readerChannel``/``writerChannel`` override one side (FlinkX
    recommends that only when one side is the bottleneck). In Sluice reader and writer tasks
    are always decoupled by a Kafka topic, so unequal counts cost nothing extra.
    """

    channel: Int = Field(default=1, ge=1, description="Reader and writer tasks, unless overridden.")
    reader_channel: Int | None = Field(
        default=None, ge=1, description="Reader tasks; default channel."
    )
    writer_channel: Int | None = Field(
        default=None, ge=1, description="Writer tasks; default channel."
    )
    bytes: Int = Field(
        default=0,
        ge=0,
        description="Read limit in bytes/s (encoded rows) for the job, shared evenly by the "
        "reader channels; 0 = unlimited.",
    )
    records: Int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("records", "record"),
        serialization_alias="records",
        description="Read limit in records/s for the job, shared evenly by the reader "
        "channels; 0 = unlimited. Also read from 'record' (DataX's name).",
    )
    rebalance: bool | None = Field(
        default=None,
        description="FlinkX: force a rebalance between reader and writer. Accepted, unused: "
        "rows always travel through a Kafka topic, which rebalances by key.",
    )

    @field_validator("channel", "reader_channel", "writer_channel")
    @classmethod
    def _at_most_max_channels(cls, value: int | None) -> int | None:
        return _at_most(
            value,
            MAX_CHANNELS,
            "each channel is a task process with its own database connection and Kafka "
            "clients (MySQL's default max_connections is 151)",
        )

    @property
    def reader_channels(self) -> int:
        """Number of reader tasks: ``readerChannel``, else ``channel``."""
        return self.reader_channel or self.channel

    @property
    def writer_channels(self) -> int:
        """Number of writer tasks: ``writerChannel``, else ``channel``."""
        return self.writer_channel or self.channel


class ErrorLimit(SettingModel):
    """``setting.errorLimit``: how many bad records the job tolerates before it fails.
    Unset = none tolerated (the first bad record fails the job)."""

    record: Int | None = Field(default=None, ge=0, description="Bad records tolerated.")
    percentage: Float | None = Field(
        default=None, ge=0, le=100, description="Bad records tolerated, as % of records read."
    )


def _unset_index(value: object) -> object:
    # FlinkX's own default for restoreColumnIndex is -1, and templates carry it.
    return None if value == -1 else value


class Restore(SettingModel):
    """``setting.restore``: checkpoints and resuming after a failure.

    With ``isRestore`` a snapshot reader records the last ``restoreColumnName`` value it has
    sent in every checkpoint and, after a restart, reads only rows beyond it; ``isStream``
    marks a job that never ends (binlog, polling).
    """

    is_restore: bool = Field(
        default=False, description="Resume from the last checkpoint after restart."
    )
    is_stream: bool = Field(default=False, description="The job reads an endless stream.")
    max_row_num_for_checkpoint: Int | None = Field(
        default=None, ge=1, description="Also trigger a checkpoint after this many rows."
    )
    restore_column_name: OptStr = Field(
        default=None, description="Ascending column that marks progress."
    )
    restore_column_index: Annotated[Int | None, BeforeValidator(_unset_index)] = Field(
        default=None,
        ge=0,
        description="Position of restoreColumnName in the reader's columns (-1 = unset).",
    )
    checkpoint_interval: Int = Field(
        default=5000, ge=100, description="Sluice addition: milliseconds between checkpoints."
    )
    max_restarts: Int = Field(
        default=3,
        ge=0,
        description="Sluice addition: restarts allowed per task after a crash or a transient "
        "error (lost connection, broker down) before the job fails; 0 = fail at once.",
    )


class LogSetting(SettingModel):
    """``setting.log``: FlinkX's ``isLogger``/``path``/``pattern`` write a job log file
    ``<path>/<job>.log`` besides stderr; ``format: json`` (or ``json: true``) logs JSON lines.
    See ``coordinator.logs``."""

    is_logger: bool = Field(
        default=False, description="FlinkX: also write the log to <path>/<job>.log."
    )
    level: Annotated[Literal["debug", "info", "warn", "warning", "error"], one_of(*_LOG_LEVELS)] = (
        Field(default="info", description="Log level, case-insensitive.")
    )
    path: str = Field(
        default="",
        description="FlinkX: directory of the job log file; default /tmp/dtstack/flinkx.",
    )
    pattern: str = Field(
        default="", description="FlinkX: log4j layout pattern (%d %p %c %m %t ...) of text lines."
    )
    json_format: bool = Field(
        default=False, alias="json", description="Sluice addition: log one JSON object per line."
    )
    log_format: Annotated[Literal["text", "json"], one_of("text", "json")] = Field(
        default="text", alias="format", description="Sluice addition: 'text' or 'json' lines."
    )

    @property
    def is_json(self) -> bool:
        """JSON lines: ``format: json`` or ``json: true``."""
        return self.json_format or self.log_format == "json"

    @property
    def python_level(self) -> int:
        """``level`` as a :mod:`logging` level."""
        return _PYTHON_LEVELS[self.level]


class KafkaSetting(SettingModel):
    """``setting.kafka`` (Sluice addition): where the job's topics live. Unset keys come from
    the worker's own configuration."""

    bootstrap_servers: OptStr = Field(default=None, description="host:port[,host:port...]")
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] = Field(
        default="sluice", description="Prefix of the job's topic names."
    )
    partitions: Int | None = Field(
        default=None, ge=1, description="Partitions of the data topic; default = writer channels."
    )
    replication_factor: Int = Field(default=1, ge=1, description="Replication of created topics.")
    schema_registry_url: OptStr = Field(
        default=None,
        validation_alias=AliasChoices("schemaRegistryUrl", "schema.registry.url"),
        serialization_alias="schemaRegistryUrl",
        description="Confluent Schema Registry URL; also read from 'schema.registry.url'.",
    )

    @field_validator("partitions")
    @classmethod
    def _at_most_max_partitions(cls, value: int | None) -> int | None:
        return _at_most(
            value,
            MAX_PARTITIONS,
            f"at most {MAX_CHANNELS} writer channels read the data topic, and each "
            "partition costs the broker files and memory",
        )


Delivery = Literal["exactly-once", "at-least-once"]


class Setting(SettingModel):
    """``job.setting``; every section is optional."""

    speed: Speed = Field(default_factory=Speed)
    error_limit: ErrorLimit = Field(default_factory=ErrorLimit)
    restore: Restore = Field(default_factory=Restore)
    log: LogSetting = Field(default_factory=LogSetting)
    delivery: Annotated[Delivery, one_of("exactly-once", "at-least-once")] = Field(
        default="exactly-once",
        description="Sluice addition: 'at-least-once' skips the sink's two-phase commit.",
    )
    kafka: KafkaSetting = Field(default_factory=KafkaSetting)

    @property
    def exactly_once(self) -> bool:
        return self.delivery == "exactly-once"

    @property
    def partitions(self) -> int:
        """Partitions of the job's data topic: ``kafka.partitions``, else one per writer
        task, so that no writer in the consumer group sits idle."""
        return self.kafka.partitions or self.speed.writer_channels
