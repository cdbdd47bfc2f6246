"""Schema changes of a source table, carried over to a PostgreSQL target (``schemaChange``).

The same rules as ``mysqlwriter``'s (:mod:`sink_connectors.mysql.evolve`, whose module doc
says why), in PostgreSQL's terms and by the neutral types, so a change from any source
family applies:

* a column the source gained is added, NULL-able (rows of the old version still in flight
  on other partitions do not carry it), declared as the source declared it when the source
  is PostgreSQL, else by :func:`~schemas.postgres_types.pg_declaration`;
* a column whose type the change altered is given the new type when the target had the
  source's old declaration or cannot hold the new type's values (``ALTER COLUMN … TYPE …
  USING``: PostgreSQL converts the rows, and refuses — the job then stops naming the
  statement — when a value does not convert);
* a column the source dropped is kept, made NULL-able (unless it is in the key);
* a table the source created is created when targets have the source's names
  (``"table": ["*"]``);
* TRUNCATE and DROP TABLE are logged and left alone.

PostgreSQL's DDL is transactional: the statements of one change run in one transaction, all
or nothing. ``ALTER TABLE`` waits for every transaction on the table, the other writer
tasks' too, and while it waits it holds up their next statements: it is tried with a short
``lock_timeout``, again and again, so the other writers reach the same change (and commit)
instead of waiting in a deadlock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from coordinator.errors import TaskFailed
from schemas import types as t
from schemas.events import SchemaChange, SourcePosition
from schemas.postgres_types import POSTGRES, pg_declaration, quote_ident
from schemas.table import Column, TableSchema
from schemas.types import LogicalType

log = logging.getLogger("sluice.sink.postgres")

LOCK_TIMEOUT_MS = 2000
LOCK_WAIT_S = 600
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK = "40P01"


@dataclass(frozen=True)
class Evolution:
    statements: tuple[str, ...]
    ignored: tuple[str, ...]


def declaration(col: Column) -> str:
    """How the target declares ``col``: the source's own words when it is PostgreSQL."""
    return col.column_type if col.dialect == POSTGRES else pg_declaration(col.logical)


def _int_range(lt: LogicalType) -> tuple[int, int]:
    bits = lt.bits or 64
    return (0, 2**bits - 1) if lt.signed is False else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def holds(have: LogicalType, new: LogicalType) -> bool:
    """True when a column of neutral type ``have`` stores every value of ``new`` unchanged."""
    if have == new:
        return True
    a, b = have.kind, new.kind
    if a == t.INT and b == t.INT:
        (lo, hi), (nlo, nhi) = _int_range(have), _int_range(new)
        return lo <= nlo and nhi <= hi
    if a == t.NUMERIC:
        return b in (t.INT, t.DECIMAL, t.NUMERIC)
    if a == t.DECIMAL and b == t.DECIMAL:
        hp, hs, np_, ns = have.precision or 0, have.scale or 0, new.precision or 0, new.scale or 0
        return hs >= ns and hp - hs >= np_ - ns
    if a == t.DECIMAL and b == t.INT:
        return (have.precision or 0) - (have.scale or 0) >= len(str(_int_range(new)[1]))
    if a == t.FLOAT64 and b in (t.FLOAT32, t.FLOAT64):
        return True
    if a == b and a in (t.TIME, t.TIMESTAMP, t.TIMESTAMP_TZ):
        return (have.fsp or 0) >= (new.fsp or 0)
    if a == t.STRING and b == t.STRING:
        return have.length is None or (new.length is not None and new.length <= have.length)
    if a == t.STRING and have.length is None:
        return b not in (t.BYTES, t.ARRAY)  # any text goes into text
    if a == t.BYTES and b == t.BYTES:
        return have.length is None or (new.length is not None and new.length <= have.length)
    return False


def widens(have: LogicalType, new: LogicalType) -> bool:
    """``new`` is ``have``'s kind, wider: more integer bits, a longer string, more digits,
    more fractional seconds. Other differences (a target declared otherwise on purpose, a
    uuid for a CHAR(36)) are left alone."""
    return have.kind == new.kind and not holds(have, new) and holds(new, have)


def _follows(have: Column, new: Column, old: TableSchema | None) -> bool:
    """Whether target column ``have`` takes the new declaration of source column ``new``."""
    if declaration(new) == have.column_type:
        return False
    before = old.column(new.name) if old is not None and new.name in old.column_index else None
    if before is not None:
        if declaration(before) == declaration(new):
            return False  # the change left this column alone
        if declaration(before) == have.column_type:
            return True  # the target mirrored the source: it follows
    return not holds(have.logical, new.logical)


def plan_change(change: SchemaChange, target: TableSchema, follow: bool = True) -> Evolution:
    """The statements that make ``target`` take rows of ``change.new_schema``: columns it
    lacks, types it must widen, and with ``follow`` the column types the change altered
    (:func:`_follows`)."""
    where = f"{change.qualified_name} at {change.source.file}:{change.source.pos}"
    if change.new_schema is None:
        return Evolution((), (f"{where}: the table was dropped; the target is kept",))
    if change.ddl.lstrip()[:8].upper().startswith("TRUNCATE"):
        return Evolution((), (f"{where}: TRUNCATE is not applied to the target (see docs)",))
    source = change.new_schema
    table = f"{quote_ident(target.database)}.{quote_ident(target.table)}"
    clauses: list[str] = []
    for col in source.columns:
        have = target.column_index.get(col.name)
        name = quote_ident(col.name)
        if have is None:
            clauses.append(f"ADD COLUMN IF NOT EXISTS {name} {declaration(col)}")
        elif (
            _follows(target.columns[have], col, change.old_schema)
            if follow
            else widens(target.columns[have].logical, col.logical)
        ):
            decl = declaration(col)
            clauses.append(f"ALTER COLUMN {name} TYPE {decl} USING {name}::{decl}")
    ignored: list[str] = []
    gone = [c for c in target.columns if c.name not in source.column_index]
    if gone:
        ignored.append(f"{where}: target columns {', '.join(c.name for c in gone)} are no "
                       "longer in the source; kept")  # fmt: skip
    for c in gone:
        if not c.nullable and c.name not in target.primary_key:
            clauses.append(f"ALTER COLUMN {quote_ident(c.name)} DROP NOT NULL")
    return Evolution(tuple(f"ALTER TABLE {table} {c}" for c in clauses), tuple(ignored))


def plan_create(change: SchemaChange, schema: str, name: str) -> Evolution:
    """``CREATE TABLE IF NOT EXISTS`` with the source's columns and primary key."""
    source = change.new_schema
    if source is None:
        return Evolution((), (f"{change.qualified_name}: dropped; no target to change",))
    key = set(source.primary_key)
    parts = [
        f"{quote_ident(c.name)} {declaration(c)}"
        + (" NOT NULL" if not c.nullable or c.name in key else "")
        for c in source.columns
    ]
    if source.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in source.primary_key)})")
    sql = (
        f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.{quote_ident(name)} ({', '.join(parts)})"
    )
    return Evolution((sql,), ())


def evolve_at_start(
    conn: psycopg.Connection[Any], source: TableSchema, target: TableSchema
) -> None:
    """Before a fresh run: ``target`` gets the columns ``source`` has and it lacks, and
    wider types where the source's are (other declarations are left as the user made them)."""
    change = SchemaChange(source.database, source.table, "(job start)", source,
                          SourcePosition("", file="job start"), 0)  # fmt: skip
    evolution = plan_change(change, target, follow=False)
    if evolution.statements:
        apply_evolution(conn, change, evolution)


def apply_evolution(conn: psycopg.Connection[Any], change: SchemaChange, evo: Evolution) -> None:
    """Run the statements in one transaction, retried while other writers hold the table."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                # One writer at a time per table: the statements are idempotent (IF NOT
                # EXISTS, the same type again), but two CREATE TABLE IF NOT EXISTS at once
                # still collide in the catalog.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                            (f"sluice-evolve:{change.qualified_name}",))  # fmt: skip
                for sql in evo.statements:
                    cur.execute(sql.replace("%", "%%"), [])
            for sql in evo.statements:
                log.info("%s: applied %s", change.qualified_name, sql)
            return
        except psycopg.Error as e:
            waiting = e.sqlstate in (LOCK_NOT_AVAILABLE, DEADLOCK)
            if waiting and time.monotonic() < deadline:
                time.sleep(0.2)  # other writers commit meanwhile, then meet the change too
                continue
            first = (str(e).strip().splitlines() or [""])[0]
            raise TaskFailed(
                f"schemaChange: {change.qualified_name}'s change at {change.source.file}:"
                f"{change.source.pos} needs {'; '.join(evo.statements)}, which PostgreSQL "
                f"refused: {first}"
            ) from None
