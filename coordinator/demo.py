"""``sluice demo`` (what ``make demo`` runs): the FlinkX note's MySQL → MySQL job, for real.

Creates ``rpl.flink_test`` with demo rows on the local MariaDB, an empty
``rpl.flink_test_dst``, runs ``examples/mysql_to_mysql.json`` through Kafka, and prints what
moved and whether the two tables are identical.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pymysql

from coordinator.errors import ConfigError

EXAMPLE = Path("examples/mysql_to_mysql.json")


def _connect(mysql_url: str, database: str | None = None) -> pymysql.connections.Connection:
    u = urlparse(mysql_url)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def _fill(conn: pymysql.connections.Connection, rows: int) -> None:
    rng = random.Random(42)
    names = ["张三", "李四", "Ana", "Jürgen", "Zoë", "😀 emoji", "", "O'Brien"]
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS rpl CHARACTER SET utf8mb4")
        cur.execute("DROP TABLE IF EXISTS rpl.flink_test")
        cur.execute("DROP TABLE IF EXISTS rpl.flink_test_dst")
        ddl = "(id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(64), age INT) ENGINE=InnoDB"
        cur.execute(f"CREATE TABLE rpl.flink_test {ddl}")
        cur.execute(f"CREATE TABLE rpl.flink_test_dst {ddl}")
        batch = []
        for i in range(1, rows + 1):
            batch.append((i, rng.choice(names) + str(i), rng.choice([None, rng.randint(0, 99)])))
            if len(batch) == 5000:
                cur.executemany("INSERT INTO rpl.flink_test VALUES (%s, %s, %s)", batch)
                batch = []
        if batch:
            cur.executemany("INSERT INTO rpl.flink_test VALUES (%s, %s, %s)", batch)
        cur.execute("ANALYZE TABLE rpl.flink_test")


def _job_text(mysql_url: str) -> str:
    if not EXAMPLE.exists():
        raise ConfigError(f"{EXAMPLE} not found: run `sluice demo` from the repository root")
    u = urlparse(mysql_url)
    text = EXAMPLE.read_text()
    text = re.sub(
        r"jdbc:mysql://127\.0\.0\.1:3306/", f"jdbc:mysql://{u.hostname}:{u.port or 3306}/", text
    )
    return text


def run_demo(bootstrap: str, mysql_url: str, rows: int) -> int:
    from coordinator.job import parse_job
    from coordinator.local_run import LocalJobRunner

    conn = _connect(mysql_url)
    job = parse_job(_job_text(mysql_url), origin=str(EXAMPLE))
    # The demo recreates both tables, so it must never resume an earlier demo's run (the
    # example has isRestore on): each demo is a fresh run of the job `<name>_demo`.
    restore = job.setting.restore.model_copy(update={"is_restore": False})
    job = job.model_copy(
        update={
            "name": f"{job.name}_demo",
            "setting": job.setting.model_copy(update={"restore": restore}),
        }
    )
    u = urlparse(mysql_url)
    if u.password:
        password = unquote(u.password)
        job = job.with_parameter("reader", password=password).with_parameter(
            "writer", password=password
        )
    runner = LocalJobRunner(job, bootstrap)
    # A killed earlier demo may have left prepared XA transactions locking the target.
    runner.settle_abandoned_run()
    print(f"demo: creating rpl.flink_test with {rows:,} rows on {mysql_url}")
    _fill(conn, rows)
    print(f"demo: running {EXAMPLE} (readerChannel 3 → Kafka {bootstrap} → writerChannel 3)")
    summary = runner.run()
    print(summary.text())
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM rpl.flink_test")
        (src_count,) = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM rpl.flink_test_dst")
        (dst_count,) = cur.fetchone()
        cur.execute("CHECKSUM TABLE rpl.flink_test, rpl.flink_test_dst")
        sums = [row[1] for row in cur.fetchall()]
    same = src_count == dst_count and sums[0] == sums[1]
    print(
        f"demo: source rpl.flink_test {src_count:,} rows (checksum {sums[0]}), "
        f"target rpl.flink_test_dst {dst_count:,} rows (checksum {sums[1]}): "
        + ("identical" if same else "DIFFERENT")
    )
    return 0 if same else 1
