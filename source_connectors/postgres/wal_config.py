"""``pgwalreader``'s ``parameter`` block: FlinkX's keys first, Sluice additions marked.

FlinkX's pgwalreader names the server with ``url`` (a ``jdbc:postgresql://`` URL) and
``databaseName``, the tables with ``tableList`` (``schema.table``), the row kinds with
``cat``, the replication slot with ``slotName`` / ``allowCreateSlot`` / ``temporary``, the
feedback period with ``statusInterval`` and the start with ``lsn``. Sluice adds
``publicationName`` (``pgoutput`` reads a publication) and ``start.mode``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from coordinator.jdbc import JdbcUrl, PostgresJdbcUrl, parse_jdbc_url
from coordinator.job.base import FlinkxModel, OptStr, Password, PluginConfig, StrList
from source_connectors.mysql.binlog_config import CATS, _cat_list
from source_connectors.postgres.pgoutput import parse_lsn

WalStartMode = Literal["initial", "latest", "lsn"]
_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


def _lsn(value: object) -> object:
    """FlinkX's ``lsn`` is a number (0: not given); PostgreSQL spells one ``16/B374D848``."""
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected an LSN such as 0/16B3748, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"an LSN is not negative, got {value}")
        return value
    if isinstance(value, str):
        try:
            return parse_lsn(value)
        except ValueError:
            raise ValueError(f"expected an LSN such as 0/16B3748, got {value!r}") from None
    raise ValueError(f"expected an LSN such as 0/16B3748, got {type(value).__name__}")


Lsn = Annotated[int | None, BeforeValidator(_lsn)]


class WalStart(FlinkxModel):
    """Where a fresh run starts (a resumed run continues from its saved position)."""

    mode: WalStartMode | None = Field(
        default=None,
        description="Sluice addition: initial (a consistent snapshot of the tables, then the "
        "changes after it), latest (changes from now on) or lsn (from start.lsn).",
    )
    lsn: Lsn = Field(default=None, description="The LSN to start at (mode lsn).")


class PgWalReaderConfig(PluginConfig):
    """Row changes of PostgreSQL tables through logical replication (``pgoutput``).

    The WAL is one ordered stream: the reader is one task, and every batch it hands over ends
    on a source-transaction boundary.
    """

    url: PostgresJdbcUrl = Field(
        description="jdbc:postgresql://host:port/db — the server (and database unless "
        "databaseName says otherwise)."
    )
    username: str = Field(
        default="postgres", description="PostgreSQL user (REPLICATION, and SELECT on the tables)."
    )
    password: Password = Field(default=SecretStr(""), description="Password; never printed.")
    databaseName: OptStr = Field(default=None, description="FlinkX: the database to capture.")
    tableList: StrList = Field(
        default_factory=list,
        description="Tables to capture, schema.table (no schema: public). Empty: every table "
        "of the publication, which must then exist.",
    )
    cat: Annotated[list[str], BeforeValidator(_cat_list)] = Field(
        default_factory=lambda: list(CATS), description='Row kinds: "insert,update,delete".'
    )
    pavingData: bool = Field(
        default=False,
        description="FlinkX: flat before_<col>/after_<col> rows (kafkawriter's paving format); "
        "rows on the data topic always carry both images.",
    )
    slotName: str = Field(
        default="",
        description="Logical replication slot; default sluice_<job> (lower case, _ for "
        "anything else).",
    )
    allowCreateSlot: bool = Field(
        default=True, description="Create the slot and the publication when missing."
    )
    temporary: bool = Field(
        default=False,
        description="FlinkX: a temporary slot. Refused: it is dropped with the connection, so "
        "a restarted task could not resume from it.",
    )
    statusInterval: int = Field(
        default=2000,
        ge=1000,
        description="ms between status updates sent to the server (1000 at least).",
    )
    lsn: Lsn = Field(default=None, description="FlinkX: the LSN to start at (0: not given).")
    publicationName: str = Field(
        default="",
        description="Sluice addition: the publication pgoutput reads; default the slot's name.",
    )
    start: WalStart = Field(default_factory=WalStart, description="Where a fresh run starts.")
    fetchSize: int = Field(default=1024, ge=1, description="Rows per fetch of the snapshot.")
    heartbeatInterval: int = Field(
        default=200,
        ge=10,
        description="Sluice addition: ms a caught-up reader waits for the next change.",
    )

    @field_validator("slotName", "publicationName")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value and not _SLOT_NAME.match(value):
            raise ValueError(f"{value!r}: use 1 to 63 lower-case letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        if self.lsn is not None and self.start.lsn is not None and self.lsn != self.start.lsn:
            raise ValueError("lsn and start.lsn differ: give one")
        if self.start.mode == "lsn" and self.start_lsn is None:
            raise ValueError("start.mode lsn needs start.lsn (or lsn)")
        if self.start.mode in ("initial", "latest") and self.start_lsn is not None:
            raise ValueError(f"start.mode {self.start.mode} and an lsn: give one way to start")
        return self

    @property
    def start_lsn(self) -> int | None:
        return self.start.lsn if self.start.lsn is not None else self.lsn

    @property
    def start_mode(self) -> WalStartMode:
        if self.start.mode is not None:
            return self.start.mode
        return "lsn" if self.start_lsn is not None else "latest"

    @property
    def jdbc(self) -> JdbcUrl:
        url = parse_jdbc_url(self.url, "postgresql")
        return replace(url, database=self.databaseName) if self.databaseName else url

    def slot(self, job: str) -> str:
        return self.slotName or re.sub(r"[^a-z0-9_]", "_", f"sluice_{job}".lower())[:63]

    def publication(self, job: str) -> str:
        return self.publicationName or self.slot(job)
