"""PostgreSQL helpers for tests and benchmarks: connections and FlinkX job blocks."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

import psycopg


def pg_params(postgres_url: str) -> dict[str, Any]:
    u = urlparse(postgres_url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 5432,
        "user": unquote(u.username or "postgres"),
        "password": unquote(u.password or ""),
    }


def pg_connect(postgres_url: str, database: str = "postgres") -> psycopg.Connection[Any]:
    p = pg_params(postgres_url)
    return psycopg.connect(
        host=p["host"], port=p["port"], user=p["user"], password=p["password"] or None,
        dbname=database, autocommit=True,
    )  # fmt: skip


def pg_jdbc_url(postgres_url: str, database: str) -> str:
    p = pg_params(postgres_url)
    return f"jdbc:postgresql://{p['host']}:{p['port']}/{database}"


def pg_reader(postgres_url: str, database: str, table: str, **extra: Any) -> dict[str, Any]:
    """A ``postgresqlreader`` block reading ``table`` (``schema.table``)."""
    p = pg_params(postgres_url)
    return {
        "name": "postgresqlreader",
        "parameter": {
            "username": p["user"],
            "password": p["password"],
            "connection": [{"jdbcUrl": [pg_jdbc_url(postgres_url, database)], "table": [table]}],
            "column": ["*"],
            "fetchSize": 500,
            **extra,
        },
    }


def pg_writer(postgres_url: str, database: str, table: str, **extra: Any) -> dict[str, Any]:
    """A ``postgresqlwriter`` block writing ``table`` (``schema.table``)."""
    p = pg_params(postgres_url)
    return {
        "name": "postgresqlwriter",
        "parameter": {
            "username": p["user"],
            "password": p["password"],
            "connection": [{"jdbcUrl": pg_jdbc_url(postgres_url, database), "table": [table]}],
            "column": ["*"],
            "writeMode": "insert",
            "batchSize": 500,
            **extra,
        },
    }


def pg_wal_reader(
    postgres_url: str, database: str, tables: list[str], **extra: Any
) -> dict[str, Any]:
    """A ``pgwalreader`` block capturing ``tables`` (``schema.table``)."""
    p = pg_params(postgres_url)
    return {
        "name": "pgwalreader",
        "parameter": {
            "url": pg_jdbc_url(postgres_url, database),
            "username": p["user"],
            "password": p["password"],
            "tableList": tables,
            "heartbeatInterval": 50,
            **extra,
        },
    }


def prepared(postgres_url: str, db: str) -> list[str]:
    """The gids of the transactions left prepared in ``db`` (two-phase writers leave none)."""
    conn = pg_connect(postgres_url, db)
    try:
        rows = conn.execute("SELECT gid FROM pg_prepared_xacts WHERE database = %s", (db,))
        return [r[0] for r in rows.fetchall()]
    finally:
        conn.close()
