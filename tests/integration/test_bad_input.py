"""Bad input: a clear error naming the problem and where, a non-zero exit, no traceback, and
the target untouched (its preSql, which would empty it, never runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.mysql import mysql_connect, mysql_job, table_fingerprint

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


def run_cli(
    job_text: str, tmp_path: Path, kafka_bootstrap: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.json"
    path.write_text(job_text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "run",
            str(path),
            "-q",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _job(mysql_url, db, name, **kw) -> dict:
    job = mysql_job(
        mysql_url, db, "src", "dst", name=name, writer_extra={"preSql": ["DELETE FROM dst"]}, **kw
    )
    return job


def _set(job: dict, side: str, key: str, value) -> dict:
    job["job"]["content"][0][side]["parameter"][key] = value
    return job


CASES = {
    "malformed_json": (lambda j: json.dumps(j)[:-40], ["invalid JSON", "job.json:1:"]),
    "unknown_reader": (
        lambda j: json.dumps(_rename(j, "mysqlreadr")),
        ["mysqlreadr", "mysqlreader"],
    ),
    "missing_table": (
        lambda j: json.dumps(
            _set(j, "reader", "connection", [{"jdbcUrl": _url(j), "table": ["nope"]}])
        ),
        ["nope", "does not exist"],
    ),
    "wrong_password": (
        lambda j: json.dumps(_set(j, "reader", "password", "wrong-password")),
        ["access denied"],
    ),
    "unreachable_host": (
        lambda j: json.dumps(
            _set(
                j,
                "reader",
                "connection",
                [{"jdbcUrl": ["jdbc:mysql://127.0.0.1:1/x"], "table": ["src"]}],
            )
        ),
        ["cannot connect", "127.0.0.1:1"],
    ),
    "unknown_write_mode": (
        lambda j: json.dumps(_set(j, "writer", "writeMode", "upsert")),
        ["writeMode", "upsert"],
    ),
    "non_numeric_split_pk": (
        lambda j: json.dumps(_set(j, "reader", "splitPk", "name")),
        ["splitPk", "integer"],
    ),
    # issue 14: Kafka's bare "Excessively large number of partitions" before
    "too_many_channels": (
        lambda j: json.dumps(_setting(j, "speed", {"channel": 10000})),
        ["job.setting.speed.channel", "at most 128", "10000"],
    ),
    # issue 13: a RecursionError traceback before
    "deeply_nested": (
        lambda j: json.dumps(j)[:-1] + ', "x": ' + "[" * 10000 + "]" * 10000 + "}",
        ["job.json:1:", "nested deeper than 64"],
    ),
    # issue 15: a/b and a_b shared sluice-dirty-a_b before
    "job_name_with_slash": (
        lambda j: json.dumps({"job": {**j["job"], "name": "a/b"}}),
        ["job.name", "'a/b'", "'/'"],
    ),
    "job_name_too_long": (
        lambda j: json.dumps({"job": {**j["job"], "name": "n" * 304}}),
        ["job.name", "304 characters, at most 100"],
    ),
}


def _setting(job: dict, section: str, values: dict) -> dict:
    job["job"].setdefault("setting", {}).setdefault(section, {}).update(values)
    return job


def _rename(job: dict, name: str) -> dict:
    job["job"]["content"][0]["reader"]["name"] = name
    return job


def _url(job: dict) -> list[str]:
    return job["job"]["content"][0]["reader"]["parameter"]["connection"][0]["jdbcUrl"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_line_and_target_untouched(
    case, tables, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    conn, db = tables
    before = table_fingerprint(conn, db, "dst")
    make_text, expected = CASES[case]
    out = run_cli(make_text(_job(mysql_url, db, unique_name, channel=2)), tmp_path, kafka_bootstrap)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out.stderr
    for word in expected:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    assert "wrong-password" not in out.stderr + out.stdout
    assert table_fingerprint(conn, db, "dst") == before


def test_a_wrong_bootstrap_is_one_line_not_a_flood_of_client_logs(
    tables, mysql_url, unique_name, tmp_path
):
    """Every Kafka client used to print its refused connection every 50 ms (~190 librdkafka
    lines) before Sluice's own error: stderr is that one line now."""
    conn, db = tables
    before = table_fingerprint(conn, db, "dst")
    out = run_cli(json.dumps(_job(mysql_url, db, unique_name)), tmp_path, "127.0.0.1:1")
    assert out.returncode != 0
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sluice: error:"), out.stderr[:3000]
    assert "127.0.0.1:1" in lines[0] and "did not answer" in lines[0]
    assert table_fingerprint(conn, db, "dst") == before


def test_rows_up_to_the_record_limit_copy_exactly_and_a_larger_one_is_named(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    """Rows over the broker's default 1 MiB copy exactly (the job's topics take 8 MiB); a
    row over that is one line naming its table, key and size within seconds — it was
    retried 4 x 60 s before, and the failure named nothing (issue 14 item 9)."""
    conn = mysql_connect(mysql_url, mysql_database)
    mib = 1024 * 1024
    with conn.cursor() as cur:
        for t in ("src", "big"):
            cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, body LONGBLOB)")
        cur.execute("CREATE TABLE dst LIKE src")
        # Random bytes: lz4 cannot shrink them below the limit.
        for i, size in enumerate((10, 2 * mib, 5 * mib, 7 * mib, 3 * mib), start=1):
            cur.execute("INSERT INTO src VALUES (%s, %s)", (i, os.urandom(size)))
        # 10 MiB, doubled on the server: a client statement that large exceeds the packet.
        cur.execute(
            "INSERT INTO big VALUES (1, 'small'), (2, %s), (3, 'x')", (os.urandom(5 * mib),)
        )
        cur.execute("UPDATE big SET body = CONCAT(body, body) WHERE id = 2")
        cur.execute("CREATE TABLE big_dst LIKE big")
    job = mysql_job(mysql_url, mysql_database, "src", "dst", name=unique_name)
    out = run_cli(json.dumps(job), tmp_path, kafka_bootstrap)
    assert out.returncode == 0, out.stderr[-3000:]
    assert table_fingerprint(conn, mysql_database, "dst") == table_fingerprint(
        conn, mysql_database, "src"
    )
    job = mysql_job(mysql_url, mysql_database, "big", "big_dst", name=f"{unique_name}-big")
    started = time.monotonic()
    out = run_cli(json.dumps(job), tmp_path, kafka_bootstrap)
    took = time.monotonic() - started
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out.stderr[-3000:]
    for word in (f"{mysql_database}.big", "key 2", "10.0 MiB", "8 MiB"):
        assert word in errors[0], (word, errors[0])
    assert "restart" not in out.stderr.lower(), out.stderr[-3000:]
    assert took < 60, f"refused after {took:.0f} s"
    assert table_fingerprint(conn, mysql_database, "big_dst")[0] == 0  # nothing written
    conn.close()
