"""The job: a FlinkX job JSON, checked whole, as typed models.

:func:`load_job` / :func:`parse_job` / :func:`build_job` check the document's shape, look the
reader and writer up in :mod:`coordinator.plugins`, validate each ``parameter`` block with the
plugin's model and ``setting`` with :class:`Setting`, then check what only the whole job can
tell (channels vs ``sliceRecordCount``, reader vs writer columns, the restore column). Every
problem found is reported at once, each with its JSON path, in one :class:`JobConfigError`:
fixing a job should take one round, not one per typo.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from coordinator import plugins
from coordinator.errors import ConfigError, PluginError
from coordinator.job.base import PluginConfig, shown
from coordinator.job.jsonc import parse_jsonc
from coordinator.job.problems import (
    JobConfigError,
    job_name_problem,
    unknown_key_message,
    validate_at,
)
from coordinator.job.secrets import has_references
from coordinator.job.secrets import resolve as resolve_references
from coordinator.job.setting import Setting

log = logging.getLogger("sluice.job")

_JOB_SHAPE = '{"job": {"content": [{"reader": {...}, "writer": {...}}], "setting": {...}}}'


class PluginSpec(BaseModel):
    """A reader or writer of the job: its FlinkX name, its validated ``parameter`` block and
    where it sits in the JSON (for messages: ``f"{spec.path}.parameter.table"``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["reader", "writer"]
    config: SerializeAsAny[PluginConfig]
    path: str


class Content(BaseModel):
    """One ``job.content`` entry: a reader and the writer it feeds."""

    model_config = ConfigDict(frozen=True)

    reader: PluginSpec
    writer: PluginSpec


class Job(BaseModel):
    """A validated job. ``repr``, ``model_dump_json`` and :meth:`redacted` never show a
    password (password fields are :class:`pydantic.SecretStr`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    content: list[Content] = Field(min_length=1, max_length=1)
    setting: Setting = Field(default_factory=Setting)
    warnings: list[str] = Field(default_factory=list, description="Unknown keys, ignored.")
    origin: str = Field(default="<job>", description="Where the JSON came from, for messages.")

    @property
    def reader(self) -> PluginSpec:
        return self.content[0].reader

    @property
    def writer(self) -> PluginSpec:
        return self.content[0].writer

    def with_parameter(self, side: Literal["reader", "writer"], **changes: Any) -> Job:
        """A copy of the job with keys of one side's ``parameter`` replaced and validated
        again (models are frozen, so a job shared by tasks cannot drift). For overrides that
        do not belong in the file, e.g. a password from the environment::

            job = job.with_parameter("writer", password=os.environ["DST_PASSWORD"])
        """
        spec = self.reader if side == "reader" else self.writer
        unknown = [k for k in changes if k not in type(spec.config).model_fields]
        if unknown:  # a typo here is the caller's bug, not a user's: fail loudly
            raise TypeError(f"{spec.name} has no parameter {', '.join(unknown)}")
        data = spec.config.model_dump()  # python mode: a SecretStr stays a SecretStr
        data.update(changes)
        errors: list[str] = []
        config = validate_at(type(spec.config), data, f"{spec.path}.parameter", errors, [])
        if config is None:
            raise JobConfigError(self.origin, errors)
        new_spec = spec.model_copy(update={"config": config})
        pair = self.content[0].model_copy(update={side: new_spec})
        return self.model_copy(update={"content": [pair, *self.content[1:]]})

    def redacted(self) -> dict[str, Any]:
        """The job as FlinkX JSON, every default filled in and passwords masked: what to
        print when a user asks what Sluice understood."""
        return {
            "job": {
                "name": self.name,
                "content": [
                    {
                        side: {
                            "name": spec.name,
                            "parameter": spec.config.model_dump(mode="json", by_alias=True),
                        }
                        for side, spec in (("reader", c.reader), ("writer", c.writer))
                    }
                    for c in self.content
                ],
                "setting": self.setting.model_dump(mode="json", by_alias=True),
            }
        }


def load_job(path: str | Path) -> Job:
    """Read and validate the job file at ``path``. Raises :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: job file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {e.start}); save the job as UTF-8"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    return parse_job(text, origin=str(path))


def parse_job(text: str, origin: str = "<job>") -> Job:
    """Validate job JSON ``text``; ``origin`` names it in messages (a file path gives the
    job its default name, the file's stem)."""
    doc = parse_jsonc(text, origin)
    default_name = None if origin.startswith("<") else Path(origin).stem
    return build_job(doc, origin=origin, default_name=default_name)


def build_job(doc: object, origin: str = "<job>", default_name: str | None = None) -> Job:
    """Validate an already parsed JSON document (e.g. one received by the REST API), its
    secret references (``${env:NAME}``, ``${file:PATH:KEY}``) resolved here: the document
    itself, references and all, is what gets stored (coordinator.job.secrets)."""
    if has_references(doc):
        doc, problems = resolve_references(doc)
        if problems:
            raise JobConfigError(origin, problems)
    check = _Checker()
    job = check.job_object(doc, origin)
    name = check.job_name(job, default_name or "job")
    content = check.single_content(job.get("content", _MISSING))
    setting = check.model(Setting, job.get("setting"), "job.setting")
    if content is not None and setting is not None:
        check.whole_job(content, setting)
    if check.errors:
        raise JobConfigError(origin, check.errors)
    for warning in check.warnings:
        log.warning("%s: %s", origin, warning)
    return Job(
        name=name,
        content=[content] if content else [],
        setting=setting or Setting(),
        warnings=check.warnings,
        origin=origin,
    )


_MISSING: Any = object()


class _Checker:
    """Collects errors and warnings while walking the document's skeleton."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def keys(self, obj: dict[str, Any], path: str, known: list[str]) -> None:
        for key in obj:
            if key not in known:
                self.warnings.append(unknown_key_message(path, key, known))

    def obj(self, value: object, path: str) -> dict[str, Any] | None:
        if value is _MISSING:
            self.errors.append(f"{path}: required key is missing")
            return None
        if not isinstance(value, dict):
            self.errors.append(f"{path}: expected an object, got {shown(value)}")
            return None
        return value

    def model(self, cls: type[BaseModel], raw: object, path: str) -> Any:
        # A missing or null section means "all defaults", as in FlinkX.
        return validate_at(cls, {} if raw is None else raw, path, self.errors, self.warnings)

    def job_object(self, doc: object, origin: str) -> dict[str, Any]:
        if not isinstance(doc, dict):
            raise JobConfigError(
                origin, [f"expected a JSON object {_JOB_SHAPE} at the top level, got {shown(doc)}"]
            )
        if "job" not in doc:
            raise JobConfigError(origin, [f"job: required key is missing; expected {_JOB_SHAPE}"])
        self.keys(doc, "", ["job"])
        job = self.obj(doc["job"], "job")
        if job is None:
            raise JobConfigError(origin, self.errors)
        self.keys(job, "job", ["content", "setting", "name"])
        return job

    def job_name(self, job: dict[str, Any], default: str) -> str:
        name = job.get("name", _MISSING)
        if name is _MISSING:
            # The name comes from the job file's: refused like job.name, never rewritten,
            # so that two jobs can never share topics.
            problem = job_name_problem(default)
            if problem:
                self.errors.append(
                    f"job.name: not set, so the job is named after its file: {problem}; "
                    "or set job.name"
                )
            return default
        if not isinstance(name, str) or not name.strip():
            self.errors.append(f"job.name: expected a non-empty string, got {shown(name)}")
            return default
        problem = job_name_problem(name.strip())
        if problem:
            self.errors.append(f"job.name: {problem}")
        return name.strip()

    def single_content(self, content: object) -> Content | None:
        if content is _MISSING:
            self.errors.append(
                'job.content: required key is missing; expected [{"reader": ..., "writer": ...}]'
            )
            return None
        if not isinstance(content, list):
            self.errors.append(f"job.content: expected a list, got {shown(content)}")
            return None
        if len(content) != 1:
            self.errors.append(
                "job.content: expected one reader/writer pair, got an empty list"
                if not content
                else "job.content: only one reader/writer pair per job is supported "
                f"(found {len(content)})"
            )
            return None
        entry = self.obj(content[0], "job.content[0]")
        if entry is None:
            return None
        self.keys(entry, "job.content[0]", ["reader", "writer"])
        reader = self.plugin(entry, "reader", "job.content[0]")
        writer = self.plugin(entry, "writer", "job.content[0]")
        if reader is None or writer is None:
            return None
        return Content(reader=reader, writer=writer)

    def plugin(self, entry: dict[str, Any], kind: plugins.Kind, base: str) -> PluginSpec | None:
        path = f"{base}.{kind}"
        spec = self.obj(entry.get(kind, _MISSING), path)
        if spec is None:
            return None
        self.keys(spec, path, ["name", "parameter"])
        try:
            if "name" not in spec:
                known = ", ".join(p.name for p in plugins.registered(kind))
                raise ConfigError(f"{path}.name: required key is missing; known {kind}s: {known}")
            info = plugins.lookup(spec["name"], kind, f"{path}.name")
            model = info.config_model
        except ConfigError as e:
            self.errors.append(str(e))
            return None
        except PluginError as e:
            self.errors.append(f"{path}.name: {e}")
            return None
        config = self.model(model, spec.get("parameter"), f"{path}.parameter")
        if config is None:
            return None
        return PluginSpec(name=info.name, kind=kind, config=config, path=path)

    def whole_job(self, content: Content, setting: Setting) -> None:
        """Checks across keys: each plugin's own, then reader vs writer vs restore."""
        for spec in (content.reader, content.writer):
            for problem in spec.config.job_problems(setting):
                where = f"{spec.path}.parameter"
                if problem.path:
                    sep = "" if problem.path.startswith("[") else "."
                    where = f"{where}{sep}{problem.path}"
                (self.warnings if problem.warning else self.errors).append(
                    f"{where}: {problem.message}"
                )
        reader_cols = content.reader.config.column_names
        writer_cols = content.writer.config.column_names
        if (
            reader_cols is not None
            and writer_cols is not None
            and len(reader_cols) != len(writer_cols)
        ):
            self.errors.append(
                f"{content.writer.path}.parameter.column: {len(writer_cols)} columns, but "
                f"the reader has {len(reader_cols)} ({content.reader.path}.parameter.column); "
                "rows are mapped by position, so the counts must match"
            )
        self._restore_column(setting, reader_cols, content.reader.path)
        partitions = setting.kafka.partitions
        if partitions is not None and partitions < setting.speed.writer_channels:
            self.warnings.append(
                f"job.setting.kafka.partitions: {partitions} partitions for "
                f"{setting.speed.writer_channels} writer channels; the extra writers stay idle"
            )

    def _restore_column(self, setting: Setting, columns: list[str] | None, reader: str) -> None:
        restore = setting.restore
        if not restore.is_restore or columns is None:
            return
        name, index = restore.restore_column_name, restore.restore_column_index
        lower = [c.lower() for c in columns]
        listing = f"the reader's columns ({reader}.parameter.column) are {', '.join(columns)}"
        if name is not None and name.lower() not in lower:
            self.errors.append(
                f"job.setting.restore.restoreColumnName: {shown(name)} is not read; {listing}"
            )
        elif index is not None and index >= len(columns):
            self.errors.append(
                f"job.setting.restore.restoreColumnIndex: {index} is out of range; {listing}"
            )
        elif name is not None and index is not None and lower[index] != name.lower():
            self.errors.append(
                f"job.setting.restore.restoreColumnIndex: column {index} is "
                f"{shown(columns[index])}, but restoreColumnName is {shown(name)}"
            )
