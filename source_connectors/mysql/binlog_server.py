"""What the binlog reader asks of the server, and what it tells the user when it is missing.

Every check here runs before anything is written — in ``Source.check()``, or in
``list_parts()`` for where a fresh run starts — or when a part starts, and each failure is one line that says which server, what is wrong and what to change:
binary logging off, ``binlog_format`` or ``binlog_row_image`` or ``binlog_row_metadata`` not
right, a missing REPLICATION privilege, a start or saved position in a binlog file the server
has purged (or never wrote), a start position that is not a transaction boundary.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pymysql
from pymysqlreplication import BinLogStreamReader

from coordinator.errors import ConfigError, ConnectError
from coordinator.jdbc import JdbcUrl
from coordinator.mysql_client import tls_settings
from source_connectors.mysql.binlog_boundary import check_start_boundary

ER_SPECIFIC_ACCESS_DENIED = 1227
ER_ACCESS_DENIED = 1045
ER_MASTER_FATAL_READING_BINLOG = 1236

# The settings a row-based CDC reader needs, with the value it needs and why.
REQUIRED_SETTINGS = (
    ("log_bin", "ON", "binary logging is off", "log_bin=binlog"),
    ("binlog_format", "ROW", "row events carry the changed rows", "binlog_format=ROW"),
    ("binlog_row_image", "FULL", "updates and deletes carry whole rows", "binlog_row_image=FULL"),
    (
        "binlog_row_metadata",
        "FULL",
        "table map events carry column names, so events are matched to the right schema",
        "binlog_row_metadata=FULL",
    ),
)


def server_name(url: JdbcUrl) -> str:
    return f"{url.host}:{url.port}"


def settings_problem(values: Mapping[str, str], server: str) -> str | None:
    """The message for the first required server setting that is wrong, else None.

    ``values`` are the *global* values (``@@global.x``): the binlog is written by every
    session, so a per-session setting of the reader's own connection proves nothing.
    """
    for name, wanted, why, cnf in REQUIRED_SETTINGS:
        have = str(values.get(name, "")).upper()
        if have in (wanted, "1" if wanted == "ON" else wanted):
            continue
        if name == "log_bin":
            return (
                f"binlogreader: binary logging is off on {server}; start the server with "
                f"{cnf} (and server_id) under [mysqld] in my.cnf"
            )
        return (
            f"binlogreader: {name} is {have or 'unset'} on {server}, but must be {wanted} "
            f"({why}): run SET GLOBAL {name}={wanted} and put {cnf} under [mysqld] in my.cnf "
            "so it survives a restart"
        )
    return None


def check_settings(conn: Any, url: JdbcUrl) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, "
            "@@global.binlog_row_metadata"
        )
        row = cur.fetchone()
    values = dict(zip([s[0] for s in REQUIRED_SETTINGS], [str(v) for v in row], strict=True))
    problem = settings_problem(values, server_name(url))
    if problem:
        raise ConfigError(problem)


def grant_hint(user: str) -> str:
    return f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'<host>'"


def privilege_error(user: str, server: str, detail: str) -> ConfigError:
    return ConfigError(
        f"binlogreader: user {user!r} may not read the binlog of {server} ({detail}); "
        f"{grant_hint(user)}"
    )


# --- positions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinlogFile:
    name: str
    size: int


def binary_logs(conn: Any, user: str, server: str) -> list[BinlogFile]:
    """``SHOW BINARY LOGS``, oldest first."""
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            return [BinlogFile(str(r[0]), int(r[1])) for r in cur.fetchall()]
    except pymysql.err.OperationalError as e:
        if e.args[0] == ER_SPECIFIC_ACCESS_DENIED:
            raise privilege_error(user, server, "SHOW BINARY LOGS is denied") from None
        raise


def current_position(conn: Any, user: str, server: str) -> tuple[str, int]:
    """The end of the binlog now (``SHOW MASTER STATUS``)."""
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
    except pymysql.err.OperationalError as e:
        if e.args[0] == ER_SPECIFIC_ACCESS_DENIED:
            raise privilege_error(user, server, "SHOW MASTER STATUS is denied") from None
        raise
    if row is None:
        raise ConfigError(f"binlogreader: binary logging is off on {server}")
    return str(row[0]), int(row[1])


def gtid_at(conn: Any, file: str, pos: int) -> str:
    """The MariaDB GTID state at a binlog position ('' when unknown, e.g. MySQL)."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
            row = cur.fetchone()
    except pymysql.MySQLError:
        return ""
    return str(row[0] or "") if row else ""


def purged_message(what: str, file: str, pos: int | str, oldest: str | None, server: str) -> str:
    return (
        f"binlogreader: {what}: {file}:{pos} is no longer on {server} (purged; the oldest "
        f"binlog there is {oldest or 'none'}); nothing between it and now can be read. Start "
        'over with "start": {"mode": "initial"} (a fresh snapshot, then the binlog) and without '
        "setting.restore.isRestore, or reset the job's offsets"
    )


def _split_name(name: str) -> tuple[str, int | None]:
    """``mysql-bin.000012`` → ``("mysql-bin", 12)``; a name without a number → ``(name, None)``."""
    base, dot, number = name.rpartition(".")
    return (base, int(number)) if dot and number.isdigit() else (name, None)


def missing_file_message(
    what: str, file: str, pos: int, logs: list[BinlogFile], server: str
) -> str:
    """Why ``file`` is not among the server's binlog files ``logs`` (oldest first): purged,
    never written yet, or not a name this server uses."""
    if not logs:
        return f"binlogreader: {what}: {file}:{pos} is not on {server}, which has no binlog files"
    oldest, newest = logs[0].name, logs[-1].name
    base, number = _split_name(file)
    server_base, newest_number = _split_name(newest)
    listed = f"SHOW BINARY LOGS lists {oldest} to {newest}"
    if number is None or base != server_base:
        return (
            f"binlogreader: {what}: {file}:{pos} is not a binlog file of {server}, whose files "
            f"are named {server_base}.NNNNNN ({listed}); give one of those"
        )
    if newest_number is not None and number > newest_number:
        return (
            f"binlogreader: {what}: {file}:{pos} is newer than the last binlog file on {server}, "
            f"{newest}: the server has not written it (nothing was purged; was its binlog "
            f"reset, or is this another server?); {listed}"
        )
    return purged_message(what, file, pos, oldest, server)


def check_file_present(
    conn: Any, user: str, server: str, file: str, pos: int, what: str, pos_what: str = ""
) -> int:
    """That ``file`` is one of the server's binlog files and ``pos`` is inside it; returns the
    file's size. ``what`` names the file in messages, ``pos_what`` the position (default:
    ``what``)."""
    logs = binary_logs(conn, user, server)
    names = [f.name for f in logs]
    if file not in names:
        raise ConfigError(missing_file_message(what, file, pos, logs, server))
    size = logs[names.index(file)].size
    if pos > size:
        raise ConfigError(
            f"binlogreader: {pos_what or what}: {file}:{pos} is beyond the end of {file} on "
            f"{server} ({size} bytes); give a position inside the file"
        )
    return size


def check_start_position(conn: Any, user: str, server: str, file: str, pos: int, path: str) -> None:
    """A user's ``start`` (``path`` is its JSON path): the file is on the server and the
    position is a transaction boundary in it (:mod:`.binlog_boundary`)."""
    where = f"{path}.position"
    size = check_file_present(conn, user, server, file, pos, f"{path}.journalName", where)
    try:
        check_start_boundary(conn, server, file, pos, size, where)
    except pymysql.err.OperationalError as e:
        if e.args and e.args[0] == ER_SPECIFIC_ACCESS_DENIED:
            raise privilege_error(user, server, "SHOW BINLOG EVENTS is denied") from None
        raise


# --- the replication stream --------------------------------------------------------------------


LOST_CONNECTION = (2006, 2013)  # CR_SERVER_GONE_ERROR, CR_SERVER_LOST


class StreamLost(pymysql.err.InterfaceError):
    """The replication connection broke. mysql-replication would reconnect by itself on the
    OperationalError this replaces — from the GTID it started at (delivering every transaction
    since again) or from the last event read (in the middle of a transaction, after its
    TABLE_MAP). The stream reconnects itself instead, from its committed position."""


class StreamConnection(pymysql.connections.Connection):
    """A PyMySQL connection for mysql-replication: a lost connection is :class:`StreamLost`,
    and one TLS context is shared among all connections asking for
    PyMySQL's default ("PREFERRED": try TLS, unverified). A caught-up reader reconnects every
    ``heartbeatInterval`` (two connections a poll), and building a fresh default context —
    loading the system CA store — was nearly all the CPU an idle reader used (~20% of a core
    at 200 ms). Explicit TLS settings still get a context of their own."""

    _preferred: ClassVar[ssl.SSLContext | None] = None

    def _read_packet(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._read_packet(*args, **kwargs)
        except pymysql.err.OperationalError as e:
            if e.args and e.args[0] in LOST_CONNECTION:
                raise StreamLost(*e.args) from None
            raise

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:
            if StreamConnection._preferred is None:  # exactly as PyMySQL builds it
                StreamConnection._preferred = super()._create_ssl_ctx({})
            return StreamConnection._preferred
        result: ssl.SSLContext = super()._create_ssl_ctx(sslp)
        return result


def stream_settings(url: JdbcUrl, user: str, password: str) -> dict[str, Any]:
    """PyMySQL arguments of a replication connection: TLS as the URL says, like every
    other connection (coordinator.mysql_client.tls_settings)."""
    return {
        "host": url.host,
        "port": url.port,
        "user": user,
        "password": password,
        "charset": "utf8mb4",
        "connect_timeout": 10,
        **tls_settings(url, "binlogreader.jdbcUrl"),
    }


def stream_error(e: pymysql.MySQLError, user: str, server: str, where: str) -> Exception:
    """A replication error as something the user can act on (or retry)."""
    code = e.args[0] if e.args else 0
    msg = str(e.args[1]) if len(e.args) > 1 else str(e)
    if code in (ER_SPECIFIC_ACCESS_DENIED, ER_ACCESS_DENIED) and "REPLICATION" in msg.upper():
        return privilege_error(user, server, msg)
    if code == ER_MASTER_FATAL_READING_BINLOG:
        return ConfigError(
            f"binlogreader: {server} cannot send the binlog from {where}: {msg}. If that "
            "position was purged, start over with start mode initial (or reset the offsets)"
        )
    return ConnectError(f"binlogreader: reading the binlog of {server} from {where}: {msg}")


def probe_replication(url: JdbcUrl, user: str, password: str, server_id: int) -> None:
    """Ask for the binlog once (from its current end, so nothing is read): the only sure test
    of the REPLICATION SLAVE privilege, which grants can give in many ways (roles, ALL)."""
    conn = pymysql.connect(**stream_settings(url, user, password))
    try:
        file, pos = current_position(conn, user, server_name(url))
    finally:
        conn.close()
    stream = BinLogStreamReader(
        connection_settings=stream_settings(url, user, password),
        server_id=server_id,
        log_file=file,
        log_pos=pos,
        resume_stream=True,
        blocking=False,
        only_events=[],
        enable_logging=False,
    )
    try:
        stream.fetchone()
    except pymysql.MySQLError as e:
        raise stream_error(e, user, server_name(url), f"{file}:{pos}") from None
    finally:
        with contextlib.suppress(Exception):
            stream.close()
