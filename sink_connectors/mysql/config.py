"""``mysqlwriter``'s ``parameter`` block, as FlinkX defines it.

One target table per job for now: ``connection`` must hold one entry with one table, and the
loader says so at load time rather than the writer failing when it starts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr

from coordinator.jdbc import JdbcUrl, MysqlJdbcUrl, parse_jdbc_url
from coordinator.job.base import (
    ColumnList,
    FlinkxModel,
    Int,
    NonEmptyStr,
    Password,
    PluginConfig,
    StrList,
    all_columns,
    column_names_of,
    one_of,
)


def _single_url(value: object) -> object:
    # FlinkX's writer takes one URL as a string; a reader-style one-element list is fine too.
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"expected one jdbcUrl (a string), got a list of {len(value)}")
        return value[0]
    return value


def _sql_list(value: object) -> object:
    """A statement or a list of them; blank entries (left by templates) are dropped."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        return [s for s in items if not (isinstance(s, str) and not s.strip())]
    return items


SqlList = Annotated[list[str], BeforeValidator(_sql_list)]


class WriterConnection(FlinkxModel):
    """The target: one database URL and one table."""

    jdbcUrl: Annotated[MysqlJdbcUrl, BeforeValidator(_single_url)]
    table: Annotated[StrList, Field(min_length=1, max_length=1)]

    @property
    def url(self) -> JdbcUrl:
        return parse_jdbc_url(self.jdbcUrl)


class MysqlWriterConfig(PluginConfig):
    """Writes rows in batches inside a transaction that commits (XA) with each checkpoint.

    ``writeMode``: ``insert`` (a duplicate key fails the task), ``replace`` (REPLACE INTO) or
    ``update`` (INSERT ... ON DUPLICATE KEY UPDATE).
    """

    username: str = Field(default="root", description="MySQL user.")
    password: Password = Field(default=SecretStr(""), description="MySQL password; never printed.")
    connection: list[WriterConnection] = Field(min_length=1, max_length=1)
    writeMode: Annotated[
        Literal["insert", "replace", "update"], one_of("insert", "replace", "update")
    ] = Field(default="insert", description="How rows are written; case-insensitive.")
    column: ColumnList = Field(
        default_factory=all_columns,
        description='Target columns, by position of the reader\'s; ["*"] = same names.',
    )
    batchSize: Int = Field(default=1024, ge=1, description="Rows per INSERT statement.")
    preSql: SqlList = Field(default_factory=list, description="Run before the first write.")
    postSql: SqlList = Field(default_factory=list, description="Run after the last commit.")
    updateKey: dict[str, list[NonEmptyStr]] | None = Field(
        default=None, description='FlinkX: unique key columns for update mode, {"key": ["id"]}.'
    )
    session: SqlList = Field(
        default_factory=list, description="Statements run on every new connection (SET ...)."
    )
    schemaChange: Annotated[
        Literal["evolve", "ignore", "fail"], one_of("evolve", "ignore", "fail")
    ] = Field(
        default="evolve",
        description="Sluice addition: what source DDL (binlogreader) does to the target: "
        "'evolve' adds new columns and widens changed ones, 'ignore' leaves it, 'fail' stops.",
    )

    @property
    def column_names(self) -> list[str] | None:
        return column_names_of(self.column)

    @property
    def url(self) -> JdbcUrl:
        """The target database."""
        return self.connection[0].url

    @property
    def table(self) -> str:
        """The target table."""
        return self.connection[0].table[0]
