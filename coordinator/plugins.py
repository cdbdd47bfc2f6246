"""The connector plugins Sluice knows, found through the ``sluice.connectors`` entry points.

Every connector, Sluice's own included, is declared the way a third-party package declares
one: its distribution's metadata names a :class:`Plugin` under the plugin's FlinkX name::

    [project.entry-points."sluice.connectors"]
    mysqlreader = "source_connectors.plugins:MYSQLREADER"

A :class:`Plugin` names its config model and its factory as ``"module:Class"`` strings, imported
only when used. That keeps loading the registry cheap (one small module per package), keeps
the job loader free of the client libraries a connector needs (pymysql, hdfs, ...), and avoids
an import cycle: connector config modules import :mod:`coordinator.job.base`, which must not
import them back.

An entry point that yields no usable plugin (its module fails to import, it names something
else than a Plugin, or its name is already taken) is set aside with one line naming the entry
point and its distribution: logged once per process, listed by ``sluice plugins``, and quoted
by the error of a job that names it. Every other plugin keeps working. A name that Sluice's
own distribution declares stays Sluice's; a name two other distributions declare is neither's.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from coordinator.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from coordinator.job.base import PluginConfig
    from coordinator.job.model import PluginSpec

log = logging.getLogger(__name__)

GROUP = "sluice.connectors"
BUILTIN_DISTRIBUTION = "sluice"

Kind = Literal["reader", "writer"]

# What the runner relies on, per side. Readers: ``bounded`` (parts end) and ``resumable``
# (a part restarts from its snapshot). Writers: ``two-phase`` (pre_commit is durable and
# undecided) and ``idempotent`` (applying events again leaves the target as applying once).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "reader": ("bounded", "resumable"),
    "writer": ("two-phase", "idempotent"),
}


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
class Plugin:
    """One connector, as a package declares it: the object its entry point names.

    ``config`` is the :class:`~coordinator.job.base.PluginConfig` subclass that validates the
    job's ``parameter`` block; ``factory`` the :class:`~source_connectors.base.Source`
    (reader) or :class:`~sink_connectors.base.Sink` (writer) subclass the runner builds as
    ``factory(config, context)``. Both are ``"module:Class"`` references or the classes.
    ``aliases`` are further names a job may use for it.

    Capabilities: ``bounded`` and ``resumable`` come from the factory's ``bounded`` and
    ``supports_resume``, ``two-phase`` from its ``supports_precommit``. ``idempotent``
    (writers only) is declared here; None means the plugin does not say. ``depends`` maps a
    capability to what decides it, when the factory cannot state it up front (a
    ``mysqlreader`` is endless only with ``"polling": true``).
    """

    name: str
    kind: Kind
    config: str | type[PluginConfig]
    factory: str | type
    aliases: tuple[str, ...] = ()
    idempotent: bool | None = None
    depends: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CAPABILITIES:
            raise ValueError(f"plugin {self.name!r}: kind must be reader or writer")
        names = self.names
        if any(not n or n != n.strip().lower() for n in names) or len(set(names)) != len(names):
            raise ValueError(f"plugin {self.name!r}: names must be distinct, lower case")
        unknown = set(self.depends) - set(CAPABILITIES[self.kind])
        if unknown:
            raise ValueError(f"plugin {self.name!r}: no {self.kind} capability {sorted(unknown)}")
        if self.kind == "reader" and self.idempotent is not None:
            raise ValueError(f"plugin {self.name!r}: idempotent is a writer capability")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Capability:
    """``value`` None: not known before the job runs (``note`` says what decides it)."""

    value: bool | None
    note: str = ""

    def text(self) -> str:
        if self.value is None:
            return self.note
        return "yes" if self.value else "no"


@dataclass(frozen=True)
class ConfigKey:
    key: str
    required: bool
    description: str | None


@dataclass(frozen=True)
class InstalledPlugin:
    """A :class:`Plugin` found through an entry point, and where it came from."""

    plugin: Plugin
    entry_point: str
    """``name = module:OBJECT``, as the distribution declares it."""
    distribution: str
    """``name version`` of the distribution that declares the entry point."""

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def kind(self) -> Kind:
        return self.plugin.kind

    @property
    def builtin(self) -> bool:
        return self.distribution.split(" ")[0] == BUILTIN_DISTRIBUTION

    @property
    def origin(self) -> str:
        return f'entry point "{self.entry_point}" (distribution {self.distribution})'

    def _resolve(self, what: str, ref: str | type) -> Any:
        if not isinstance(ref, str):
            return ref
        try:
            return import_ref(ref)
        except Exception as e:  # a third-party module may raise anything on import
            raise PluginError(
                f"{self.kind} {self.name!r} from {self.origin}: its {what} {ref!r} cannot be "
                f"imported: {one_line(e)}"
            ) from None

    @property
    def config_model(self) -> type[PluginConfig]:
        """The pydantic model of this plugin's ``parameter`` block."""
        from coordinator.job.base import PluginConfig

        cls = self._resolve("config", self.plugin.config)
        if not (isinstance(cls, type) and issubclass(cls, PluginConfig)):
            raise PluginError(
                f"{self.kind} {self.name!r} from {self.origin}: its config {cls!r} is not a "
                "coordinator.job.base.PluginConfig"
            )
        return cls

    def factory_class(self) -> type[Any]:
        """The Source (reader) or Sink (writer) class the runner builds."""
        from sink_connectors.base import Sink
        from source_connectors.base import Source

        base = Source if self.kind == "reader" else Sink
        cls = self._resolve("factory", self.plugin.factory)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"{self.kind} {self.name!r} from {self.origin}: its factory {cls!r} is not a "
                f"{base.__module__}.{base.__name__}"
            )
        return cls

    def capabilities(self) -> dict[str, Capability]:
        """What the runner can rely on, as far as it is known before a job runs."""
        cls = self.factory_class()
        static: dict[str, bool | None] = (
            {"bounded": cls.bounded, "resumable": cls.supports_resume}
            if self.kind == "reader"
            else {"two-phase": cls.supports_precommit, "idempotent": self.plugin.idempotent}
        )
        out: dict[str, Capability] = {}
        for name, value in static.items():
            if name in self.plugin.depends:
                out[name] = Capability(None, f"depends: {self.plugin.depends[name]}")
            elif value is None:
                out[name] = Capability(None, "unknown: the plugin does not declare it")
            else:
                out[name] = Capability(bool(value))
        return out

    def config_keys(self) -> list[ConfigKey]:
        """The keys of the ``parameter`` block, FlinkX names, in the model's order."""
        return [
            ConfigKey(info.alias or name, info.is_required(), info.description)
            for name, info in self.config_model.model_fields.items()
        ]


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


@dataclass
class Registry:
    """The plugins the entry points gave, by every name and alias."""

    plugins: dict[str, InstalledPlugin]
    broken: list[str]
    """One line per entry point set aside."""
    unusable: dict[str, str]
    """Name → why a job cannot use it (its entry point is broken, or two declare it)."""

    def registered(self, kind: Kind | None = None) -> list[InstalledPlugin]:
        unique = {id(p): p for p in self.plugins.values()}.values()
        return sorted((p for p in unique if kind in (None, p.kind)), key=lambda p: p.name)

    @property
    def missing_builtins(self) -> bool:
        return not any(p.builtin for p in self.plugins.values())


MISSING_BUILTINS = (
    f'Sluice\'s own connectors are not among the "{GROUP}" entry points: its installed metadata '
    "is older than pyproject.toml; reinstall it (make install, i.e. pip install -e .)"
)


def discover(entry_points: Iterable[importlib.metadata.EntryPoint]) -> Registry:
    """Load each entry point's :class:`Plugin`, setting aside (with one line each) those that
    yield none and those whose name is taken."""
    found: list[InstalledPlugin] = []
    broken: list[str] = []
    unusable: dict[str, str] = {}
    seen: set[tuple[str, str, str]] = set()
    for ep in entry_points:
        dist = ep.dist
        distribution = f"{dist.name} {dist.version}" if dist is not None else "unknown"
        if (ep.name, ep.value, distribution) in seen:
            continue
        seen.add((ep.name, ep.value, distribution))
        where = f'entry point "{ep.name} = {ep.value}" (distribution {distribution})'
        try:
            obj = ep.load()
        except Exception as e:  # a third-party module may raise anything on import
            reason = f"cannot be imported: {one_line(e)}"
        else:
            if not isinstance(obj, Plugin):
                reason = f"names a {type(obj).__name__}, not a coordinator.plugins.Plugin"
            elif obj.name != ep.name.lower():
                reason = f'names plugin "{obj.name}": an entry point is named after its plugin'
            else:
                found.append(InstalledPlugin(obj, f"{ep.name} = {ep.value}", distribution))
                continue
        line = f"plugin {where} ignored: it {reason}"
        broken.append(line)
        unusable.setdefault(ep.name.lower(), line)

    claims: dict[str, list[InstalledPlugin]] = defaultdict(list)
    for p in found:
        for name in p.plugin.names:
            claims[name].append(p)
    dropped: dict[int, str] = {}
    for name, claimants in claims.items():
        if len(claimants) < 2:
            continue
        builtins = [c for c in claimants if c.builtin]
        if len(builtins) == 1:
            owner = builtins[0]
            for c in claimants:
                if c is not owner:
                    dropped.setdefault(id(c), f'"{name}" is Sluice\'s own {owner.kind}')
            continue
        origins = ", ".join(c.origin for c in claimants)
        unusable[name] = f'"{name}" is declared by {origins}: uninstall all but one'
        for c in claimants:
            others = ", ".join(o.origin for o in claimants if o is not c)
            dropped.setdefault(id(c), f'"{name}" is also declared by {others}')
    for p in found:
        if id(p) in dropped:
            broken.append(f"plugin {p.origin} ignored: {dropped[id(p)]}")
    plugins = {n: p for p in found if id(p) not in dropped for n in p.plugin.names}
    return Registry(plugins, broken, unusable)


@functools.cache
def registry() -> Registry:
    """The installed plugins, discovered once per process."""
    found = discover(importlib.metadata.entry_points(group=GROUP))
    for line in found.broken:
        log.warning("%s", line)
    if found.missing_builtins:
        log.warning("%s", MISSING_BUILTINS)
    return found


def registered(kind: Kind | None = None) -> list[InstalledPlugin]:
    """Installed plugins, of one kind or all, sorted by name."""
    return registry().registered(kind)


def lookup(name: object, kind: Kind, path: str) -> InstalledPlugin:
    """The plugin called ``name`` (case-insensitive), which must be a ``kind``. ``path`` is
    the JSON path of the name, for the :class:`ConfigError` raised otherwise."""
    reg = registry()
    known = [p.name for p in reg.registered(kind)]
    listing = f"known {kind}s: {', '.join(known)}"
    if reg.missing_builtins:
        listing += f" ({MISSING_BUILTINS})"
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: expected the name of a {kind}; {listing}")
    key = name.strip().lower()
    info = reg.plugins.get(key)
    if info is None:
        if key in reg.unusable:
            raise ConfigError(f'{path}: {kind} "{name}" cannot be used: {reg.unusable[key]}')
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
    return lookup(spec.name, spec.kind, f"{spec.path}.name").factory_class()
