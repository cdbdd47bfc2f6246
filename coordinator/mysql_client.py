"""Connecting to MySQL/MariaDB with errors a user can act on, and the session settings every
Sluice connection shares (UTC timestamps, utf8mb4), so readers and writers agree on values."""

from __future__ import annotations

import os
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import ER

from coordinator.errors import ConfigError, ConnectError, SluiceError, TaskFailed, TransientError
from coordinator.jdbc import JdbcUrl

CR_CONN_HOST_ERROR = 2003
CR_UNKNOWN_HOST = 2005

# Errors after which the same work can succeed: InnoDB rolled the transaction back
# (deadlock, lock wait timeout) or the connection went away (server restart, KILL).
TRANSIENT_ERRORS = frozenset(
    {
        ER.LOCK_WAIT_TIMEOUT,  # 1205
        ER.LOCK_DEADLOCK,  # 1213
        ER.CON_COUNT_ERROR,  # 1040 too many connections
        ER.SERVER_SHUTDOWN,  # 1053
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        1317,  # ER_QUERY_INTERRUPTED: the statement running when its connection was killed
        1158,  # ER_NET_READ_ERROR
        1159,  # ER_NET_READ_INTERRUPTED
        1160,  # ER_NET_ERROR_ON_WRITE
        1161,  # ER_NET_WRITE_INTERRUPTED
        2055,  # lost connection to server at '...'
        2003,  # can't connect
        2006,  # server has gone away
        2013,  # lost connection during query
        # XA outcomes a restart settles: the server rolled the branch back (or could not
        # take it), so the task replays it from its last committed offsets.
        1399,  # XAER_RMFAIL: the branch is not in a state for this command (after a kill)
        1402,  # XA_RBROLLBACK
        1613,  # XA_RBTIMEOUT
        1614,  # XA_RBDEADLOCK
        1180,  # got error during COMMIT
        1637,  # too many active concurrent transactions
    }
)


def sql_failure(e: pymysql.MySQLError, message: str) -> SluiceError:
    """The error to raise for a failed statement: transient ones are retried by restarting
    the task; the rest (bad data, missing column) stop it."""
    code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
    text = f"{message}: {e.args[-1] if e.args else e} (MySQL error {code})"
    if code in TRANSIENT_ERRORS or isinstance(e, pymysql.err.InterfaceError):
        return TransientError(text)
    return TaskFailed(text)


MYSQL_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def tls_settings(url: JdbcUrl, where: str) -> dict[str, Any]:
    """PyMySQL's TLS arguments from a JDBC URL's options, Connector/J's names: ``sslMode``
    (``DISABLED``, ``PREFERRED`` — the default: TLS when the server offers it —,
    ``REQUIRED``, ``VERIFY_CA``, ``VERIFY_IDENTITY``), the older ``useSSL`` /
    ``requireSSL`` / ``verifyServerCertificate``, MariaDB Connector/J's
    ``trustServerCertificate`` and ``serverSslCert`` (the CA certificate file, which the
    verifying modes need)."""
    opts = {k.lower(): v for k, v in url.options.items()}
    yes = lambda key: opts.get(key, "").lower() == "true"  # noqa: E731
    mode = opts.get("sslmode", "").upper()
    if not mode:
        if opts.get("usessl", "").lower() == "false":
            mode = "DISABLED"
        elif yes("verifyservercertificate") and not yes("trustservercertificate"):
            mode = "VERIFY_CA"
        elif yes("usessl") or yes("requiressl") or yes("trustservercertificate"):
            mode = "REQUIRED"
        else:
            mode = "PREFERRED"
    if mode not in MYSQL_SSL_MODES:
        raise ConfigError(f"{where}: sslMode={mode!r} is not one of {', '.join(MYSQL_SSL_MODES)}")
    ca = opts.get("serversslcert")
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    if mode == "PREFERRED":
        return {}  # PyMySQL's own default
    if mode == "REQUIRED":
        return {"ssl": {"verify_mode": False}}
    if not ca:
        raise ConfigError(f"{where}: sslMode={mode} needs serverSslCert (the CA certificate file)")
    if not os.path.isfile(ca):
        raise ConfigError(f"{where}: serverSslCert {ca!r} is not a readable file")
    return {"ssl": {"ca": ca, "check_hostname": mode == "VERIFY_IDENTITY"}}


def connect(
    url: JdbcUrl,
    user: str,
    password: str,
    *,
    where: str,
    database: str | None = None,
    read_timeout: int | None = None,
    autocommit: bool = True,
    streaming: bool = False,
) -> pymysql.connections.Connection:
    """Open a connection; ``where`` names the job path the URL came from, for messages."""
    tls = tls_settings(url, where)
    try:
        conn = pymysql.connect(
            host=url.host,
            port=url.port,
            user=user,
            password=password,
            database=database if database is not None else url.database,
            charset=url.charset(),
            autocommit=autocommit,
            connect_timeout=10,
            read_timeout=read_timeout,
            cursorclass=pymysql.cursors.SSCursor if streaming else pymysql.cursors.Cursor,
            # TIMESTAMP values travel as UTC, whatever the server's zone.
            init_command="SET time_zone = '+00:00'",
            **tls,
        )
    except pymysql.err.OperationalError as e:
        code = e.args[0] if e.args else 0
        msg = e.args[1] if len(e.args) > 1 else str(e)
        if code == ER.ACCESS_DENIED_ERROR:
            hint = "check username and password"
            if tls.get("ssl_disabled"):
                hint += ", and whether the server requires TLS (the URL has sslMode=DISABLED)"
            raise ConnectError(
                f"{where}: MySQL at {url.host}:{url.port} refused user {user!r}: access denied "
                f"({hint})"
            ) from None
        if code == ER.BAD_DB_ERROR:
            raise ConfigError(
                f"{where}: database {url.database!r} does not exist on {url.host}:{url.port}"
            ) from None
        if code in (CR_CONN_HOST_ERROR, CR_UNKNOWN_HOST):
            raise ConnectError(
                f"{where}: cannot connect to MySQL at {url.host}:{url.port} ({msg})"
            ) from None
        raise ConnectError(f"{where}: MySQL at {url.host}:{url.port}: {msg}") from None
    return conn


def check_name(name: str, where: str, what: str = "table") -> None:
    """Refuse a name MySQL cannot hold before it reaches ``information_schema``: identifiers
    are utf8mb3 there, so a character beyond U+FFFF (an emoji) fails the lookup with a
    collation error instead of "no such table"."""
    if any(ord(ch) > 0xFFFF for ch in name):
        raise ConfigError(
            f"{where}: {what} {name!r} does not exist: MySQL names cannot hold characters "
            "beyond U+FFFF (such as emoji)"
        )


def column_by_name(columns: tuple[str, ...] | list[str], name: str) -> str | None:
    """The column of ``columns`` that ``name`` means, in its real spelling: MySQL matches
    column names case-insensitively, so FlinkX jobs may write ``"ID"`` for ``id``."""
    if name in columns:
        return name
    folded = name.casefold()
    found = [c for c in columns if c.casefold() == folded]
    return found[0] if len(found) == 1 else None


def columns_named(names: list[str], table: Any, where: str) -> list[str]:
    """``names`` (a job's ``column`` list) in ``table``'s own spelling; one line naming
    ``where``, the unknown names and the table's columns if any is not there."""
    real = [column_by_name(table.column_names, n) for n in names]
    unknown = [n for n, r in zip(names, real, strict=True) if r is None]
    if unknown:
        raise ConfigError(
            f"{where}.column: {', '.join(map(repr, unknown))} not in table "
            f"{table.qualified_name} (columns: {', '.join(table.column_names)})"
        )
    return [r for r in real if r is not None]


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def qualified(database: str, table: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(table)}"


def query_one(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


# Unique indexes, columns in index order; NULLABLE is '' for NOT NULL columns.
_UNIQUE_KEYS_SQL = """
SELECT INDEX_NAME, COLUMN_NAME, NULLABLE
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0
ORDER BY INDEX_NAME, SEQ_IN_INDEX
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def unique_keys(conn: Any, target: Any) -> dict[str, tuple[tuple[str, ...], bool]]:
    """``{index name: (columns, all NOT NULL)}`` of the target's PRIMARY KEY and UNIQUE keys."""
    keys: dict[str, tuple[list[str], bool]] = {}
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(_UNIQUE_KEYS_SQL, (target.database, target.table))
        for index, column, nullable in cur.fetchall():
            cols, not_null = keys.setdefault(_text(index), ([], True))
            cols.append(_text(column))
            keys[_text(index)] = (cols, not_null and _text(nullable or "") == "")
    return {name: (tuple(cols), nn) for name, (cols, nn) in keys.items()}
