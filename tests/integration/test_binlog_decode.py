"""What the binlog reader captures is what the table holds: every INSERT, UPDATE and DELETE of
a binlog range, replayed in order, gives exactly the rows ``SELECT`` returns afterwards —
value for value and type for type — for every column type (the all-types table, and one of
geometries and the pre-5.6 temporal formats), NULLs, zero dates and edge values, multi-row
and one-row transactions; with the C decoder and with the Python reference, against real
MariaDB. The reader's values are PyMySQL's text-protocol values, so ``SELECT`` is the oracle
no decoder here wrote."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymysql.constants import FIELD_TYPE

from coordinator.connectors import build_source
from coordinator.errors import TaskFailed
from coordinator.job import build_job
from source_connectors.mysql import binlog_lean, binlog_rows
from testkit.alltypes import COLUMNS, EDGE_ROWS, FILL
from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect

pytestmark = pytest.mark.integration

# Geometries and the temporal formats MariaDB writes with mysql56_temporal_format=OFF
# (tables created by MySQL 5.5 and older, still in service).
LEGACY = (
    "id INT NOT NULL PRIMARY KEY, pt POINT, geo GEOMETRY, odt DATETIME, otm TIME,"
    " ots TIMESTAMP NULL DEFAULT NULL"
)
LEGACY_ROWS = [
    "(1, POINT(1.5, -2), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), '2024-02-29 12:34:56',"
    " '-838:59:59', '2038-01-19 03:14:07')",
    "(2, NULL, ST_GeomFromText('LINESTRING(0 0,10 10)', 4326), '0000-00-00 00:00:00',"
    " '838:59:59', '0000-00-00 00:00:00')",
    "(3, POINT(0, 0), NULL, '2020-00-15 01:02:03', '-00:00:01', '1970-01-01 00:00:01')",
    "(4, NULL, NULL, NULL, NULL, NULL)",
]


def read_all(mysql_url: str, db: str, name: str, start: dict[str, Any], tables: list[str]) -> Any:
    """Every event from ``start`` (all written before): until none came for 2 s."""
    spec = cdc_job(mysql_url, db, tables, db, tables[0], name=name, start=start)
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
            out.extend((e.table.table, e.op, e.before, e.after) for e in batch)
    finally:
        reader.close()
    return out


def typed(row: tuple[Any, ...], float_columns: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """A row with each value's type: 1 == 1.0 and Decimal('1.0') == Decimal('1.00'), but a
    reader that gave the one for the other would be wrong. SELECT prints a FLOAT with six
    significant digits (its 4 bytes hold more): both sides are compared at those six."""
    return tuple(
        (type(v).__name__, f"{v:.6g}" if i in float_columns and v is not None else v)
        for i, v in enumerate(row)
    )


def replayed(events: list[Any], table: str) -> dict[Any, tuple[Any, ...]]:
    """The table's rows after applying its captured changes in order, by key (column 0).
    An UPDATE or DELETE must find the row its before image names."""
    rows: dict[Any, tuple[Any, ...]] = {}
    for name, op, before, after in events:
        if name != table:
            continue
        if before is not None:
            assert rows.pop(before[0]) == before, f"{op} of {before[0]}: before image differs"
        if after is not None:
            assert after[0] not in rows, f"{op} of {after[0]}: the key exists already"
            rows[after[0]] = after
    return rows


def selected(conn: Any, table: str) -> tuple[dict[Any, tuple[Any, ...]], tuple[int, ...]]:
    """The table's rows by key, and which columns are FLOAT."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        rows = {row[0]: row for row in cur.fetchall()}
        floats = tuple(i for i, d in enumerate(cur.description) if d[1] == FIELD_TYPE.FLOAT)
    return rows, floats


@pytest.fixture(params=["c", "python"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "python":
        monkeypatch.setattr(binlog_rows, "_native", None)  # what SLUICE_NO_NATIVE=1 does
        monkeypatch.setattr(binlog_rows, "_plans", {})
    elif binlog_rows._native is None:
        pytest.skip("_binlog_rows is not built")
    yield request.param


def test_captured_rows_replay_to_the_tables_rows(
    mysql_url: str, mysql_database: str, unique_name: str, decoder: str
) -> None:
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    setup = ("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'", "SET SESSION time_zone = '+00:00'")
    execute(conn, *setup, f"CREATE TABLE src ({COLUMNS})", f"CREATE TABLE other ({COLUMNS})")
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.mysql56_temporal_format")
        (temporal_format,) = cur.fetchone()
        cur.execute("SET GLOBAL mysql56_temporal_format = OFF")
        try:
            cur.execute(f"CREATE TABLE legacy ({LEGACY})")
        finally:
            cur.execute(f"SET GLOBAL mysql56_temporal_format = {temporal_format}")
        cur.execute("SHOW CREATE TABLE legacy")
        assert cur.fetchone()[1].count("/* mariadb-5.3 */") == 3, "not the old formats"
    start = binlog_position(conn)
    execute(
        conn,
        *setup,
        "INSERT INTO src VALUES " + ", ".join(EDGE_ROWS),
        FILL.format(table="src", database=f"`{db}`", rows=400),
        "INSERT INTO legacy VALUES " + ", ".join(LEGACY_ROWS),
        "UPDATE src SET vc = NULL, st = '', dt = '0000-00-00', yr = 0, b64 = 0 WHERE id % 3 = 0",
        "UPDATE legacy SET odt = '0000-00-00 00:00:00', pt = POINT(9, 9) WHERE id = 1",
        # one-row transactions, interleaved with another table: TABLE_MAPs repeat
        "BEGIN NOT ATOMIC FOR n IN 101..300 DO UPDATE src SET i = n, js = JSON_ARRAY(n)"
        " WHERE id = n; UPDATE other SET i = n WHERE id = n; END FOR; END",
        "DELETE FROM src WHERE id % 7 = 0",
        "DELETE FROM legacy WHERE id = 3",
    )
    execute(conn, *setup)
    table = {name: selected(conn, name) for name in ("src", "legacy")}
    conn.close()
    assert len(table["src"][0]) > 340 and len(table["legacy"][0]) == 3

    reused_before = binlog_lean.table_maps_reused
    events = read_all(mysql_url, db, f"{unique_name}-{decoder}", start, ["src", "legacy"])
    # 200 one-row transactions each map `src` again: those TABLE_MAPs are not parsed again.
    assert binlog_lean.table_maps_reused - reused_before >= 190
    ops = [op for name, op, _b, _a in events if name == "src"]
    assert ops.count("INSERT") == len(EDGE_ROWS) + 400
    assert ops.count("UPDATE") > 300 and ops.count("DELETE") > 50
    for name, (rows, floats) in table.items():
        captured = replayed(events, name)
        assert sorted(captured) == sorted(rows), f"{name}: other keys"
        for key, row in rows.items():
            assert typed(captured[key], floats) == typed(row, floats), f"{name} row {key}"


def test_a_table_of_300_columns(mysql_url: str, mysql_database: str, unique_name: str) -> None:
    """Over 250 columns, a rows event counts them in three bytes, not one."""
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    columns = ", ".join(f"c{i} {'INT' if i % 2 else 'VARCHAR(10)'}" for i in range(299))
    execute(conn, f"CREATE TABLE wide (id INT PRIMARY KEY, {columns})")
    start = binlog_position(conn)
    values = ", ".join(str(i) if i % 2 else f"'v{i}'" for i in range(299))
    execute(
        conn,
        f"INSERT INTO wide VALUES (1, {values}), (2, {values})",
        "UPDATE wide SET c7 = NULL, c8 = 'changed' WHERE id = 2",
        "DELETE FROM wide WHERE id = 1",
    )
    rows, _floats = selected(conn, "wide")
    conn.close()
    events = read_all(mysql_url, db, unique_name, start, ["wide"])
    assert [op for _t, op, _b, _a in events] == ["INSERT", "INSERT", "UPDATE", "DELETE"]
    assert replayed(events, "wide") == rows


def test_a_session_writing_partial_row_images_stops_the_reader_by_name(
    mysql_url: str, mysql_database: str, unique_name: str
) -> None:
    """A session may set binlog_row_image=MINIMAL for itself: its UPDATE lacks the columns it
    did not change, which no decoder can fill in. The reader stops on that event, naming the
    table, the position and the cause, having handed over whole transactions only (the task
    restarts from its last checkpoint, so those before are read again, not lost)."""
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(conn, "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10))")
    start = binlog_position(conn)
    execute(
        conn,
        "INSERT INTO t VALUES (1, 1, 'x'), (2, 2, 'y')",
        "SET SESSION binlog_row_image = 'MINIMAL'",
        "UPDATE t SET a = 10 WHERE id = 2",
    )
    conn.close()
    spec = cdc_job(mysql_url, db, ["t"], db, "t", name=unique_name, start=start)
    source = build_source(build_job(spec))
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    got: list[Any] = []
    try:
        with pytest.raises(TaskFailed) as failed:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got.extend(e.after for e in reader.next_batch() or [])
    finally:
        reader.close()
    message = str(failed.value)
    assert f"UPDATE event of {db}.t at binlog." in message
    assert "partial row image" in message and "binlog_row_image" in message
    assert got in ([], [(1, 1, "x"), (2, 2, "y")])
