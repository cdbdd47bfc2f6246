"""``mysqlreader``'s ``parameter`` block, as FlinkX defines it.

Field names are FlinkX's keys. Keys FlinkX templates carry that Sluice does not act on are
accepted quietly and say so in their description, so that an existing job loads unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from coordinator.jdbc import JdbcUrl, MysqlJdbcUrl, parse_jdbc_url
from coordinator.job.base import (
    ColumnList,
    FlinkxModel,
    Int,
    OptStr,
    Password,
    PluginConfig,
    Problem,
    StrList,
    all_columns,
    column_names_of,
    number_to_str,
    one_of,
    one_or_many,
)
from coordinator.job.setting import Setting


class ReaderConnection(FlinkxModel):
    """One ``connection`` entry: a database (``jdbcUrl``, alternatives to try in order, as in
    DataX/FlinkX) and the tables to read from it."""

    jdbcUrl: Annotated[list[MysqlJdbcUrl], BeforeValidator(one_or_many), Field(min_length=1)]
    table: Annotated[StrList, Field(min_length=1)]

    @property
    def urls(self) -> list[JdbcUrl]:
        return [parse_jdbc_url(u) for u in self.jdbcUrl]


class MysqlReaderConfig(PluginConfig):
    """Reads a table (or ``customSql``) in a consistent snapshot, split across reader channels
    by ``splitPk``."""

    username: str = Field(default="root", description="MySQL user.")
    password: Password = Field(default=SecretStr(""), description="MySQL password; never printed.")
    connection: list[ReaderConnection] = Field(min_length=1)
    column: ColumnList = Field(
        default_factory=all_columns,
        description='Columns to read, by name or {"name", "type"}; ["*"] = all.',
    )
    where: OptStr = Field(default=None, description="SQL condition added to the query.")
    customSql: OptStr = Field(
        default=None, description="A query to read instead of the table; run as a subquery."
    )
    splitPk: OptStr = Field(
        default=None, description="Column that splits the table across reader channels (integer)."
    )
    splitStrategy: Annotated[Literal["range", "mod"], one_of("range", "mod")] = Field(
        default="range",
        description="Sluice addition: 'range' splits splitPk's min..max into even ranges; "
        "'mod' is FlinkX's 'splitPk mod channels = channel index'.",
    )
    fetchSize: Int = Field(
        default=1024, ge=1, description="Rows fetched from the server per round trip."
    )
    queryTimeOut: Int | None = Field(default=None, ge=0, description="Read timeout in seconds.")
    startLocation: Annotated[OptStr, BeforeValidator(number_to_str)] = Field(
        default=None, description="Start after this value of increColumn / restoreColumnName."
    )
    polling: bool = Field(default=False, description="Keep polling for new rows by increColumn.")
    pollingInterval: Int = Field(default=5000, ge=1, description="Milliseconds between polls.")
    increColumn: OptStr = Field(default=None, description="Ascending column for incremental reads.")
    useMaxFunc: bool = Field(
        default=False,
        description="Stop an incremental read at the increColumn maximum seen at start.",
    )
    pollingSafetyWindow: Int = Field(
        default=2000,
        ge=0,
        description="Sluice addition: milliseconds an increColumn maximum must have been seen "
        "before rows up to it are read, so rows whose transactions commit out of order are "
        "not skipped (like Kafka Connect JDBC's timestamp.delay.interval.ms).",
    )
    requestAccumulatorInterval: Int | None = Field(
        default=None,
        description="FlinkX: seconds between accumulator requests. Accepted, unused: Sluice "
        "reports progress through its status topic.",
    )

    @model_validator(mode="after")
    def _polling_needs_a_column(self) -> Self:
        if self.polling and self.increColumn is None:
            raise ValueError('"polling": true needs "increColumn", the ascending column to poll by')
        return self

    @property
    def column_names(self) -> list[str] | None:
        return column_names_of(self.column)

    def job_problems(self, setting: Setting) -> list[Problem]:
        channels = setting.speed.reader_channels
        if self.increColumn is not None:
            return self._incremental_problems(setting)
        if channels > 1 and self.splitPk is None:
            return [
                Problem(
                    "",
                    f"{channels} reader channels but no splitPk: without a split column a "
                    "table is read by one channel",
                    warning=True,
                )
            ]
        return []

    def _incremental_problems(self, setting: Setting) -> list[Problem]:
        """Incremental reads (``increColumn``) run on one reader channel, as in FlinkX, and
        keep their position on ``increColumn``."""
        problems = []
        channels = setting.speed.reader_channels
        if channels > 1:
            problems.append(
                Problem(
                    "",
                    f"{channels} reader channels: an incremental read (increColumn) uses one "
                    "reader channel, as in FlinkX; writer channels still apply rows in parallel",
                    warning=True,
                )
            )
        restore = setting.restore.restore_column_name
        if restore and restore != self.increColumn:
            problems.append(
                Problem(
                    "increColumn",
                    f"setting.restore.restoreColumnName {restore!r} is not used: an incremental "
                    f"read resumes after the last increColumn {self.increColumn!r} value",
                    warning=True,
                )
            )
        return problems
