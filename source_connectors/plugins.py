"""Sluice's own readers, declared as any package declares a plugin: each object here is named
by an entry point of the ``sluice.connectors`` group in pyproject.toml."""

from __future__ import annotations

from coordinator.plugins import Plugin

MYSQLREADER = Plugin(
    name="mysqlreader",
    kind="reader",
    config="source_connectors.mysql.config:MysqlReaderConfig",
    factory="source_connectors.mysql.snapshot:MysqlSnapshotSource",
    depends={
        # MysqlSnapshotSource hands an increColumn job to source_connectors.mysql.polling.
        "bounded": 'endless with increColumn and "polling": true, else bounded',
        "resumable": "a resume key: restoreColumnName, splitPk or the table's primary key",
    },
)
BINLOGREADER = Plugin(
    name="binlogreader",
    kind="reader",
    config="source_connectors.mysql.binlog_config:BinlogReaderConfig",
    factory="source_connectors.mysql.binlog:BinlogSource",
)
STREAMREADER = Plugin(
    name="streamreader",
    kind="reader",
    config="source_connectors.stream_config:StreamReaderConfig",
    factory="source_connectors.stream:StreamSource",
)
POSTGRESQLREADER = Plugin(
    name="postgresqlreader",
    kind="reader",
    config="source_connectors.postgres.config:PostgresReaderConfig",
    factory="source_connectors.postgres.table:PostgresTableSource",
    aliases=("postgresreader",),
    depends={
        # PostgresTableSource hands an increColumn job to source_connectors.postgres.polling.
        "bounded": 'endless with increColumn and "polling": true, else bounded',
        "resumable": "a resume key: restoreColumnName, splitPk or the table's primary key",
    },
)
PGWALREADER = Plugin(
    name="pgwalreader",
    kind="reader",
    config="source_connectors.postgres.wal_config:PgWalReaderConfig",
    factory="source_connectors.postgres.wal:PgWalSource",
)
