"""Connecting to PostgreSQL with errors a user can act on, the session settings every Sluice
connection shares (UTC, ISO dates, values in their neutral forms), and the table catalog.

psycopg 3 is the driver: it is maintained by PostgreSQL's own community, ships binary wheels
with libpq, streams large results through server-side cursors, and its loaders let every
value arrive in the form the neutral types define (:mod:`schemas.postgres_types`)."""

from __future__ import annotations

import os
from typing import Any

import psycopg

from coordinator.errors import ConfigError, ConnectError, SluiceError, TaskFailed, TransientError
from coordinator.jdbc import JdbcUrl
from schemas.postgres_types import (
    BASE_AND_ELEMENT,
    COLUMNS_SQL,
    ENUM_LABELS,
    catalog_column,
    column_from_catalog,
    neutral_loaders,
)
from schemas.table import TableSchema

# SQLSTATE classes after which the same work can succeed: a lost or refused connection, a
# serialization failure or deadlock, the server shutting down.
TRANSIENT_CLASSES = ("08", "40", "53", "57P")
ROW_ERROR_CLASSES = ("22", "23")
"""SQLSTATE classes about one row's data (bad value, constraint): the row is rejected."""


def sql_failure(e: psycopg.Error, message: str) -> SluiceError:
    """The error to raise for a failed statement: transient ones are retried by restarting
    the task; the rest (bad data, a missing column) stop it."""
    state = e.sqlstate or ""
    first = (str(e).strip().splitlines() or [""])[0]
    text = f"{message}: {first} (PostgreSQL {state or 'error'})"
    if isinstance(e, psycopg.OperationalError) or state.startswith(TRANSIENT_CLASSES):
        return TransientError(text)
    return TaskFailed(text)


def is_row_error(e: psycopg.Error) -> bool:
    return (e.sqlstate or "").startswith(ROW_ERROR_CLASSES)


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TLS_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
"""The JDBC URL options (pgjdbc's names, which are libpq's) every PostgreSQL connection of
Sluice takes, table reads, WAL streams and writers alike."""


def tls_options(url: JdbcUrl, where: str) -> dict[str, str]:
    """libpq's TLS settings from the URL (``?sslmode=verify-full&sslrootcert=/ca.pem``);
    pgjdbc's ``ssl=true`` means ``verify-full``, as it does there. No option: libpq's
    default (``prefer``: TLS when the server offers it)."""
    opts = {k.lower(): v for k, v in url.options.items()}
    out = {k: opts[k] for k in TLS_OPTIONS if opts.get(k)}
    if opts.get("ssl", "").lower() == "true" and "sslmode" not in out:
        out["sslmode"] = "verify-full"
    mode = out.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise ConfigError(f"{where}: sslmode={mode!r} is not one of {', '.join(SSL_MODES)}")
    for key in ("sslrootcert", "sslcert", "sslkey"):
        if key in out and not os.path.isfile(out[key]):
            raise ConfigError(f"{where}: {key} {out[key]!r} is not a readable file")
    return out


def connect(url: JdbcUrl, user: str, password: str, *, where: str) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit), in UTC with ISO dates, whose
    values load in their neutral forms; ``where`` names the job path of the URL."""
    tls: dict[str, Any] = dict(tls_options(url, where))
    try:
        conn = psycopg.connect(
            autocommit=True,
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=user,
            password=password or None,
            connect_timeout=10,
            options="-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres "
            "-c extra_float_digits=3",
            application_name="sluice",
            **tls,
        )
    except psycopg.OperationalError as e:
        text = (str(e).strip().splitlines() or [""])[-1]
        low = str(e).lower()
        at = f"PostgreSQL at {url.host}:{url.port}"
        if "password authentication failed" in low or "no pg_hba.conf entry" in low:
            raise ConnectError(f"{where}: {at} refused user {user!r}: {text}") from None
        if "does not exist" in low and "database" in low:
            raise ConfigError(f"{where}: database {url.database!r} does not exist on "
                              f"{url.host}:{url.port}") from None  # fmt: skip
        raise ConnectError(f"{where}: cannot connect to {at} ({text})") from None
    neutral_loaders(conn.adapters)
    return conn


def split_table(name: str, default_schema: str = "public") -> tuple[str, str]:
    """``schema.table`` (FlinkX writes the schema first) → (schema, table)."""
    schema, dot, table = name.partition(".")
    return (schema, table) if dot else (default_schema, name)


def load_table_schema(conn: psycopg.Connection[Any], schema: str, table: str) -> TableSchema:
    """The table as the catalog has it; LookupError when there is no such table."""
    with conn.cursor() as cur:
        cur.execute(COLUMNS_SQL, (schema, table))
        rows = cur.fetchall()
        if not rows:
            raise LookupError(f"{schema}.{table}")
        cur.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
            " WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary ORDER BY k.pos",
            (schema, table),
        )
        key = tuple(r[0] for r in cur.fetchall())
    columns = tuple(column_from_catalog(catalog_column(r)) for r in rows)
    return TableSchema(schema, table, columns, key)


_TYPE_SQL = f"""
SELECT format_type(%(oid)s::oid, %(typmod)s), bt.typname, bt.typtype,
       {ENUM_LABELS},
       et.typname, et.typtype
FROM pg_type t
{BASE_AND_ELEMENT}
WHERE t.oid = %(oid)s::oid
"""


def query_schema(conn: psycopg.Connection[Any], sql: str, name: str) -> TableSchema:
    """The columns a query returns (run with ``LIMIT 0``), typed from the catalog like a
    table's; ``name`` labels the schema. Raises psycopg.Error when the query fails."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({sql.replace('%', '%%')}) AS _sluice_probe LIMIT 0", [])
        result = cur.pgresult
        described = [
            (d.name, d.type_code, result.fmod(i) if result is not None else -1)
            for i, d in enumerate(cur.description or [])
        ]
        columns = []
        for col_name, oid, typmod in described:
            cur.execute(_TYPE_SQL, {"oid": oid, "typmod": typmod})
            declared, typname, typtype, labels, element, element_typtype = cur.fetchone() or (
                "text",
                "text",
                "b",
                None,
                None,
                None,
            )
            row = (col_name, declared, False, typname, typtype, typmod, labels, element,
                   element_typtype)  # fmt: skip
            columns.append(column_from_catalog(catalog_column(row)))
    return TableSchema("", name, tuple(columns), ())


def unique_keys(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[str, ...]]:
    """The column lists of the table's primary key and unique constraints/indexes whose
    columns are all NOT NULL: what ``ON CONFLICT`` can name."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT array_agg(a.attname ORDER BY k.pos), bool_and(a.attnotnull) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
            " WHERE n.nspname = %s AND c.relname = %s AND i.indisunique"
            " AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid",
            (schema, table),
        )
        return [tuple(cols) for cols, not_null in cur.fetchall() if not_null]
