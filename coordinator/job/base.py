"""The base of every model of a FlinkX JSON object, and the field types FlinkX configs share.

Connector config models (``source_connectors/*/config.py``, ``sink_connectors/*/config.py``)
subclass :class:`PluginConfig` and build their fields from the types here, so that every
connector reads FlinkX JSON the same way:

* field names are FlinkX's camelCase keys (``config.fetchSize``, ``config.splitPk``), so
  connector code reads like the job it came from (``job.setting`` sections instead use
  snake_case names with the keys as aliases: see :mod:`coordinator.job.setting`);
* an unknown key is never fatal: it is set aside, and the job loader warns about it with its
  JSON path (a typo in an optional key must not stop a nightly job, but must be visible);
* models are frozen: a validated config is shared by tasks and must not drift.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    Tag,
    model_validator,
)

from coordinator.jdbc import redact_url

if TYPE_CHECKING:
    from coordinator.job.setting import Setting

# Tags of our discriminated unions start with '~' so that the error formatter can tell them
# from JSON keys and leave them out of paths.
TAG_PREFIX = "~"


def shown(value: object, limit: int = 80) -> str:
    """How an offending input appears in an error: scalars as JSON, containers by kind only
    (they may hold a password). Strings that look like URLs lose their credentials."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        text = redact_url(value) if "://" in value or "password" in value.lower() else value
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return json.dumps(text, ensure_ascii=False)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return type(value).__name__


class FlinkxModel(BaseModel):
    """A JSON object of a FlinkX job: camelCase keys, unknown keys set aside, frozen."""

    model_config = ConfigDict(
        # Keys are matched by alias where a model has them (settings), else by field name.
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="allow",  # collected below, then dropped: see _set_aside_unknown_keys
        frozen=True,
        hide_input_in_errors=True,  # str(ValidationError) must never echo a password
    )

    _unknown_keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _set_aside_unknown_keys(self) -> Self:
        # Keep only the names: the values are dropped so that a misspelt "pasword" never
        # reaches repr() or a dump.
        extra = self.__pydantic_extra__
        if extra:
            self._unknown_keys = tuple(extra)
            extra.clear()
        return self

    @property
    def unknown_keys(self) -> tuple[str, ...]:
        """Keys of this object (not nested ones) that no field knows."""
        return self._unknown_keys

    @classmethod
    def known_keys(cls) -> list[str]:
        """The JSON keys this model reads, for "did you mean" suggestions."""
        keys: list[str] = []
        for name, info in cls.model_fields.items():
            keys.append(info.alias or name)
            choices = getattr(info.validation_alias, "choices", None)
            if choices:
                keys.extend(c for c in choices if isinstance(c, str) and c not in keys)
        return keys


class Problem(NamedTuple):
    """A problem a plugin config finds when it sees the whole job (see
    :meth:`PluginConfig.job_problems`). ``path`` is relative to the ``parameter`` block
    ("" for the block itself, "column", "connection[0].table")."""

    path: str
    message: str
    warning: bool = False


class PluginConfig(FlinkxModel):
    """The ``parameter`` block of a reader or writer. A :class:`coordinator.plugins.Plugin`
    names its subclass, and the job loader validates the block with it."""

    @property
    def column_names(self) -> list[str] | None:
        """The columns this plugin reads or writes, in order; ``None`` = all of the table's
        (or the plugin has no column list). The loader checks that reader and writer agree."""
        return None

    def job_problems(self, setting: Setting) -> list[Problem]:
        """Checks that need the job's settings (e.g. channels). Called only when both this
        config and the settings are valid. The default finds nothing."""
        return []


# ---- shared field types ------------------------------------------------------------------


def one_or_many(value: object) -> object:
    """FlinkX accepts a single string where a list is expected (``"table": "t"``)."""
    return [value] if isinstance(value, str) else value


def _blank_to_none(value: object) -> object:
    """FlinkX templates leave unused keys as ``""`` (``"customSql": ""``): that means unset."""
    return None if isinstance(value, str) and not value.strip() else value


def number_to_str(value: object) -> object:
    # FlinkX reads these keys as strings but, like Gson, takes a number too ("password": 123).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _not_bool(value: object) -> object:
    # JSON true is a bool, and bool is an int in Python: "channel": true must not mean 1.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {shown(value)}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
"""An integer key: a number (or numeric text), never ``true``/``false``."""
Float = Annotated[float, BeforeValidator(_not_bool)]
"""A number key: never ``true``/``false``."""

Password = Annotated[SecretStr, BeforeValidator(number_to_str)]
"""A password: never printed, never echoed in an error; a bare number is taken as text."""

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
StrList = Annotated[list[NonEmptyStr], BeforeValidator(one_or_many)]
OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]


def one_of(*choices: str) -> BeforeValidator:
    """A case-insensitive choice: normalises to lower case and, for anything else, says
    ``expected one of a, b, c, got "x"`` (use on a ``Literal`` of the same choices)."""

    def check(value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError(f"expected one of {', '.join(choices)}, got {shown(value)}")

    return BeforeValidator(check)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueError(
            f"expected a constant (string, number, true, false or null), got {shown(value)}"
        )
    return value


JsonScalar = Annotated[Any, AfterValidator(_json_scalar)]


class ColumnSpec(FlinkxModel):
    """A column in FlinkX's object form: ``{"name": "id", "type": "BIGINT"}``."""

    name: NonEmptyStr
    type: OptStr = Field(default=None, description="SQL type as written in the job (e.g. BIGINT).")
    value: JsonScalar = Field(
        default=None, description="A constant to emit instead of reading the column (FlinkX)."
    )
    format: OptStr = Field(
        default=None,
        description="FlinkX date format for string<->date conversion; accepted, unused.",
    )


def _column_tag(value: object) -> str:
    return TAG_PREFIX + ("object" if isinstance(value, dict | ColumnSpec) else "name")


ColumnEntry = Annotated[
    Annotated[NonEmptyStr, Tag(TAG_PREFIX + "name")]
    | Annotated[ColumnSpec, Tag(TAG_PREFIX + "object")],
    Discriminator(_column_tag),
]


def _check_columns(columns: list[str | ColumnSpec]) -> list[str | ColumnSpec]:
    names = [c if isinstance(c, str) else c.name for c in columns]
    if "*" in names and len(names) > 1:
        raise ValueError('"*" (all columns) must be the only entry')
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:  # MySQL column names are case-insensitive
            raise ValueError(f"column {shown(name)} is listed twice")
        seen.add(name.lower())
    return columns


ColumnList = Annotated[list[ColumnEntry], AfterValidator(_check_columns), Field(min_length=1)]
"""FlinkX's ``column``: names, ``{name, type}`` objects, or ``["*"]`` for all columns."""


def column_names_of(columns: list[str | ColumnSpec]) -> list[str] | None:
    """The names of a :data:`ColumnList`; ``None`` for ``["*"]``."""
    names = [c if isinstance(c, str) else c.name for c in columns]
    return None if names == ["*"] else names


def all_columns() -> list[str | ColumnSpec]:
    """Default of a :data:`ColumnList`: ``["*"]``."""
    return ["*"]
