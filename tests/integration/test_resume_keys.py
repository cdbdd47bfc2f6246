"""A table part resumes after a crash exactly only by a key that tells rows apart
(source_connectors/resume.py), on real MariaDB and PostgreSQL: without one an exactly-once
job is refused before anything is read, naming the table; an at-least-once part restarted
mid-table reads its rows again — every row there, none lost. A non-unique ``splitPk`` is no
such key; a NOT NULL unique index on it is."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.errors import ConfigError
from coordinator.job import build_job
from testkit.cdc import execute
from testkit.mysql import mysql_connect, mysql_job
from testkit.postgres import pg_connect, pg_reader

pytestmark = pytest.mark.integration
ROWS = 100


def read_with_a_restart(job: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The first batch, then everything a part built from its position reads."""
    source = build_source(build_job(job))
    source.check()
    part = source.list_parts()[0]
    reader = source.build_part(part, "reader-0", None)
    try:
        first = reader.next_batch() or []
        position = reader.snapshot()
    finally:
        reader.close()
    reader = source.build_part(part, "reader-0", position)
    rest: list[Any] = []
    try:
        while (batch := reader.next_batch()) is not None:
            rest += batch
    finally:
        reader.close()
    return [e.after for e in first], [e.after for e in rest]


def mysql_keyless(mysql_url: str, db: str, name: str, **setting: Any) -> dict[str, Any]:
    conn = mysql_connect(mysql_url, db)
    execute(conn, "CREATE TABLE t (v INT, w INT NOT NULL)",
            f"INSERT INTO t SELECT seq % 10, seq FROM seq_1_to_{ROWS}")  # fmt: skip
    conn.close()
    return mysql_job(mysql_url, db, "t", "t", name=name, split_pk=None,
                     reader_extra={"fetchSize": 10}, setting_extra=setting)  # fmt: skip


def test_a_keyless_mysql_table_is_refused_exactly_once(mysql_url, mysql_database, unique_name):
    job = mysql_keyless(mysql_url, mysql_database, unique_name)
    with pytest.raises(ConfigError) as refused:
        build_source(build_job(job)).check()
    message = str(refused.value)
    assert message.startswith("job.content[0].reader.parameter.connection[0].table[0]: table t:")
    assert "at-least-once" in message and "\n" not in message


def test_a_keyless_mysql_table_at_least_once_reads_every_row_after_a_restart(
    mysql_url, mysql_database, unique_name
):
    job = mysql_keyless(mysql_url, mysql_database, unique_name, delivery="at-least-once")
    first, rest = read_with_a_restart(job)
    assert len(first) == 10 and len(rest) == ROWS  # read again from its first row
    assert sorted(row[1] for row in rest) == list(range(1, ROWS + 1))


def test_a_non_unique_split_pk_is_no_resume_key_a_unique_one_is(
    mysql_url, mysql_database, unique_name
):
    job = mysql_keyless(mysql_url, mysql_database, unique_name)
    job["job"]["content"][0]["reader"]["parameter"]["splitPk"] = "v"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"its resume key \(v\) holds no primary key"):
        build_source(build_job(job)).check()
    job["job"]["content"][0]["reader"]["parameter"]["splitPk"] = "w"  # type: ignore[index]
    conn = mysql_connect(mysql_url, mysql_database)
    execute(conn, "ALTER TABLE t ADD UNIQUE (w)")
    conn.close()
    first, rest = read_with_a_restart(job)
    assert sorted(r[1] for r in first + rest) == list(range(1, ROWS + 1))  # each row once


def test_a_keyless_postgresql_table_is_refused_or_read_again(
    postgres_url, postgres_database, unique_name
):
    conn = pg_connect(postgres_url, postgres_database)
    conn.execute("CREATE TABLE t (v int, w int NOT NULL)")
    conn.execute(f"INSERT INTO t SELECT g % 10, g FROM generate_series(1, {ROWS}) g")
    conn.close()
    job = {
        "job": {
            "name": unique_name,
            "content": [
                {
                    "reader": pg_reader(postgres_url, postgres_database, "t", fetchSize=10),
                    "writer": {"name": "streamwriter", "parameter": {}},
                }
            ],
            "setting": {"delivery": "exactly-once"},
        }
    }
    with pytest.raises(ConfigError, match=r"table public\.t: it has no primary key"):
        build_source(build_job(job)).check()
    job["job"]["setting"]["delivery"] = "at-least-once"  # type: ignore[index]
    first, rest = read_with_a_restart(job)
    assert len(first) == 10 and sorted(r[1] for r in rest) == list(range(1, ROWS + 1))
