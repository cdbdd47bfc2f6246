"""``mysqlreader`` never loses rows silently (issue 14): NULL ``splitPk`` values, text in any
character set whatever ``characterEncoding`` says, and bad ``where`` / names / numbers are one
clear line at check time, the target untouched. Every case runs ``sluice run`` on a real job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.mysql import jdbc_url, mysql_connect, mysql_job, table_fingerprint

pytestmark = pytest.mark.integration

ROWS = 1000


def sluice_run(
    job: dict, tmp_path: Path, kafka_bootstrap: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "run", str(path), "-q"]
        + ["--bootstrap-servers", kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-4000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out.stderr[-4000:]
    assert "retry" not in out.stderr.lower() and "restart" not in out.stderr.lower(), out.stderr
    return errors[0]


def reader(job: dict) -> dict:
    return job["job"]["content"][0]["reader"]["parameter"]


def writer(job: dict) -> dict:
    return job["job"]["content"][0]["writer"]["parameter"]


def rows_of(conn, db: str, table: str, order: str = "id") -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{db}`.`{table}` ORDER BY {order}")
        return list(cur.fetchall())


# ---- splitPk on a nullable column ----------------------------------------------------------


@pytest.fixture
def nullable_split(mysql_url, mysql_database):
    """1,000 rows, 100 of them with ``k`` NULL — the first 100 by id, so a part ordered by
    ``k`` reads them first and a crash early in the part lands among them."""
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        for t in ("src", "dst"):
            cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, k INT NULL, v VARCHAR(20))")
        cur.execute(
            "INSERT INTO src SELECT seq, IF(seq <= 100, NULL, CAST(seq % 37 AS SIGNED) - 10), CONCAT('v', seq) "
            f"FROM seq_1_to_{ROWS}"
        )
    yield conn, mysql_database
    conn.close()


@pytest.mark.parametrize("strategy", ["range", "mod"])
def test_nullable_split_pk_copies_the_null_rows_once(
    nullable_split, mysql_url, kafka_bootstrap, unique_name, tmp_path, strategy
):
    conn, db = nullable_split
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name, channel=2, split_pk="k")
    reader(job)["splitStrategy"] = strategy
    out = sluice_run(job, tmp_path, kafka_bootstrap)
    assert out.returncode == 0, out.stderr[-3000:]
    assert rows_of(conn, db, "dst") == rows_of(conn, db, "src")


@pytest.mark.parametrize("strategy", ["range", "mod"])
def test_nullable_split_pk_resumes_inside_the_null_rows(
    nullable_split, mysql_url, kafka_bootstrap, unique_name, tmp_path, strategy
):
    """reader-0 reads the NULL rows first (10 a batch, a commit before each rate-limit
    pause) and is killed after its 3rd commit, positioned among them: the restarted task
    must go on after the last NULL row it committed, neither skipping nor repeating."""
    conn, db = nullable_split
    job = mysql_job(
        mysql_url,
        db,
        "src",
        "dst",
        name=unique_name,
        channel=2,
        split_pk="k",
        setting_extra={"speed": {"channel": 2, "records": 2000}},
    )
    reader(job).update({"splitStrategy": strategy, "fetchSize": 10})
    out = sluice_run(job, tmp_path, kafka_bootstrap, {"SLUICE_FAULTS": "reader-0:after_commit:3"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "restart" in out.stderr.lower() or "reader-0" in out.stderr, out.stderr[-3000:]
    assert rows_of(conn, db, "dst") == rows_of(conn, db, "src")


# ---- characterEncoding -----------------------------------------------------------------


@pytest.fixture
def texts(mysql_url, mysql_database):
    """Text in four character sets, with characters latin1 and GBK cannot hold."""
    conn = mysql_connect(mysql_url, mysql_database)
    ddl = (
        "(id INT PRIMARY KEY, u VARCHAR(20) CHARACTER SET utf8mb4, "
        "l VARCHAR(20) CHARACTER SET latin1, g VARCHAR(20) CHARACTER SET gbk, "
        "b VARBINARY(20))"
    )
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE src {ddl}")
        cur.execute(f"CREATE TABLE dst {ddl}")
        cur.execute(
            "INSERT INTO src VALUES (1, '中文', 'café', '中文', 0xFF00E4), "
            "(2, '😀 emoji', 'Ø', '汉字', ''), (3, 'plain', 'x', 'y', NULL)"
        )
    yield conn, mysql_database
    conn.close()


def hex_rows(conn, db: str, table: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, HEX(u), HEX(l), HEX(g), HEX(b) FROM `{db}`.`{table}` ORDER BY id")
        return list(cur.fetchall())


def _with_encoding(url: str, encoding: str) -> str:
    return url.replace("characterEncoding=utf8", f"characterEncoding={encoding}")


@pytest.mark.parametrize(
    "side, encoding", [("reader", "latin1"), ("reader", "GBK"), ("writer", "GBK")]
)
def test_character_encoding_of_a_url_never_changes_the_text(
    texts, mysql_url, kafka_bootstrap, unique_name, tmp_path, side, encoding
):
    conn, db = texts
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name)
    url = _with_encoding(jdbc_url(mysql_url, db), encoding)
    if side == "reader":
        reader(job)["connection"][0]["jdbcUrl"] = [url]
    else:
        writer(job)["connection"][0]["jdbcUrl"] = url
    out = sluice_run(job, tmp_path, kafka_bootstrap)
    assert out.returncode == 0, out.stderr[-3000:]
    assert hex_rows(conn, db, "dst") == hex_rows(conn, db, "src")


@pytest.mark.parametrize("side", ["reader", "writer"])
def test_unknown_character_encoding_is_one_line(
    texts, mysql_url, kafka_bootstrap, unique_name, tmp_path, side
):
    conn, db = texts
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name)
    url = _with_encoding(jdbc_url(mysql_url, db), "nonsense")
    if side == "reader":
        reader(job)["connection"][0]["jdbcUrl"] = [url]
    else:
        writer(job)["connection"][0]["jdbcUrl"] = url
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "characterEncoding" in line and "nonsense" in line, line
    assert f"{side}.parameter.connection[0].jdbcUrl" in line, line
    assert hex_rows(conn, db, "dst") == []


# ---- bad where, names and numbers: one line at check time ----------------------------------


@pytest.fixture
def small(mysql_url, mysql_database):
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id INT PRIMARY KEY, Name VARCHAR(20), k INT)")
        cur.execute("INSERT INTO src SELECT seq, CONCAT('n', seq), seq % 7 FROM seq_1_to_50")
        cur.execute("CREATE TABLE dst (id INT PRIMARY KEY, Name VARCHAR(20), k INT)")
        cur.execute("INSERT INTO dst VALUES (-1, 'keep', 0)")
    yield conn, mysql_database
    conn.close()


def _pre_sql(job: dict) -> dict:
    writer(job)["preSql"] = ["DELETE FROM dst"]
    return job


@pytest.mark.parametrize("split_pk", ["id", None])
@pytest.mark.parametrize("channel", [1, 2])
def test_where_syntax_error_is_one_line_at_check_time(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path, split_pk, channel
):
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = _pre_sql(
        mysql_job(mysql_url, db, "src", "dst", name=unique_name, channel=channel, split_pk=split_pk)
    )
    reader(job)["where"] = "id >> AND"
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "job.content[0].reader.parameter.where" in line, line
    assert "syntax" in line, line
    assert table_fingerprint(conn, db, "dst") == before


def test_where_naming_a_missing_column_is_one_line(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = _pre_sql(mysql_job(mysql_url, db, "src", "dst", name=unique_name, channel=2))
    reader(job)["where"] = "nope > 3"
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "job.content[0].reader.parameter.where" in line and "nope" in line, line
    assert table_fingerprint(conn, db, "dst") == before


@pytest.mark.parametrize("side", ["reader", "writer"])
def test_table_name_with_an_emoji_is_one_line(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path, side
):
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = _pre_sql(mysql_job(mysql_url, db, "src", "dst", name=unique_name))
    params = reader(job) if side == "reader" else writer(job)
    params["connection"][0]["table"] = ["src😀"]
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert f"{side}.parameter.connection[0].table[0]" in line and "src😀" in line, line
    assert table_fingerprint(conn, db, "dst") == before


@pytest.mark.parametrize(
    "section, key", [("speed", "channel"), ("speed", "readerChannel"), ("errorLimit", "record")]
)
def test_a_boolean_is_not_a_number(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path, section, key
):
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = _pre_sql(mysql_job(mysql_url, db, "src", "dst", name=unique_name))
    job["job"]["setting"].setdefault(section, {})[key] = True
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert f"job.setting.{section}.{key}" in line and "true" in line, line
    assert table_fingerprint(conn, db, "dst") == before


def test_column_names_match_case_insensitively(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    """A FlinkX job written with ``"ID"`` runs unchanged: MySQL matches column names
    case-insensitively, and Sluice writes the target's own spelling."""
    conn, db = small
    with conn.cursor() as cur:
        cur.execute("DELETE FROM dst")
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name, channel=2, split_pk="ID")
    reader(job)["column"] = ["ID", "name", "K"]
    writer(job).update({"column": ["Id", "NAME", "k"], "writeMode": "update"})
    writer(job)["updateKey"] = {"key": ["iD"]}
    out = sluice_run(job, tmp_path, kafka_bootstrap)
    assert out.returncode == 0, out.stderr[-3000:]
    assert rows_of(conn, db, "dst") == rows_of(conn, db, "src")


# ---- preSql: checked whole before any statement runs; writeMode needs a key -----------------


def test_failing_pre_sql_leaves_the_target_untouched(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    """Issue 14 item 6: ``["DELETE FROM dst", "SELECT * FROM missing"]`` used to empty the
    target, then fail naming preSql[1]."""
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name)
    writer(job)["preSql"] = ["DELETE FROM dst", "SELECT * FROM missing"]
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "job.content[0].writer.parameter.preSql[1]" in line and "missing" in line, line
    assert table_fingerprint(conn, db, "dst") == before


def test_pre_sql_that_fails_only_when_run_is_rolled_back(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path
):
    """A statement that prepares but fails when run (a duplicate key) rolls back the DELETE
    before it: the target is as it was."""
    conn, db = small
    before = table_fingerprint(conn, db, "dst")
    job = mysql_job(mysql_url, db, "src", "dst", name=unique_name)
    writer(job)["preSql"] = [
        "DELETE FROM dst WHERE id = -1",
        "INSERT INTO dst VALUES (7, 'a', 0), (7, 'b', 0)",
    ]
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "job.content[0].writer.parameter.preSql[1]" in line and "Duplicate" in line, line
    assert table_fingerprint(conn, db, "dst") == before


@pytest.mark.parametrize("mode", ["update", "replace"])
def test_update_or_replace_into_a_keyless_target_is_refused(
    small, mysql_url, kafka_bootstrap, unique_name, tmp_path, mode
):
    """Issue 14 item 3: into a table with no PRIMARY/UNIQUE key these modes appended, so a
    second run (or a replay) duplicated every row."""
    conn, db = small
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE dst_nokey (id INT, Name VARCHAR(20), k INT)")
        cur.execute("INSERT INTO dst_nokey VALUES (-1, 'keep', 0)")
    before = table_fingerprint(conn, db, "dst_nokey")
    job = mysql_job(mysql_url, db, "src", "dst_nokey", name=unique_name, write_mode=mode)
    line = one_error_line(sluice_run(job, tmp_path, kafka_bootstrap))
    assert "writer.parameter.writeMode" in line and "dst_nokey" in line, line
    assert table_fingerprint(conn, db, "dst_nokey") == before
