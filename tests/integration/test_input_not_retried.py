"""Input errors that slip past the checks are never retried as transient (issue 14, item 10):
the MySQL error code decides, so a syntax error stops the job at once with one line."""

from __future__ import annotations

import json
import time

import pytest

from testkit.mysql import mysql_connect
from tests.integration.test_bad_input import _job, _set, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(mysql_url, mysql_database):
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO src VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        cur.execute("CREATE TABLE dst (id BIGINT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO dst VALUES (7, 'keep'), (8, 'me')")
    yield conn, mysql_database
    conn.close()


CASES = {
    # Caught by the reader's check (a LIMIT 0 read) before any task starts: a config error.
    "where_syntax_error": (
        ("reader", "where", "id >>> 2"),
        2,
        ["job.content[0].reader.parameter.where", "syntax"],
    ),
    # Only the writer task meets it: stopped at once, not retried.
    "bad_session_statement": (
        ("writer", "session", ["SET foo = bar baz"]),
        4,
        ["writer-0", "1193", "Unknown system variable 'foo'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_error_stops_the_job_without_retrying(
    case, tables, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    _conn, db = tables
    (side, key, value), exit_code, expected = CASES[case]
    job = _set(_job(mysql_url, db, unique_name), side, key, value)
    started = time.monotonic()
    out = run_cli(json.dumps(job), tmp_path, kafka_bootstrap)
    took = time.monotonic() - started
    assert out.returncode == exit_code, out.stderr
    assert "restarting" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "failed 4 times" not in last
    for text in expected:
        assert text in last, last
    assert took < 60, f"took {took:.0f}s: retried?"
