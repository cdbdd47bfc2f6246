"""Which binlog positions are transaction boundaries, judged from ``SHOW BINLOG EVENTS`` rows
as MariaDB 10.11 wrote them (DDL, a three-INSERT transaction, a non-transactional table, XA
in two phases and in one, a SAVEPOINT), served by a fake connection in small pages so that
paging is walked too. The integration tests run the same checks against a real server."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from coordinator.errors import ConfigError
from source_connectors.mysql.binlog_boundary import check_start_boundary, locate

F = "binlog.000001"
ROWS = [
    (4, "Format_desc", 256, "Server ver: 10.11.19-MariaDB-0+deb12u1-log, Binlog ver: 4"),
    (256, "Gtid_list", 285, "[]"),
    (285, "Binlog_checkpoint", 325, "binlog.000001"),
    (325, "Gtid", 367, "GTID 0-1-1"),
    (367, "Query", 464, "CREATE DATABASE IF NOT EXISTS sp"),
    (464, "Gtid", 506, "BEGIN GTID 0-1-3"),
    (506, "Annotate_rows", 556, "INSERT INTO sp.t VALUES (1)"),
    (556, "Table_map", 609, "table_id: 18 (sp.t)"),
    (609, "Write_rows_v1", 647, "table_id: 18 flags: STMT_END_F"),
    (647, "Table_map", 700, "table_id: 18 (sp.t)"),
    (700, "Write_rows_v1", 738, "table_id: 18 flags: STMT_END_F"),
    (738, "Table_map", 791, "table_id: 18 (sp.t)"),
    (791, "Write_rows_v1", 829, "table_id: 18 flags: STMT_END_F"),
    (829, "Xid", 860, "COMMIT /* xid=15 */"),
    (860, "Gtid", 902, "GTID 0-1-4"),
    (902, "Query", 1000, "use `sp`; CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM"),
    (1000, "Gtid", 1042, "BEGIN GTID 0-1-5"),
    (1042, "Table_map", 1095, "table_id: 22 (sp.m)"),
    (1095, "Write_rows_v1", 1133, "table_id: 22 flags: STMT_END_F"),
    (1133, "Query", 1202, "COMMIT"),
    (1202, "Gtid", 1248, "XA START X'7831',X'',1 GTID 0-1-6"),
    (1248, "Table_map", 1301, "table_id: 18 (sp.t)"),
    (1301, "Write_rows_v1", 1339, "table_id: 18 flags: STMT_END_F"),
    (1339, "Query", 1424, "XA END X'7831',X'',1"),
    (1424, "XA_prepare", 1462, "XA PREPARE X'7831',X'',1"),
    (1462, "Gtid", 1506, "GTID 0-1-7"),
    (1506, "Query", 1594, "XA COMMIT X'7831',X'',1"),
    (1594, "Gtid", 1636, "BEGIN GTID 0-1-8"),
    (1636, "Write_rows_v1", 1674, "table_id: 18 flags: STMT_END_F"),
    (1674, "Query", 1752, "SAVEPOINT `a`"),
    (1752, "Write_rows_v1", 1790, "table_id: 18 flags: STMT_END_F"),
    (1790, "Xid", 1821, "COMMIT /* xid=37 */"),
    (1821, "Rotate", 1865, "binlog.000002;pos=4"),
]
SIZE = 1865
BOUNDARIES = [4, 256, 285, 325, 464, 860, 1000, 1202, 1462, 1594, 1821, SIZE]


class FakeBinlog:
    """Answers ``SHOW BINLOG EVENTS IN f FROM p LIMIT n`` as a server would, counting calls."""

    def __init__(self) -> None:
        self.queries = 0
        self.starts = {r[0] for r in ROWS}

    def cursor(self) -> FakeBinlog:
        return self

    def __enter__(self) -> FakeBinlog:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: tuple[Any, ...]) -> None:
        assert sql.startswith("SHOW BINLOG EVENTS IN")
        file, start, limit = args
        assert file == F
        self.queries += 1
        if start == SIZE:  # the end: no event, and no error
            self.rows = []
            return
        if start not in self.starts:
            raise pymysql.err.OperationalError(1220, "Wrong offset or I/O error")
        i = [r[0] for r in ROWS].index(start)
        self.rows = [(F, p, t, 1, e, info) for p, t, e, info in ROWS[i : i + limit]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def test_every_position_is_judged_as_the_stream_groups_transactions():
    conn = FakeBinlog()
    for pos in range(4, SIZE + 1):
        spot = locate(conn, F, pos, page=3)
        if pos in BOUNDARIES:
            assert spot is None, pos
            continue
        assert spot is not None, pos
        before = max(b for b in BOUNDARIES if b < pos)
        after = min(b for b in BOUNDARIES if b > pos)
        assert (spot.before, spot.after) == (before, after), pos


def test_the_error_names_the_transaction_and_the_boundaries_around_it():
    where = "job.content[0].reader.parameter.start.position"
    with pytest.raises(ConfigError) as e:
        check_start_boundary(FakeBinlog(), "db:3306", F, 647, SIZE, where)
    assert str(e.value) == (
        f"binlogreader: {where}: binlog.000001:647 on db:3306 is not a transaction boundary "
        "(it is inside transaction 0-1-3, which begins at 464 and ends at 860); start at "
        "position 464 to read that transaction whole, or at 860 to start after it"
    )
    with pytest.raises(ConfigError) as e:
        check_start_boundary(FakeBinlog(), "db:3306", F, 100, SIZE, where)
    assert "(it is in the middle of the Format_desc event at 4); start at position 4 or 256" in (
        str(e.value)
    )


@pytest.mark.parametrize("pos", [4, 325, 464, 860, 1462, 1821, SIZE])
def test_a_boundary_at_the_start_of_a_gtid_or_header_event_costs_one_query(pos):
    conn = FakeBinlog()
    check_start_boundary(conn, "db:3306", F, pos, SIZE, "start.position")
    assert conn.queries <= 1, pos
