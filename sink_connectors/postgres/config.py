"""``postgresqlwriter``'s ``parameter`` block: ``mysqlwriter``'s FlinkX keys, with a
``jdbc:postgresql://`` URL and a ``schema.table`` name."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr

from coordinator.jdbc import JdbcUrl, PostgresJdbcUrl, parse_jdbc_url
from coordinator.job.base import FlinkxModel, Password, StrList, one_of
from sink_connectors.mysql.config import MysqlWriterConfig, _single_url


class PgWriterConnection(FlinkxModel):
    """The target: one database URL and one table (``schema.table``; no schema: ``public``)."""

    jdbcUrl: Annotated[PostgresJdbcUrl, BeforeValidator(_single_url)]
    table: Annotated[StrList, Field(min_length=1, max_length=1)]

    @property
    def url(self) -> JdbcUrl:
        return parse_jdbc_url(self.jdbcUrl, "postgresql")


class PostgresWriterConfig(MysqlWriterConfig):
    """Writes rows in batches inside a transaction that commits with each checkpoint:
    ``PREPARE TRANSACTION``, then ``COMMIT PREPARED`` once Kafka has committed.

    ``writeMode``: ``insert`` (a duplicate key is a rejected row), ``replace`` and
    ``update`` (both ``INSERT … ON CONFLICT (key) DO UPDATE``).
    """

    username: str = Field(default="postgres", description="PostgreSQL user.")
    password: Password = Field(
        default=SecretStr(""), description="PostgreSQL password; never printed."
    )
    connection: list[PgWriterConnection] = Field(min_length=1, max_length=1)  # type: ignore[assignment]
    schemaChange: Annotated[
        Literal["evolve", "ignore", "fail"], one_of("evolve", "ignore", "fail")
    ] = Field(
        default="evolve",
        description="What source DDL (binlogreader, pgwalreader) does to the target: "
        "'evolve' adds new columns and follows changed ones, 'ignore' leaves it (columns it "
        "lacks are not written), 'fail' stops naming the DDL.",
    )
