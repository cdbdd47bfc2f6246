"""``postgresqlreader``'s ``parameter`` block: ``mysqlreader``'s FlinkX keys, with
``jdbc:postgresql://`` URLs and ``schema.table`` names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr

from coordinator.jdbc import JdbcUrl, PostgresJdbcUrl, parse_jdbc_url
from coordinator.job.base import FlinkxModel, Password, StrList, one_or_many
from source_connectors.mysql.config import MysqlReaderConfig


class PgReaderConnection(FlinkxModel):
    """One ``connection`` entry: a database and the table to read (``schema.table``; no
    schema: ``public``)."""

    jdbcUrl: Annotated[list[PostgresJdbcUrl], BeforeValidator(one_or_many), Field(min_length=1)]
    table: Annotated[StrList, Field(min_length=1)]

    @property
    def urls(self) -> list[JdbcUrl]:
        return [parse_jdbc_url(u, "postgresql") for u in self.jdbcUrl]


class PostgresReaderConfig(MysqlReaderConfig):
    """Reads a table in one consistent snapshot per reader channel, split by ``splitPk``."""

    username: str = Field(default="postgres", description="PostgreSQL user.")
    password: Password = Field(
        default=SecretStr(""), description="PostgreSQL password; never printed."
    )
    connection: list[PgReaderConnection] = Field(min_length=1)  # type: ignore[assignment]
