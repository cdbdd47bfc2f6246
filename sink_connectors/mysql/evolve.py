"""Schema changes of a source table, carried over to the MySQL target (``schemaChange``).

``evolve`` (the default) keeps the target able to take every row the source now sends:

* a column the source gained is added to the target (after the same neighbour, so column
  order — and ``CHECKSUM TABLE`` — stays the source's), always NULL-able: rows of the old
  version that other partitions still deliver do not carry it;
* a column whose declared type changed (VARCHAR(10) → VARCHAR(100), INT → BIGINT) is
  modified to the new type;
* a table the source created (``CREATE TABLE``, or ``RENAME TABLE`` to a captured name) is
  created on the target with the source's columns and primary key when targets have the
  source's names (``"table": "*"``);
* a column the source dropped is kept on the target, made NULL-able if it was NOT NULL (rows
  of the new version do not carry it); a renamed column shows up as a new column next to the
  old one, which is kept the same way;
* TRUNCATE and DROP TABLE are logged and left alone.

Why dropped and renamed columns and TRUNCATE are not carried out: a table's rows are spread
over every partition of the data topic, each read by its own writer at its own pace. The
first writer to meet a change applies it while other partitions may still hold rows from
before it: a dropped or renamed column would make those rows unwritable (or silently lose
their value), and a TRUNCATE would either miss rows still in flight or, repeated by the next
writer, delete rows written after it. Keeping target data is the only choice that is right
on every partition; removing it is left to the operator.

``ignore`` logs every change and alters nothing; ``fail`` stops the writer at the first
change, naming the statement and where it is in the source.

Several writer tasks meet the same change (it is written to every partition): statements use
``IF NOT EXISTS`` / ``IF EXISTS``, are planned from ``information_schema`` right before they
run, and a "duplicate column" from a concurrent writer counts as done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from coordinator.errors import ConnectError, TaskFailed
from coordinator.mysql_client import qualified, quote_ident
from schemas.avro_types import sql_list_members
from schemas.events import SchemaChange, SourcePosition
from schemas.table import Column, TableSchema

log = logging.getLogger("sluice.sink.mysql")

ER_DUP_FIELDNAME = 1060
ER_LOCK_WAIT_TIMEOUT = 1205
LOCK_WAIT_S = 600


@dataclass(frozen=True)
class Evolution:
    """What ``change`` means for ``target``: statements to run and what is left alone."""

    statements: tuple[str, ...]
    ignored: tuple[str, ...]


def _declaration(col: Column, nullable: bool) -> str:
    text = col.column_type
    if col.character_set and col.data_type not in ("enum", "set", "json"):
        text += f" CHARACTER SET {col.character_set}"
    if col.data_type == "json":
        text = "longtext"  # MariaDB's JSON is LONGTEXT with a check the target may not want
    return f"{text} {'NULL' if nullable else 'NOT NULL'}"


def plan_change(change: SchemaChange, target: TableSchema) -> Evolution:
    """The ALTER statements that make ``target`` take rows of ``change.new_schema``."""
    where = f"{change.qualified_name} at {change.source.file}:{change.source.pos}"
    if change.new_schema is None:
        return Evolution((), (f"{where}: the table was dropped; the target is kept",))
    if change.ddl.lstrip()[:8].upper().startswith("TRUNCATE"):
        return Evolution((), (f"{where}: TRUNCATE is not applied to the target (see docs)",))
    return plan_evolution(change.new_schema, target, where)


def plan_create(change: SchemaChange, database: str, name: str) -> Evolution:
    """``CREATE TABLE IF NOT EXISTS`` for a source table the target does not have yet, with
    the source's columns (NULL-able as declared) and primary key."""
    where = f"{change.qualified_name} at {change.source.file}:{change.source.pos}"
    source = change.new_schema
    if source is None:
        return Evolution((), (f"{where}: the table was dropped; no target to change",))
    key = set(source.primary_key)
    parts = [
        f"{quote_ident(c.name)} {_declaration(c, c.nullable and c.name not in key)}"
        for c in source.columns
    ]
    if source.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in source.primary_key)})")
    sql = (
        f"CREATE TABLE IF NOT EXISTS {qualified(database, name)} ({', '.join(parts)}) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    return Evolution((sql,), ())


def plan_evolution(source: TableSchema, target: TableSchema, where: str) -> Evolution:
    """Statements adding the columns ``target`` lacks and widening the ones ``source``
    declares wider; nothing else (see the module doc)."""
    table = qualified(target.database, target.table)
    clauses: list[str] = []
    ignored: list[str] = []
    previous: str | None = None
    for col in source.columns:
        have = target.column_index.get(col.name)
        if have is None:
            place = f" AFTER {quote_ident(previous)}" if previous else " FIRST"
            clauses.append(
                f"ADD COLUMN IF NOT EXISTS {quote_ident(col.name)} {_declaration(col, True)}{place}"
            )
        elif widens(target.columns[have], col):
            nullable = target.columns[have].nullable or col.nullable
            clauses.append(
                f"MODIFY COLUMN IF EXISTS {quote_ident(col.name)} {_declaration(col, nullable)}"
            )
        previous = col.name
    gone = [c for c in target.columns if c.name not in source.column_index]
    if gone:
        ignored.append(
            f"{where}: target columns {', '.join(c.name for c in gone)} are no longer in the "
            "source; kept"
        )
    for c in gone:
        # Rows of the new version do not carry it: it must take NULL (a key column cannot,
        # and a keyless target with a dropped key column is the operator's to fix).
        if not c.nullable and c.name not in target.primary_key:
            clauses.append(f"MODIFY COLUMN IF EXISTS {quote_ident(c.name)} {_declaration(c, True)}")
    statements = tuple(f"ALTER TABLE {table} {clause}" for clause in clauses)
    return Evolution(statements, tuple(ignored))


_RANKS = (
    ("tinyint", "smallint", "mediumint", "int", "bigint"),
    ("tinytext", "text", "mediumtext", "longtext"),
    ("tinyblob", "blob", "mediumblob", "longblob"),
    ("float", "double"),
)
_SIZED = re.compile(r"^(\w+)\((\d+)(?:,(\d+))?\)")


def widens(have: Column, new: Column) -> bool:
    """True when ``new`` holds every value ``have`` holds and more: a longer VARCHAR, a
    bigger integer or text type, more DECIMAL digits, more fractional seconds, more ENUM or
    SET members. Other differences (a target deliberately declared otherwise) are left."""
    a, b = have.data_type.lower(), new.data_type.lower()
    if have.column_type.lower() == new.column_type.lower():
        return False
    for ranks in _RANKS:
        if a in ranks and b in ranks:
            return ranks.index(b) > ranks.index(a) and have.unsigned == new.unsigned
    if a != b:
        return False
    if a in ("enum", "set"):
        old, more = sql_list_members(have.column_type), sql_list_members(new.column_type)
        return len(more) > len(old) and more[: len(old)] == old
    ma, mb = _SIZED.match(have.column_type.lower()), _SIZED.match(new.column_type.lower())
    if not (ma and mb):
        return bool(mb) and a in ("datetime", "timestamp", "time")  # fsp 0 -> n
    if a == "decimal":
        pa, sa, pb, sb = int(ma[2]), int(ma[3] or 0), int(mb[2]), int(mb[3] or 0)
        return sb >= sa and pb - sb >= pa - sa and (pb, sb) != (pa, sa)
    return int(mb[2]) > int(ma[2])


def evolve_at_start(connect: Callable[[], Any], source: TableSchema, target: TableSchema) -> None:
    """Before a fresh run: make ``target`` take every column ``source`` has now."""
    evolution = plan_evolution(source, target, f"{source.qualified_name} (job start)")
    if evolution.statements:
        change = SchemaChange(
            source.database, source.table, "(job start)", source, SourcePosition(""), 0
        )
        apply_evolution(connect, change, evolution)


def evolution_refused(change: SchemaChange) -> TaskFailed:
    return TaskFailed(
        f"mysqlwriter: source table {change.qualified_name} changed at "
        f"{change.source.file}:{change.source.pos} (GTID {change.source.gtid or '-'}): "
        f"{change.ddl!r}; schemaChange is 'fail'. Change the target by hand, then restart "
        "the job with schemaChange 'evolve' or 'ignore' to go on"
    )


def apply_evolution(connect: Callable[[], Any], change: SchemaChange, evolution: Evolution) -> None:
    """Run the statements on a connection of their own (DDL cannot run inside the writer's
    XA transaction). The ALTER waits until every transaction that touched the table has
    ended; other writer tasks end theirs when they meet the same change."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_S}")
            for sql in evolution.statements:
                try:
                    cur.execute(sql)
                except pymysql.MySQLError as e:
                    code = e.args[0] if e.args else 0
                    if code == ER_DUP_FIELDNAME:
                        continue  # another writer task added it first
                    where = f"for {change.ddl!r} at {change.source.file}:{change.source.pos}"
                    if code == ER_LOCK_WAIT_TIMEOUT:
                        raise ConnectError(
                            f"mysqlwriter: {sql} waited {LOCK_WAIT_S}s for other transactions "
                            f"on the table ({where}); retrying"
                        ) from None
                    raise TaskFailed(f"mysqlwriter: {sql} failed: {e.args[-1]} ({where})") from None
                log.info("schema change of %s: %s", change.qualified_name, sql)
    finally:
        conn.close()
