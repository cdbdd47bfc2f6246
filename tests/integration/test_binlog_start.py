"""binlogreader start modes and the errors a user must act on, against real MariaDB: each
error is one line naming the server and what to change; no Kafka needed (the reader is driven
directly, as its task would)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.errors import ConfigError
from coordinator.job import build_job
from testkit.cdc import NARROW, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_params

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(mysql_url: str, mysql_database: str):
    c = mysql_connect(mysql_url, mysql_database)
    yield c
    c.close()


def reader_job(mysql_url: str, db: str, name: str, **reader: object) -> object:
    spec = cdc_job(mysql_url, db, ["src"], db, "src", name=name, start={"mode": "latest"})
    spec["job"]["content"][0]["reader"]["parameter"].update(reader)
    return build_job(spec)


@pytest.mark.parametrize("grants", ["SELECT", "SELECT, REPLICATION CLIENT"])
def test_missing_replication_privilege(conn, mysql_url, mysql_database, unique_name, grants):
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    user = unique_name[-20:]
    host = mysql_params(mysql_url)["host"]
    execute(conn, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    try:
        execute(conn, f"GRANT {grants} ON *.* TO '{user}'@'%'")
        job = reader_job(mysql_url, db, unique_name, username=user, password="pw")
        with pytest.raises(ConfigError) as e:
            build_source(job).check()
        message = str(e.value)
        assert "\n" not in message
        assert f"user {user!r}" in message and "binlog of" in message, message
        assert f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'" in message
        assert host in message
    finally:
        execute(conn, f"DROP USER '{user}'@'%'")


def start_refused(mysql_url: str, db: str, name: str, file: str) -> str:
    """The one-line error a fresh run starting at ``file``:4 gets (the start is checked when
    the run decides where it starts)."""
    job = reader_job(mysql_url, db, name, start={"journalName": file, "position": 4})
    source = build_source(job)
    source.check()
    with pytest.raises(ConfigError) as e:
        source.list_parts()
    message = str(e.value)
    assert "\n" not in message
    assert "job.content[0].reader.parameter.start.journalName" in message, message
    return message


def test_start_in_a_purged_binlog_file(conn, mysql_url, mysql_database, unique_name):
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    base = binlog_position(conn)["journalName"].rsplit(".", 1)[0]
    gone = f"{base}.000000"
    message = start_refused(mysql_url, db, unique_name, gone)
    assert f"{gone}:4 is no longer on" in message and '"mode": "initial"' in message, message


def test_start_in_a_binlog_file_newer_than_the_last(conn, mysql_url, mysql_database, unique_name):
    """Issue 14: called "purged" before, though the server never wrote it."""
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    last = binlog_position(conn)["journalName"]
    future = f"{last.rsplit('.', 1)[0]}.999999"
    message = start_refused(mysql_url, db, unique_name, future)
    assert f"{future}:4 is newer than the last binlog file on" in message, message
    assert f", {last}:" in message and "no longer on" not in message, message


def test_start_in_a_binlog_file_of_another_name(conn, mysql_url, mysql_database, unique_name):
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    base = binlog_position(conn)["journalName"].rsplit(".", 1)[0]
    message = start_refused(mysql_url, db, unique_name, "other-bin.000001")
    assert "other-bin.000001:4 is not a binlog file of" in message, message
    assert f"named {base}.NNNNNN" in message and "no longer on" not in message, message


def test_resume_from_a_purged_saved_position(conn, mysql_url, mysql_database, unique_name):
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    source = build_source(reader_job(mysql_url, db, unique_name))
    source.check()
    base = binlog_position(conn)["journalName"].rsplit(".", 1)[0]
    saved = {"phase": "binlog", "file": f"{base}.000000", "pos": "1234", "seq": "7"}
    with pytest.raises(ConfigError) as e:
        source.build_part(source.list_parts()[0], "reader-0", saved)
    assert f"the saved position: {base}.000000:1234 is no longer on" in str(e.value)


def first_events(reader: Any, timeout: float) -> list[Any]:
    """The first non-empty batch a reader returns, polling as its runner would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = reader.next_batch()
        if batch:
            return list(batch)
        time.sleep(0.01)
    raise AssertionError(f"no event within {timeout} s")


def test_time_to_first_event_is_short(conn, mysql_url, mysql_database, unique_name):
    """A caught-up reader polls: a new transaction shows up within a few polls."""
    db = mysql_database
    execute(conn, f"CREATE TABLE `{db}`.src ({NARROW})")
    source = build_source(reader_job(mysql_url, db, unique_name))
    source.check()
    reader = source.build_part(source.list_parts()[0], "reader-0", None)
    try:
        assert reader.next_batch() == []
        execute(
            conn, f"INSERT INTO `{db}`.src VALUES (1, 1, 'a', 1, NOW(6)), (2, 2, 'b', 2, NOW(6))"
        )
        started = time.monotonic()
        events = first_events(reader, 5)
        assert [e.after[0] for e in events] == [1, 2]
        assert time.monotonic() - started < 1.0
        state = reader.snapshot()
        assert state["phase"] == "binlog" and state["seq"] == "2" and state["gtid"]
    finally:
        reader.close()


def test_start_after_a_gtid_or_at_a_time(conn, mysql_url, mysql_database, unique_name):
    """Start modes ``gtid`` and ``timestamp`` both begin with the first change after them."""
    db = mysql_database
    execute(
        conn,
        f"CREATE TABLE `{db}`.src ({NARROW})",
        # a fresh binlog file: mode timestamp reads the file holding the time from its top
        "FLUSH BINARY LOGS",
        f"INSERT INTO `{db}`.src (id, k) VALUES (1, 1)",
    )
    with conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        (gtid,) = cur.fetchone()
    at_ms = (int(time.time()) + 1) * 1000  # binlog timestamps are whole seconds
    time.sleep(at_ms / 1000 - time.time() + 0.05)
    execute(conn, f"INSERT INTO `{db}`.src (id, k) VALUES (2, 2)")
    for start in ({"gtid": gtid.split(",")[0]}, {"timestamp": at_ms}):
        source = build_source(reader_job(mysql_url, db, unique_name, start=start))
        source.check()
        reader = source.build_part(source.list_parts()[0], "reader-0", None)
        try:
            events = first_events(reader, 60)  # mode timestamp reads its file from the top
            assert [e.after[0] for e in events] == [2], start
        finally:
            reader.close()
