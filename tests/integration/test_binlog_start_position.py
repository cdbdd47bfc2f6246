"""A binlog ``start`` (``journalName`` + ``position``) must be a transaction boundary (issue 14
item 4), end to end through ``sluice run`` against real MariaDB and Kafka: a position inside a
three-insert transaction is refused with one line naming the JSON path and the boundaries
around it, nothing written; a boundary — the top of a file, the one before the transaction,
the one after it — is accepted, and the target holds exactly the transactions after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.cdc import NARROW, RunningJob, cdc_job, execute
from testkit.mysql import mysql_connect
from testkit.wait import wait_until

pytestmark = pytest.mark.integration

POSITION_PATH = "job.content[0].reader.parameter.start.position"


def events_since(conn: Any, file: str, pos: int) -> list[tuple[int, str, int]]:
    """``(Pos, Event_type, End_log_pos)`` of the events of ``file`` from ``pos``."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW BINLOG EVENTS IN '{file}' FROM {pos}")
        return [(int(r[1]), str(r[2]), int(r[4])) for r in cur.fetchall()]


@pytest.fixture
def history(mysql_url, mysql_database):
    """A fresh binlog file holding, for table ``src``: id 1 (one transaction), ids 10, 11, 12
    (one transaction of three INSERTs), id 20 (one transaction). Returns the connection, the
    file and the positions: ``mid`` right after the first INSERT of the three, ``before``
    and ``after`` the boundaries around that transaction."""
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(conn, f"CREATE TABLE src ({NARROW})", f"CREATE TABLE dst ({NARROW})")
    execute(conn, "FLUSH BINARY LOGS", "INSERT INTO src (id, k) VALUES (1, 1)")
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, after_first = cur.fetchone()[:2]
    execute(
        conn,
        "BEGIN",
        "INSERT INTO src (id, k) VALUES (10, 1)",
        "INSERT INTO src (id, k) VALUES (11, 1)",
        "INSERT INTO src (id, k) VALUES (12, 1)",
        "COMMIT",
        "INSERT INTO src (id, k) VALUES (20, 1)",
    )
    evs = events_since(conn, file, int(after_first))
    first_rows = next(i for i, e in enumerate(evs) if e[1].startswith("Write_rows"))
    gtid = max(i for i in range(first_rows) if evs[i][1] == "Gtid")
    xid = next(i for i in range(first_rows, len(evs)) if evs[i][1] == "Xid")
    assert [e[1] for e in evs[first_rows:xid]].count("Write_rows_v1") == 3, evs
    points = {"before": evs[gtid][0], "mid": evs[first_rows][2], "after": evs[xid][2]}
    yield conn, db, file, points
    conn.close()


def job_starting_at(mysql_url: str, db: str, name: str, file: str, pos: int) -> dict[str, Any]:
    start = {"journalName": file, "position": pos}
    return cdc_job(mysql_url, db, ["src"], db, "dst", name=name, start=start)


def ids(conn: Any, db: str, table: str) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM `{db}`.`{table}` ORDER BY id")
        return [int(r[0]) for r in cur.fetchall()]


def test_a_start_inside_a_transaction_is_refused(
    history, mysql_url, kafka_bootstrap, unique_name, tmp_path: Path
):
    conn, db, file, at = history
    spec = job_starting_at(mysql_url, db, unique_name, file, at["mid"])
    job = RunningJob(spec, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: job.proc.poll() is not None, 60, "sluice run to refuse the job")
    finally:
        code, out = job.stop()  # an accepted job runs until stopped
    assert code != 0, out[-4000:]
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out
    for words in (
        POSITION_PATH,
        f"{file}:{at['mid']}",
        "not a transaction boundary",
        f"begins at {at['before']} and ends at {at['after']}",
        f"start at position {at['before']}",
    ):
        assert words in errors[0], f"{words!r} not in {errors[0]!r}"
    assert ids(conn, db, "dst") == []


@pytest.mark.parametrize(
    ("start", "expected"),
    [("top", [1, 10, 11, 12, 20]), ("before", [10, 11, 12, 20]), ("after", [20])],
)
def test_a_start_at_a_boundary_copies_exactly_what_follows(
    history, mysql_url, kafka_bootstrap, unique_name, tmp_path: Path, start, expected
):
    conn, db, file, at = history
    pos = 4 if start == "top" else at[start]
    job = RunningJob(
        job_starting_at(mysql_url, db, unique_name, file, pos), tmp_path / "job.json",
        kafka_bootstrap,
    )  # fmt: skip
    try:
        # a marker written once the job runs: when it lands, everything before it has
        execute(conn, "INSERT INTO src (id, k) VALUES (99, 1)")
        wait_until(lambda: job.assert_running() or 99 in ids(conn, db, "dst"), 60, "the marker row")
        assert ids(conn, db, "dst") == [*expected, 99]
    finally:
        code, out = job.stop()
    assert code == 0, out[-4000:]
