"""The FlinkX plugin names Sluice knows: which side each is on, how its ``parameter`` block is
validated, and which class implements it.

Entries name their classes as ``"module:Class"`` strings and import them only when asked.
That keeps ``import coordinator.plugins`` cheap, keeps the job loader free of the client
libraries a connector needs (pymysql, hdfs, ...), and avoids an import cycle: connector config
modules import :mod:`coordinator.job.base`, which must not import them back.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from coordinator.errors import ConfigError

if TYPE_CHECKING:
    from coordinator.job.base import PluginConfig
    from coordinator.job.model import PluginSpec

Kind = Literal["reader", "writer"]


def import_ref(ref: str) -> Any:
    """The object a ``"package.module:Name"`` reference names."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:Name', got {ref!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no {attr!r} (from {ref!r})") from None


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin. ``config`` and ``impl`` are ``"module:Class"`` references (a
    config class may also be given directly)."""

    name: str
    kind: Kind
    config: str | type[PluginConfig]
    impl: str

    @property
    def config_model(self) -> type[PluginConfig]:
        """The pydantic model of this plugin's ``parameter`` block."""
        from coordinator.job.base import PluginConfig

        cls = import_ref(self.config) if isinstance(self.config, str) else self.config
        if not (isinstance(cls, type) and issubclass(cls, PluginConfig)):
            raise TypeError(f"plugin {self.name!r}: {self.config!r} is not a PluginConfig")
        return cls


_REGISTRY: dict[str, PluginInfo] = {}


def register(name: str, kind: Kind, config: str | type[PluginConfig], impl: str) -> PluginInfo:
    """Add (or replace) a plugin. Names are FlinkX's, lower case (``mysqlreader``)."""
    info = PluginInfo(name.lower(), kind, config, impl)
    _REGISTRY[info.name] = info
    return info


def registered(kind: Kind | None = None) -> list[PluginInfo]:
    """Registered plugins, of one kind or all, sorted by name."""
    return sorted(
        (p for p in _REGISTRY.values() if kind is None or p.kind == kind), key=lambda p: p.name
    )


def lookup(name: object, kind: Kind, path: str) -> PluginInfo:
    """The plugin called ``name`` (case-insensitive), which must be a ``kind``. ``path`` is
    the JSON path of the name, for the :class:`ConfigError` raised otherwise."""
    known = [p.name for p in registered(kind)]
    listing = f"known {kind}s: {', '.join(known)}"
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: expected the name of a {kind}; {listing}")
    info = _REGISTRY.get(name.strip().lower())
    if info is None:
        import difflib

        hint = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.5)
        suffix = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f'{path}: unknown {kind} "{name}"; {listing}{suffix}')
    if info.kind != kind:
        raise ConfigError(
            f'{path}: "{name}" is a {info.kind}, not a {kind}; {listing} '
            "(are reader and writer swapped?)"
        )
    return info


def plugin_class(spec: PluginSpec) -> type[Any]:
    """Import and return the class that implements ``spec``'s plugin."""
    cls = import_ref(lookup(spec.name, spec.kind, f"{spec.path}.name").impl)
    if not isinstance(cls, type):
        raise TypeError(f"{spec.name}: implementation {cls!r} is not a class")
    return cls


register(
    "mysqlreader",
    "reader",
    "source_connectors.mysql.config:MysqlReaderConfig",
    "source_connectors.mysql.snapshot:MysqlSnapshotSource",
)
register(
    "binlogreader",
    "reader",
    "source_connectors.mysql.binlog_config:BinlogReaderConfig",
    "source_connectors.mysql.binlog:BinlogSource",
)
register(
    "mysqlwriter",
    "writer",
    "sink_connectors.mysql.config:MysqlWriterConfig",
    "sink_connectors.mysql.writer:MysqlSink",
)
register(
    "hdfswriter",
    "writer",
    "sink_connectors.hdfs.config:HdfsWriterConfig",
    "sink_connectors.hdfs.writer:HdfsSink",
)
register(
    "streamreader",
    "reader",
    "source_connectors.stream_config:StreamReaderConfig",
    "source_connectors.stream:StreamSource",
)
register(
    "streamwriter",
    "writer",
    "sink_connectors.stream_config:StreamWriterConfig",
    "sink_connectors.stream:StreamSink",
)
register(
    "kafkawriter",
    "writer",
    "sink_connectors.kafka.config:KafkaWriterConfig",
    "sink_connectors.kafka.writer:KafkaSink",
)
