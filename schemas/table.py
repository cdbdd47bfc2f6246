"""What Sluice knows about a source table: its columns as MySQL declares them, and its key.

Built from ``information_schema.COLUMNS`` (snapshot reader) or from the binlog's table map
(CDC reader). Everything downstream — the Avro schema of a table's rows, the sink's SQL — is
derived from this one description, so a column's type is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column, as ``information_schema.COLUMNS`` describes it."""

    name: str
    data_type: str
    """Lower-case base type, as in ``DATA_TYPE``: ``int``, ``decimal``, ``varchar``, ``enum`` ..."""
    column_type: str
    """The full declaration, as in ``COLUMN_TYPE``: ``int(10) unsigned``, ``enum('a','b')``."""
    nullable: bool = True
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    character_set: str | None = None

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()


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
