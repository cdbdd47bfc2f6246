"""The CDC workload of ``make bench``: a fixed number of row changes written to MariaDB.

Debian packages sysbench (1.0.20), and ``bench.sysbench_lag`` runs its ``oltp_write_only``
for the lag target; a fixed-size range to capture is what the side-by-side comparison needs,
so this is our generator in the spirit of ``oltp_write_only``: inserts, updates of a non-indexed
column and deletes by primary key, committed in transactions of ``batch`` rows (what a
busy OLTP writer does, rather than one giant transaction). ``changes`` row changes are
split 62.5% inserts, 31.25% updates, 6.25% deletes, so the same binlog range holds inserts,
before/after images and deletes; the server builds the rows from its ``seq`` engine so the
generator itself costs no CPU to speak of.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pymysql

from testkit.cdc import binlog_position, execute

COLUMNS = (
    "id BIGINT NOT NULL PRIMARY KEY, k INT NOT NULL, v VARCHAR(64), amount DECIMAL(12,2), "
    "at DATETIME(6), KEY (k)"
)


@dataclass
class Workload:
    start: dict[str, Any]
    end: dict[str, Any]
    changes: int
    rows_left: int
    seconds: float

    @property
    def events_per_s(self) -> int:
        return round(self.changes / self.seconds)


def write(
    conn: pymysql.connections.Connection, table: str, changes: int, batch: int = 1000
) -> Workload:
    """Apply ``changes`` row changes to ``table`` (empty, ``COLUMNS``) in batch-row transactions."""
    rows = math.ceil(changes / 1.6)
    db = conn.db.decode() if isinstance(conn.db, bytes) else conn.db
    start = binlog_position(conn)
    began = time.monotonic()
    done = 0
    for lo in range(1, rows + 1, batch):
        hi = min(lo + batch - 1, rows)
        execute(
            conn,
            f"INSERT INTO {table} SELECT seq, seq % 100, CONCAT('v', seq), seq / 100, NOW(6) "
            f"FROM {db}.seq_{lo}_to_{hi}",
        )
        done += hi - lo + 1
    # Updates (every 2nd row) and deletes (every 10th) by key range: `batch` rows each.
    for lo in range(1, rows + 1, 2 * batch):
        hi = min(lo + 2 * batch - 1, rows)
        execute(
            conn,
            f"UPDATE {table} SET v = CONCAT(v, 'u'), amount = amount + 1 "
            f"WHERE id BETWEEN {lo} AND {hi} AND id % 2 = 0",
        )
    for lo in range(1, rows + 1, 10 * batch):
        hi = min(lo + 10 * batch - 1, rows)
        execute(conn, f"DELETE FROM {table} WHERE id BETWEEN {lo} AND {hi} AND id % 10 = 0")
    seconds = time.monotonic() - began
    end = binlog_position(conn)
    total = rows + rows // 2 + rows // 10
    return Workload(start, end, total, rows - rows // 10, seconds)
