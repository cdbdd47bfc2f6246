"""What Sluice knows about a source table: its columns, each with its neutral type and its
source's own declaration, and its key.

Built by the source connector (``information_schema.COLUMNS``, the binlog's table map, a
generator's config). Everything downstream — the Avro schema of a table's rows, the file and
Kafka formats — is derived from the neutral type (:mod:`schemas.types`); a sink of the
source's own family may use the declaration to recreate the column exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from schemas.errors import SchemaError
from schemas.types import LogicalType

MYSQL = "mysql"


@dataclass(frozen=True)
class Column:
    """One column: its neutral type (``logical``) and how its source declared it.

    ``dialect`` names the family whose declaration ``data_type``/``column_type`` are
    (``mysql``, ``stream``, ...). A column built without ``logical`` is a MySQL declaration
    (as every schema written before neutral types was), and gets its neutral type from it.
    """

    name: str
    data_type: str
    """Lower-case base type as the source names it: ``int``, ``decimal``, ``varchar``..."""
    column_type: str
    """The full declaration: ``int(10) unsigned``, ``enum('a','b')``."""
    nullable: bool = True
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    character_set: str | None = None
    logical: LogicalType = None  # type: ignore[assignment]  # derived in __post_init__
    dialect: str = MYSQL

    def __post_init__(self) -> None:
        if isinstance(self.logical, dict):  # from JSON (schema history, Avro props)
            object.__setattr__(self, "logical", LogicalType.from_json(self.logical))
        elif self.logical is None:
            if self.dialect != MYSQL:
                raise SchemaError(f"column {self.name}: a {self.dialect} column needs its type")
            from schemas.mysql_types import logical_type  # the default family's mapping

            object.__setattr__(self, "logical", logical_type(self))

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()

    def to_json(self) -> dict[str, Any]:
        """Everything a column holds, JSON-ready (:meth:`from_json` reads it back)."""
        return {
            "name": self.name,
            "data_type": self.data_type,
            "column_type": self.column_type,
            "nullable": self.nullable,
            "numeric_precision": self.numeric_precision,
            "numeric_scale": self.numeric_scale,
            "datetime_precision": self.datetime_precision,
            "character_set": self.character_set,
            "logical": self.logical.to_json(),
            "dialect": self.dialect,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        """A column from :meth:`to_json` output, or from an older record without ``logical``
        and ``dialect`` (a MySQL declaration). Unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in _COLUMN_KEYS}
        if isinstance(known.get("logical"), str):  # Avro control records carry it as text
            known["logical"] = json.loads(known["logical"])
        return cls(**known)


@dataclass(frozen=True)
class TableSchema:
    """A table at one schema version. ``version`` grows by one at every DDL the reader sees."""

    database: str
    table: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    version: int = 1
    column_index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_index", {c.name: i for i, c in enumerate(self.columns)})

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return self.columns[self.column_index[name]]


_COLUMN_KEYS = frozenset(Column.__dataclass_fields__)
