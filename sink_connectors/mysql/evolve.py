"""Schema changes of a source table, carried over to the MySQL target (``schemaChange``).

``evolve`` (the default) keeps the target able to take every row the source now sends:

* a column the source gained is added to the target (after the same neighbour, so column
  order — and ``CHECKSUM TABLE`` — stays the source's), always NULL-able: rows of the old
  version that other partitions still deliver do not carry it;
* a column whose declared type got wider (VARCHAR(10) → VARCHAR(100), INT → BIGINT) is
  modified to the new type; so is one the change gave another type (``ALTER TABLE …
  MODIFY n VARCHAR(20)`` of an INT) when the target column had the source's old type or
  cannot hold the new one's values — the target then converts its rows as the source did,
  and rows of the old version still in flight on other partitions convert the same way on
  insert. A target column declared otherwise that holds every value of the new type (a
  VARCHAR(64) for an INT, a wider type) is left alone. If the target's ALTER fails (a value
  it cannot convert), the job stops naming the statement, table, column and binlog
  position;
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
from schemas.events import SchemaChange, SourcePosition
from schemas.mysql_types import as_mysql_table, sql_list_members
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
    """The ALTER statements that make ``target`` take rows of ``change.new_schema``, and
    follow the column types the change altered (``change.old_schema`` says which)."""
    where = f"{change.qualified_name} at {change.source.file}:{change.source.pos}"
    if change.new_schema is None:
        return Evolution((), (f"{where}: the table was dropped; the target is kept",))
    if change.ddl.lstrip()[:8].upper().startswith("TRUNCATE"):
        return Evolution((), (f"{where}: TRUNCATE is not applied to the target (see docs)",))
    return plan_evolution(change.new_schema, target, where, follow=True, old=change.old_schema)


def plan_create(change: SchemaChange, database: str, name: str) -> Evolution:
    """``CREATE TABLE IF NOT EXISTS`` for a source table the target does not have yet, with
    the source's columns (NULL-able as declared) and primary key."""
    where = f"{change.qualified_name} at {change.source.file}:{change.source.pos}"
    if change.new_schema is None:
        return Evolution((), (f"{where}: the table was dropped; no target to change",))
    source = as_mysql_table(change.new_schema)  # another family's columns: MySQL's equals
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


def plan_evolution(
    source: TableSchema,
    target: TableSchema,
    where: str,
    follow: bool = False,
    old: TableSchema | None = None,
) -> Evolution:
    """Statements adding the columns ``target`` lacks and widening the ones ``source``
    declares wider; with ``follow`` (at a schema change whose previous schema was ``old``,
    None when not known) also changing the types of columns the change altered
    (:func:`must_modify`). Nothing else (see the module doc)."""
    source = as_mysql_table(source)  # another family's columns: MySQL's equals
    old = None if old is None else as_mysql_table(old)
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
        elif must_modify(target.columns[have], col, follow, old):
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


def _base_type(col: Column) -> str:
    """The declared type without an integer's display width (``int(11)`` is ``int``)."""
    text = col.column_type.lower().strip()
    return _DISPLAY_WIDTH.sub(r"\1", text)


_DISPLAY_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)")


def same_type(a: Column, b: Column) -> bool:
    """The same declared type (and character set, where both say)."""
    if _base_type(a) != _base_type(b):
        return False
    return not (a.character_set and b.character_set and a.character_set != b.character_set)


def must_modify(have: Column, new: Column, follow: bool, old: TableSchema | None) -> bool:
    """Whether target column ``have`` is changed to the source's new declaration ``new``:
    when ``new`` is wider; and with ``follow`` (a schema change) when the change altered the
    column's type and the target had the old type (it mirrors the source), or could not
    hold the new type's values. A column the change left alone is only ever widened, so a
    target declared otherwise on purpose stays as it is."""
    if same_type(have, new):
        return False
    if widens(have, new):
        return True
    if not follow:
        return False
    before = old.column(new.name) if old is not None and new.name in old.column_index else None
    if before is not None:
        if same_type(before, new):
            return False  # this column did not change
        if same_type(have, before):
            return True  # the target had the source's type: it follows the change
    return not holds(have, new)


_INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_CHARS = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json")
_BYTES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_CAPACITY = {"tiny": 255, "": 65535, "medium": 16777215, "long": 4294967295}
_PER_CHAR = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "latin1": 1, "ascii": 1}


def _int_range(col: Column) -> tuple[int, int]:
    bits = _INT_BITS[col.data_type.lower()]
    return (0, 2**bits - 1) if col.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _length(col: Column) -> int | None:
    """Characters (bytes for binary types) a value of a string column can have."""
    t = col.data_type.lower()
    if t == "json" or t.endswith("text"):  # sized in bytes: as characters, at the worst
        size = _CAPACITY.get("long" if t == "json" else t.removesuffix("text"))
        per_char = _PER_CHAR.get(col.character_set or "", 4)
        return None if size is None else size // per_char
    if t.endswith("blob"):
        return _CAPACITY.get(t.removesuffix("blob"))
    m = _SIZED.match(col.column_type.lower())
    return int(m[2]) if m else None


def _text_width(col: Column) -> int | None:
    """The most characters a value of a number, date or time column has as text (what a
    string column needs to hold it unchanged); None for other types."""
    t = col.data_type.lower()
    if t in _INT_BITS:
        return max(len(str(v)) for v in _int_range(col))
    if t == "decimal" and col.numeric_precision is not None:
        return col.numeric_precision + 1 + (1 if col.numeric_scale else 0)
    fsp = col.datetime_precision or 0
    width = {"date": 10, "datetime": 19, "timestamp": 19, "time": 10, "year": 4}.get(t)
    return None if width is None else width + (fsp + 1 if fsp else 0)


def holds(have: Column, new: Column) -> bool:
    """True when target column ``have`` stores every value of ``new``'s type unchanged: the
    same type, a wider one of its kind, or a string long enough for its text."""
    if same_type(have, new):
        return True
    a, b = have.data_type.lower(), new.data_type.lower()
    if a in _INT_BITS and b in _INT_BITS:
        (lo, hi), (nlo, nhi) = _int_range(have), _int_range(new)
        return lo <= nlo and nhi <= hi
    if a in ("float", "double") and b in ("float", "double"):
        return a == "double" or b == "float"
    if a == b and a in ("datetime", "timestamp", "time"):
        return (have.datetime_precision or 0) >= (new.datetime_precision or 0)
    if a == b and a in ("decimal", "enum", "set", "bit"):
        return widens(new, have)
    room = _length(have)
    if room is None or a == "binary":  # BINARY pads shorter values: only the same type holds
        return False
    if a in _CHARS:
        if b in _CHARS:
            # CHAR drops trailing spaces: it holds only CHAR values
            need = _length(new) if a != "char" or b == "char" else None
        else:
            need = _text_width(new)
        return need is not None and need <= room
    if a in _BYTES and b in _BYTES:
        need = _length(new)
        return need is not None and need <= room
    return False


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
