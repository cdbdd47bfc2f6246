"""Schema changes beyond ADD/MODIFY COLUMN through a running binlog CDC job (real MariaDB and
Kafka): DROP COLUMN, RENAME COLUMN, CREATE TABLE, RENAME TABLE, TRUNCATE, DROP TABLE, with
rows before and after each one on every partition (3 writers).

What a user should see on the target (``schemaChange: evolve``, ``"table": "*"``): every row
with the values its columns had at the source; a dropped column kept (and made NULL-able so
later rows fit); a renamed column next to the old one; a new table created and filled; a
truncated or dropped table's target left alone, later rows still arriving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.cdc import RunningJob, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

TABLE = (
    "id BIGINT NOT NULL PRIMARY KEY, k INT NOT NULL, v VARCHAR(64), "
    "note VARCHAR(16) NOT NULL DEFAULT 'n', amount DECIMAL(12,2)"
)


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    yield c
    c.close()


def rows(conn: Any, db: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM `{db}`.`{table}` ORDER BY id")
        return list(cur.fetchall())


def columns_of(conn: Any, db: str, table: str) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        return [(str(n), str(x)) for n, x in cur.fetchall()]


def insert(conn: Any, table: str, first: int, count: int, cols: str, values: str) -> None:
    execute(
        conn,
        f"INSERT INTO {table} ({cols}) SELECT {values} FROM seq_{first}_to_{first + count - 1}",
    )


def test_drop_rename_create_truncate_and_drop_table(
    conn, mysql_url, mysql_database, target_db, kafka_bootstrap, unique_name, tmp_path: Path
):
    db, dst = mysql_database, target_db
    execute(conn, f"CREATE TABLE t_a ({TABLE})", f"CREATE TABLE `{dst}`.t_a LIKE t_a")
    spec = cdc_job(
        mysql_url, db, [], dst, "*", name=unique_name, start=binlog_position(conn), writers=3,
        reader_extra={"tableRegex": rf"{db}\.t_.*"},
    )  # fmt: skip
    job = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)

    def copied(table: str, cols: str, target_cols: str | None = None) -> None:
        def same() -> bool:
            job.assert_running()
            try:
                return rows(conn, db, table, cols) == rows(conn, dst, table, target_cols or cols)
            except Exception:  # noqa: BLE001 - the target table may not exist yet
                return False

        wait_until(same, 60, f"{dst}.{table} to equal {db}.{table} on {cols}")

    try:
        all_cols = "id, k, v, note, amount"
        insert(conn, "t_a", 1, 500, all_cols, "seq, seq % 7, CONCAT('v', seq), 'x', seq / 4")
        execute(conn, "UPDATE t_a SET v = CONCAT(v, 'u') WHERE id % 3 = 0")
        # rows before and after each change in one burst, so partitions meet it at different
        # times: every row must still decode with the columns it had
        execute(conn, "ALTER TABLE t_a DROP COLUMN note")
        insert(conn, "t_a", 501, 500, "id, k, v, amount", "seq, seq % 7, CONCAT('w', seq), 1")
        execute(conn, "UPDATE t_a SET amount = amount + 1 WHERE id % 5 = 0")
        execute(conn, "ALTER TABLE t_a RENAME COLUMN v TO label")
        insert(conn, "t_a", 1001, 500, "id, k, label, amount", "seq, 1, CONCAT('r', seq), 2")
        execute(conn, "DELETE FROM t_a WHERE id % 11 = 0")
        copied("t_a", "id, k, amount")
        # dropped: kept, and NULL-able so rows without it fit; its old values are intact
        assert ("note", "YES") in columns_of(conn, dst, "t_a")
        assert rows(conn, dst, "t_a", "id, note")[:2] == [(1, "x"), (2, "x")]
        assert rows(conn, dst, "t_a", "id, note")[-1] == (1500, None)
        # renamed: values before the rename in the old column, after it in the new one
        got = dict((r[0], r[1:]) for r in rows(conn, dst, "t_a", "id, v, label"))
        assert got[3] == ("v3u", None) and got[600] == ("w600", None)
        assert got[1200] == (None, "r1200")

        # a new table matching the filter: created on the target, then filled
        execute(
            conn,
            "CREATE TABLE t_new (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, "
            "d DATE NULL, price DECIMAL(8,3))",
        )
        insert(conn, "t_new", 1, 300, "id, name, d, price", "seq, CONCAT('n', seq), NULL, seq")
        execute(conn, "UPDATE t_new SET d = '2024-02-29' WHERE id < 100")
        copied("t_new", "id, name, d, price")
        assert columns_of(conn, dst, "t_new") == [
            ("id", "NO"), ("name", "NO"), ("d", "YES"), ("price", "YES"),
        ]  # fmt: skip

        # renamed to a captured name: its later rows land in a table of the new name
        execute(conn, "RENAME TABLE t_new TO t_moved")
        insert(conn, "t_moved", 301, 100, "id, name, d, price", "seq, 'm', NULL, 1")
        execute(conn, "DELETE FROM t_moved WHERE id <= 300")  # not in the new target: no-ops
        copied("t_moved", "id, name, d, price")

        # TRUNCATE and DROP TABLE: the target is left alone, rows after them still arrive
        execute(conn, "TRUNCATE TABLE t_a")
        insert(conn, "t_a", 5001, 50, "id, k, label, amount", "seq, 2, 't', 3")
        execute(conn, "DROP TABLE t_moved")
        insert(conn, "t_a", 5051, 50, "id, k, label, amount", "seq, 2, 't', 3")

        def after_truncate() -> bool:
            job.assert_running()
            return len(rows(conn, dst, "t_a", "id")) == 1500 - 1500 // 11 + 100

        wait_until(after_truncate, 60, "rows after the TRUNCATE to arrive")
        assert len(rows(conn, dst, "t_new", "id")) == 300
    finally:
        code, out = job.stop()
    assert code == 0, out[-4000:]
    assert "errors               0" in out, out[-3000:]
