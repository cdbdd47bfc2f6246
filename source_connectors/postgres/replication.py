"""The replication-protocol half of ``pgwalreader``: a psycopg2 logical replication
connection, slots, publications and the server checks, each failure one line a user can act
on.

Why psycopg2 here when every other PostgreSQL connection is psycopg 3: psycopg 3 does not
speak the streaming replication protocol (``START_REPLICATION``'s CopyBoth mode), and
psycopg2's ``LogicalReplicationConnection`` does — maintained by the same people, built on
libpq, with status feedback and keepalives handled in C. Everything that is plain SQL (the
catalog, the snapshot read) stays on psycopg 3, so values load exactly as ``postgresqlreader``
loads them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg2
import psycopg2.errors
import psycopg2.extras

from coordinator.errors import ConfigError, ConnectError, TaskFailed, TransientError
from coordinator.jdbc import JdbcUrl
from coordinator.pg_client import tls_options
from schemas.postgres_types import quote_ident
from source_connectors.postgres.pgoutput import lsn_text, parse_lsn

SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 "
    "-c lc_monetary=C"
)
"""The walsender formats the values it sends in its own session: the same settings as every
Sluice connection (:func:`coordinator.pg_client.connect`), so WAL values read as a SELECT's."""

SLOT_ACTIVE_WAIT_S = 10.0


def replication_connection(url: JdbcUrl, user: str, password: str, *, where: str) -> Any:
    """A psycopg2 logical replication connection to ``url``'s database."""
    try:
        return psycopg2.connect(
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=user,
            password=password or None,
            connect_timeout=10,
            application_name="sluice-wal",
            options=SESSION_OPTIONS,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            **tls_options(url, where),
        )
    except psycopg2.OperationalError as e:
        text = (str(e).strip().splitlines() or [""])[-1]
        at = f"PostgreSQL at {url.host}:{url.port}"
        if "replication" in str(e).lower() and (
            "pg_hba" in str(e) or "permission" in str(e).lower() or "must be" in str(e).lower()
        ):
            raise ConfigError(
                f"{where}: {at} refused a replication connection for {user!r}: {text} "
                "(the user needs the REPLICATION attribute and a pg_hba.conf line allowing it)"
            ) from None
        raise ConnectError(
            f"{where}: cannot open a replication connection to {at} ({text})"
        ) from None


@dataclass(frozen=True)
class SlotInfo:
    name: str
    plugin: str
    database: str
    active_pid: int | None
    restart_lsn: int | None
    confirmed_flush_lsn: int | None
    temporary: bool


def slot_info(conn: psycopg.Connection[Any], name: str) -> SlotInfo | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT slot_name, coalesce(plugin, ''), coalesce(database, ''), active_pid,"
            " restart_lsn::text, confirmed_flush_lsn::text, temporary"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (name,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    lsn = [parse_lsn(v) if v else None for v in row[4:6]]
    return SlotInfo(row[0], row[1], row[2], row[3], lsn[0], lsn[1], bool(row[6]))


def check_server(conn: psycopg.Connection[Any], url: JdbcUrl, user: str, where: str) -> None:
    """``wal_level`` logical, and a user that may replicate."""
    at = f"PostgreSQL at {url.host}:{url.port}"
    with conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        level = str((cur.fetchone() or ("",))[0])
        if level != "logical":
            raise ConfigError(
                f"{where}: {at} has wal_level={level}; logical replication needs "
                "wal_level=logical (set in postgresql.conf; it takes effect when the server starts)"
            )
        cur.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cur.fetchone()
        if not row or not row[0]:
            raise ConfigError(
                f"{where}: user {user!r} on {at} has no REPLICATION privilege "
                f"(ALTER ROLE {quote_ident(user)} REPLICATION)"
            )


def check_slot(
    conn: psycopg.Connection[Any], slot: str, database: str, where: str
) -> SlotInfo | None:
    """The slot if it exists, checked: pgoutput, this database, not in use (a task of this
    job that was just killed may hold it for a moment: waited for)."""
    deadline = time.monotonic() + SLOT_ACTIVE_WAIT_S
    while True:
        info = slot_info(conn, slot)
        if info is None:
            return None
        if info.plugin != "pgoutput" or info.database != database:
            raise ConfigError(
                f"{where}.slotName: slot {slot!r} is a {info.plugin or 'physical'} slot of "
                f"database {info.database or '-'}; pgwalreader needs a pgoutput slot of "
                f"{database} (choose another slotName)"
            )
        if info.active_pid is None:
            return info
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"{where}.slotName: slot {slot!r} is in use by PostgreSQL backend "
                f"{info.active_pid} (another job or client reads it; one reader per slot)"
            )
        time.sleep(0.25)


def create_slot(conn: psycopg.Connection[Any], slot: str, where: str) -> int:
    """A permanent pgoutput slot; its consistent point (the first LSN it streams)."""
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')",
                (slot,),
            )
            row = cur.fetchone()
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ConfigError(f"{where}.slotName: cannot create slot {slot!r}: {first}") from None
    assert row is not None
    return parse_lsn(row[0])


def publication_tables(conn: psycopg.Connection[Any], name: str) -> list[str] | None:
    """``schema.table`` of every table the publication publishes; None when there is none."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pubinsert AND pubupdate AND pubdelete FROM pg_publication WHERE pubname = %s",
            (name,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        if not row[0]:
            raise ConfigError(
                f"publication {name!r} does not publish every insert, update and delete; "
                "pgwalreader would miss changes (ALTER PUBLICATION ... SET (publish = "
                "'insert, update, delete, truncate'))"
            )
        cur.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables"
            " WHERE pubname = %s ORDER BY 1",
            (name,),
        )
        return [r[0] for r in cur.fetchall()]


def create_publication(
    conn: psycopg.Connection[Any], name: str, tables: list[tuple[str, str]], where: str
) -> None:
    names = ", ".join(f"{quote_ident(s)}.{quote_ident(t)}" for s, t in tables)
    try:
        conn.execute(f"CREATE PUBLICATION {quote_ident(name)} FOR TABLE {names}")
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"{where}.publicationName: cannot create publication {name!r}: {first}"
        ) from None


class SnapshotSlot:
    """A temporary slot created only for its exported snapshot: ``point`` is the LSN the
    snapshot shows the database at (every transaction committed before it, none after)."""

    def __init__(self, url: JdbcUrl, user: str, password: str, where: str) -> None:
        self.conn = replication_connection(url, user, password, where=where)
        # Unique on the server: jobs on other hosts and processes take snapshots too.
        name = f"sluice_snapshot_{os.getpid()}_{secrets.token_hex(4)}"
        cur = self.conn.cursor()
        try:
            cur.execute(
                f"CREATE_REPLICATION_SLOT {name} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"
            )
            row = cur.fetchone()
        except psycopg2.Error as e:
            self.close()
            raise TransientError(f"{where}: cannot take a snapshot: {e}".strip()) from None
        self.point = parse_lsn(row[1])
        self.snapshot_name: str = row[2]

    def close(self) -> None:
        """Drops the temporary slot. Call once the snapshot has been imported."""
        with contextlib.suppress(Exception):
            self.conn.close()


def start_stream(
    conn: Any, slot: str, publication: str, lsn: int, status_interval_s: float, where: str
) -> Any:
    """A replication cursor streaming ``slot`` from ``lsn`` (pgoutput, protocol 1)."""
    cur = conn.cursor()
    try:
        cur.start_replication(
            slot_name=slot,
            decode=False,
            start_lsn=lsn,
            status_interval=status_interval_s,
            options={"proto_version": "1", "publication_names": publication},
        )
    except psycopg2.errors.ObjectInUse as e:
        raise TransientError(f"{where}.slotName: {str(e).strip()}") from None
    except psycopg2.errors.UndefinedObject as e:
        raise TaskFailed(
            f"{where}.slotName: {str(e).strip()} — it was dropped; the changes since the last "
            "checkpoint cannot be read again (start a new run)"
        ) from None
    except psycopg2.Error as e:
        raise TaskFailed(f"{where}: cannot stream slot {slot!r} from {lsn_text(lsn)}: "
                         f"{str(e).strip()}") from None  # fmt: skip
    return cur
