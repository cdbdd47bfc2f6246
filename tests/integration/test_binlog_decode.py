"""The fast decoding paths (:mod:`source_connectors.mysql.binlog_fast`: cached TABLE_MAP
parses, planned row reads) give exactly what mysql-replication's own code gives, on every
column type, NULLs and edge values, multi-row and one-row transactions, against real MariaDB.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymysqlreplication.row_event import RowsEvent, TableMapEvent

from coordinator.connectors import build_source
from coordinator.job import build_job
from source_connectors.mysql import binlog_fast, binlog_lean
from testkit.alltypes import COLUMNS, EDGE_ROWS, FILL
from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect

pytestmark = pytest.mark.integration


def read_all(mysql_url: str, db: str, name: str, start: dict[str, Any]) -> list[Any]:
    """Every event from ``start`` (all written before): until none came for 2 s."""
    spec = cdc_job(mysql_url, db, ["src"], db, "src", name=name, start=start)
    source = build_source(build_job(spec))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    out: list[Any] = []
    last = time.monotonic()
    try:
        while not out or time.monotonic() - last < 2:
            assert time.monotonic() - last < 60, "no events"
            batch = reader.next_batch() or []
            if batch:
                last = time.monotonic()
            out.extend((e.op, e.before, e.after) for e in batch)
    finally:
        reader.close()
    return out


def test_fast_paths_decode_like_the_library(mysql_url, mysql_database, unique_name):
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(
        conn,
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        f"CREATE TABLE src ({COLUMNS})",
        f"CREATE TABLE other ({COLUMNS})",
    )
    start = binlog_position(conn)
    execute(
        conn,
        "INSERT INTO src VALUES " + ", ".join(EDGE_ROWS),
        FILL.format(table="src", database=f"`{db}`", rows=400),
        "UPDATE src SET vc = NULL, st = '', dt = '0000-00-00', yr = 0 WHERE id % 3 = 0",
        # one-row transactions, interleaved with another table: TABLE_MAPs repeat
        "BEGIN NOT ATOMIC FOR n IN 101..300 DO UPDATE src SET i = n WHERE id = n; "
        "UPDATE other SET i = n WHERE id = n; END FOR; END",
        "DELETE FROM src WHERE id % 7 = 0",
    )
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM src")
        (left,) = cur.fetchone()
    conn.close()
    reused_before = binlog_fast.cache_hits() + binlog_lean.table_maps_reused
    fast = read_all(mysql_url, db, unique_name, start)
    # 200 one-row transactions each map `src` again: those TABLE_MAPs come from a cache (the
    # lean reader's, or binlog_fast's without the C decoder); only a few were parsed.
    reused = binlog_fast.cache_hits() + binlog_lean.table_maps_reused - reused_before
    assert reused >= 190, reused
    assert 0 < binlog_fast.cache_size() < 100
    installed = TableMapEvent.__init__, RowsEvent._read_column_data
    TableMapEvent.__init__ = binlog_fast._parse  # type: ignore[method-assign]
    RowsEvent._read_column_data = binlog_fast._read_columns  # type: ignore[method-assign]
    try:
        plain = read_all(mysql_url, db, f"{unique_name}-plain", start)
    finally:
        TableMapEvent.__init__, RowsEvent._read_column_data = installed  # type: ignore[method-assign]
    inserted = len(EDGE_ROWS) + 400
    assert sum(op == "INSERT" for op, _b, _a in fast) == inserted
    assert sum(op == "DELETE" for op, _b, _a in fast) == inserted - left
    assert sum(op == "UPDATE" for op, _b, _a in fast) > 300
    assert fast == plain
