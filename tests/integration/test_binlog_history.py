"""Schema history (real MariaDB and Kafka): a reader that starts again from a binlog position
before later ALTERs decodes each row with the exact schema it was written with, and passes on
each DDL with the schema it produced then — not today's. The reader is driven directly, as
its task would (``attach_stores`` included)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.job import build_job
from coordinator.state_store import KafkaStateStores
from schemas.events import RowEvent, SchemaChange
from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect

pytestmark = pytest.mark.integration

TABLE = "id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, gone INT UNSIGNED NULL"
ADD = "ALTER TABLE h ADD COLUMN extra VARCHAR(5) NULL, MODIFY v VARCHAR(40)"


def start_reader(mysql_url: str, db: str, name: str, start: dict[str, Any], bootstrap: str):
    spec = cdc_job(mysql_url, db, ["h"], db, "h", name=name, start=start)
    source = build_source(build_job(spec))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    reader.attach_stores(KafkaStateStores(bootstrap))
    return reader


def read(reader: Any, rows: int, changes: int, timeout: float = 30) -> list[Any]:
    """Row events and schema changes in stream order, until that many of each came."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while sum(isinstance(x, RowEvent) for x in out) < rows or (
        sum(isinstance(x, SchemaChange) for x in out) < changes
    ):
        assert time.monotonic() < deadline, f"only {out} within {timeout} s"
        out.extend(reader.next_batch() or [])
        out.extend(reader.take_schema_changes())
        time.sleep(0.01)
    return out


def shape(items: list[Any]) -> list[Any]:
    """Each row's values with its schema's columns; each change's DDL and new columns."""
    out: list[Any] = []
    for x in items:
        if isinstance(x, RowEvent):
            types = [(c.name, c.column_type, c.nullable) for c in x.table.columns]
            out.append(("row", x.after, types))
        else:
            out.append(("ddl", x.ddl, x.new_schema and x.new_schema.column_names))
    return out


def test_replay_from_before_a_drop_column_decodes_old_rows(
    mysql_url, mysql_database, kafka_bootstrap, unique_name
):
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(conn, f"CREATE TABLE h ({TABLE})")
    start = binlog_position(conn)
    live = start_reader(mysql_url, db, unique_name, start, kafka_bootstrap)
    try:  # a reader follows the changes as they happen, recording the history
        execute(conn, "INSERT INTO h VALUES (1, 'a', 4294967295), (2, 'b', NULL)")
        first = read(live, rows=2, changes=0)
        execute(conn, "ALTER TABLE h DROP COLUMN gone")
        execute(conn, "INSERT INTO h VALUES (3, 'c')")
        first += read(live, rows=1, changes=1)
        execute(conn, ADD)
        execute(conn, "INSERT INTO h VALUES (4, 'd', 'e')")
        first += read(live, rows=1, changes=1)
    finally:
        live.close()
    old = [("id", "int(11)", False), ("v", "varchar(20)", False)]
    old.append(("gone", "int(10) unsigned", True))
    mid = old[:2]
    new = [("id", "int(11)", False), ("v", "varchar(40)", True), ("extra", "varchar(5)", True)]
    expected = [
        ("row", (1, "a", 4294967295), old),
        ("row", (2, "b", None), old),
        ("ddl", "ALTER TABLE h DROP COLUMN gone", ("id", "v")),
        ("row", (3, "c"), mid),
        ("ddl", ADD, ("id", "v", "extra")),
        ("row", (4, "d", "e"), new),
    ]
    assert shape(first) == expected
    # Later: start again from before all of it. The live table is the newest version; the
    # history says what each row and DDL had.
    replay = start_reader(mysql_url, db, f"{unique_name}-2", start, kafka_bootstrap)
    try:
        again = read(replay, rows=4, changes=2)
    finally:
        replay.close()
    assert shape(again) == expected
    conn.close()
