"""``binlogreader``'s ``parameter`` block: FlinkX's keys first, Sluice additions marked.

FlinkX's binlogreader (Canal underneath) names the server with ``jdbcUrl`` (plus ``host`` and
``port``), the tables with ``table`` (``db.table``), the row kinds with ``cat`` and the start
with ``start: {journalName, position, timestamp}``. Sluice also takes mysqlreader's
``connection[0].jdbcUrl`` / ``connection[0].table`` so a snapshot job becomes a CDC job by
changing its reader's name.
"""

from __future__ import annotations

import re
import zlib
from typing import Annotated, Literal, Self

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from coordinator.jdbc import JdbcUrl, MysqlJdbcUrl, parse_jdbc_url
from coordinator.job.base import (
    FlinkxModel,
    OptStr,
    Password,
    PluginConfig,
    Problem,
    StrList,
    one_or_many,
    shown,
)
from coordinator.job.setting import Setting

CATS = ("insert", "update", "delete")
_MODES = ("initial", "latest", "earliest")
StartMode = Literal["initial", "latest", "earliest", "file", "gtid", "timestamp"]


class BinlogConnection(FlinkxModel):
    """mysqlreader's ``connection`` entry, accepted by binlogreader too."""

    jdbcUrl: Annotated[list[MysqlJdbcUrl], BeforeValidator(one_or_many), Field(min_length=1)]
    table: StrList = Field(default_factory=list)


def _start_mode(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _MODES:
        return value.strip().lower()
    raise ValueError(f"expected one of {', '.join(_MODES)}, got {shown(value)}")


class StartSpec(FlinkxModel):
    """Where a fresh run starts reading (a resumed run continues from its saved position).

    FlinkX gives ``journalName`` + ``position`` or ``timestamp``; Sluice adds ``mode``
    (``initial``: a consistent snapshot of the tables, then the binlog from that point;
    ``latest``: the binlog's current end; ``earliest``: its oldest file) and ``gtid``.
    """

    mode: Annotated[
        Literal["initial", "latest", "earliest"] | None, BeforeValidator(_start_mode)
    ] = Field(default=None, description="Sluice addition: initial, latest or earliest.")
    journalName: OptStr = Field(default=None, description="Binlog file to start in.")
    position: int | None = Field(default=None, ge=4, description="Offset in journalName.")
    gtid: OptStr = Field(default=None, description="Sluice addition: MariaDB GTID to start after.")
    timestamp: int | None = Field(
        default=None,
        ge=0,
        description="Start with the first transaction at or after this time (ms).",
    )

    @model_validator(mode="after")
    def _one_way_to_start(self) -> Self:
        ways = [
            k
            for k, given in (
                ("mode", self.mode is not None),
                ("journalName", self.journalName is not None),
                ("gtid", self.gtid is not None),
                ("timestamp", self.timestamp is not None),
            )
            if given
        ]
        if len(ways) > 1:
            raise ValueError(f"give one way to start, not {' and '.join(ways)}")
        if self.position is not None and self.journalName is None:
            raise ValueError('"position" needs "journalName", the binlog file it is in')
        if self.gtid is not None and not re.fullmatch(r"\d+-\d+-\d+(,\d+-\d+-\d+)*", self.gtid):
            raise ValueError(
                f"gtid {self.gtid!r} is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-42)"
            )
        return self

    @property
    def effective_mode(self) -> StartMode:
        if self.mode is not None:
            return self.mode
        if self.journalName is not None:
            return "file"
        if self.gtid is not None:
            return "gtid"
        if self.timestamp is not None:
            return "timestamp"
        return "latest"


def _cat_list(value: object) -> object:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if isinstance(value, list):
        out = []
        for v in value:
            if not isinstance(v, str) or v.strip().lower() not in CATS:
                raise ValueError(f"expected a list of {', '.join(CATS)}, got {v!r}")
            out.append(v.strip().lower())
        if not out:
            raise ValueError(f"expected at least one of {', '.join(CATS)}")
        return out
    return value


class BinlogReaderConfig(PluginConfig):
    """Reads row changes from the MySQL/MariaDB binlog (``binlog_format=ROW``) as they commit.

    One binlog is one ordered stream: the reader is one task, and every batch it hands over
    ends on a source-transaction boundary.
    """

    username: str = Field(default="root", description="MySQL user (needs REPLICATION SLAVE).")
    password: Password = Field(default=SecretStr(""), description="MySQL password; never printed.")
    jdbcUrl: OptStr = Field(
        default=None,
        description="jdbc:mysql://host:port/db — the server, and the database of bare table names.",
    )
    host: OptStr = Field(default=None, description="FlinkX: server host (overrides jdbcUrl's).")
    port: int | None = Field(default=None, ge=1, le=65535, description="FlinkX: server port.")
    connection: list[BinlogConnection] = Field(
        default_factory=list, description="mysqlreader's form: connection[0].jdbcUrl / .table."
    )
    table: StrList = Field(
        default_factory=list, description="Tables to capture: db.table, or table in jdbcUrl's db."
    )
    tableRegex: OptStr = Field(
        default=None, description="Sluice addition: also capture every db.table this matches."
    )
    excludeTable: StrList = Field(
        default_factory=list, description="Sluice addition: db.table regexes never captured."
    )
    cat: Annotated[list[str], BeforeValidator(_cat_list)] = Field(
        default_factory=lambda: list(CATS),
        description='Row kinds to capture: "insert,update,delete".',
    )
    pavingData: bool = Field(
        default=False,
        description="FlinkX: flat before_<col>/after_<col> rows. The default output shape of "
        "kafkawriter (its format paving); rows on the data topic always carry both images.",
    )
    start: StartSpec = Field(default_factory=StartSpec, description="Where a fresh run starts.")
    serverId: int | None = Field(
        default=None,
        ge=1,
        lt=2**32,
        validation_alias=AliasChoices("serverId", "slaveId"),
        description="Replica server_id to read as; default derived from the job name.",
    )
    heartbeatInterval: int = Field(
        default=200,
        ge=10,
        description="Sluice addition: ms between polls of a caught-up binlog (the idle latency).",
    )
    fetchSize: int = Field(
        default=1024, ge=1, description="Rows per fetch of the initial snapshot."
    )
    schemaHistory: bool = Field(
        default=True,
        description="Sluice addition: record each DDL with its binlog position in the Kafka "
        "topic sluice-schema-history-<host>_<port>, so old positions decode with the schema "
        "they had.",
    )

    @field_validator("tableRegex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return value

    @model_validator(mode="after")
    def _has_server_and_tables(self) -> Self:
        if len(self.connection) > 1:
            raise ValueError("binlogreader reads one server: give one connection entry")
        if self.jdbcUrl is None and not self.connection and self.host is None:
            raise ValueError('give the server as "jdbcUrl" (or connection[0].jdbcUrl, or "host")')
        if not self.tables and self.tableRegex is None:
            raise ValueError('name the tables to capture in "table" (or "tableRegex")')
        bare = [t for t in self.tables if "." not in t]
        if bare and not self.url.database:
            raise ValueError(
                f"table {bare[0]!r} names no database: write db.table, or give the database "
                "in jdbcUrl"
            )
        for pattern in self.excludeTable:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(
                    f"excludeTable {pattern!r}: not a regular expression: {e}"
                ) from None
        return self

    @property
    def url(self) -> JdbcUrl:
        """The server (and default database), with ``host``/``port`` applied."""
        text = self.jdbcUrl or (self.connection[0].jdbcUrl[0] if self.connection else None)
        url = parse_jdbc_url(text) if text else JdbcUrl(host=self.host or "", database="")
        if self.host is not None or self.port is not None:
            url = JdbcUrl(
                host=self.host or url.host,
                port=self.port or url.port,
                database=url.database,
                options=url.options,
                scheme=url.scheme,
            )
        return url

    @property
    def tables(self) -> list[str]:
        """``table`` and ``connection[0].table`` together, as written."""
        return list(self.table) + (list(self.connection[0].table) if self.connection else [])

    def server_id(self, job: str) -> int:
        """``serverId``, else one derived from the job name: stable across runs (a replica
        that reconnects with the same id replaces its own old session) and distinct per job
        (two jobs with one id would cut each other off)."""
        if self.serverId is not None:
            return self.serverId
        return 0x40000000 + zlib.crc32(job.encode()) % 0x3FFFFFFF

    def job_problems(self, setting: Setting) -> list[Problem]:
        problems = []
        if setting.speed.reader_channels > 1:
            problems.append(
                Problem(
                    "",
                    f"{setting.speed.reader_channels} reader channels, but a binlog is one "
                    "ordered stream read by one task: set setting.speed.readerChannel to 1 "
                    "(writerChannel can stay higher)",
                )
            )
        return problems
