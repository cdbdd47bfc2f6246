"""Build a job's source and sink, checking what each declares it can do against the job's
delivery guarantee before anything runs."""

from __future__ import annotations

from typing import Any

from coordinator.errors import ConfigError
from coordinator.plugins import plugin_class
from sink_connectors.base import Sink, SinkContext
from source_connectors.base import Source, SourceContext


def exactly_once(job: Any) -> bool:
    return bool(job.setting.delivery == "exactly-once")


def restore_column(job: Any) -> str | None:
    """FlinkX's ``restoreColumnName``, or the reader column at ``restoreColumnIndex``."""
    restore = job.setting.restore
    if restore.restore_column_name:
        return str(restore.restore_column_name)
    names = getattr(job.content[0].reader.config, "column_names", None)
    index = restore.restore_column_index
    if index is not None and names and index < len(names):
        return str(names[index])
    return None


def _require_for_exactly_once(job: Any, spec: Any, capable: bool, missing: str) -> None:
    """Refuse, before anything runs, a plugin that lacks what exactly-once rests on."""
    if exactly_once(job) and not capable:
        raise ConfigError(
            f"{spec.path}.name: {spec.kind} {spec.name!r} cannot {missing}, so it cannot run "
            'exactly-once; set "setting.delivery": "at-least-once"'
        )


def build_source(job: Any) -> Source:
    spec = job.content[0].reader
    cls = plugin_class(spec).for_config(spec.config)
    _require_for_exactly_once(job, spec, cls.supports_resume, "resume from a position")
    context = SourceContext(
        job=job.name,
        reader_channels=job.setting.speed.reader_channels,
        restore_column=restore_column(job),
        exactly_once=exactly_once(job),
    )
    source: Source = cls(spec.config, context)
    return source


def build_sink(job: Any, bootstrap: str | None = None) -> Sink:
    """``bootstrap``: the job's Kafka as the runner resolved it (``--bootstrap-servers``);
    default ``setting.kafka.bootstrapServers``."""
    spec = job.content[0].writer
    cls = plugin_class(spec)
    _require_for_exactly_once(job, spec, cls.supports_precommit, "pre-commit (two-phase commit)")
    context = SinkContext(
        job.name,
        job.setting.speed.writer_channels,
        exactly_once(job),
        source_bounded=plugin_class(job.content[0].reader).bounded_for(
            job.content[0].reader.config
        ),
        reader_config=job.content[0].reader.config,
        kafka_bootstrap=bootstrap or job.setting.kafka.bootstrap_servers,
        partitions=job.setting.partitions,
        replication_factor=job.setting.kafka.replication_factor,
        schema_registry_url=job.setting.kafka.schema_registry_url,
    )
    sink: Sink = cls(spec.config, context)
    return sink


def check_connectors(source: Source, sink: Sink) -> None:
    """Before anything is written: each side reaches its server, then the sink checks that
    every source table can be written (columns, types, keys)."""
    source.check()
    sink.check()
    sink.check_input(source.tables())
