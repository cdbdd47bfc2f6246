"""``postgresqlreader`` and ``postgresqlwriter`` through real jobs (real PostgreSQL, Kafka,
MariaDB), exactly once: every type PostgreSQL → PostgreSQL compared as the server's own text
of every column, and a round trip PostgreSQL → MariaDB → PostgreSQL of the types the mapping
table carries exactly both ways. (Resume from every position, a crash at every commit phase
and bad parameters: tests/conformance.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from coordinator.jdbc import parse_jdbc_url
from coordinator.job import build_job
from coordinator.local_run import LocalJobRunner
from coordinator.pg_client import connect, load_table_schema
from schemas.mysql_types import as_mysql
from testkit.cdc import execute
from testkit.mysql import jdbc_url, mysql_connect, mysql_params
from testkit.pgtypes import create_pg_types, fill_pg_types, text_rows
from testkit.postgres import pg_connect, pg_jdbc_url, pg_params, pg_reader, pg_writer, prepared

pytestmark = pytest.mark.integration


def run(job: dict[str, Any], kafka_bootstrap: str) -> Any:
    summary = LocalJobRunner(
        build_job(json.loads(json.dumps(job))), kafka_bootstrap, quiet=True
    ).run()
    assert summary.status == "finished", summary
    return summary


def job_of(name: str, reader: dict[str, Any], writer: dict[str, Any]) -> dict[str, Any]:
    return {
        "job": {
            "name": name,
            "content": [{"reader": reader, "writer": writer}],
            "setting": {
                "speed": {"readerChannel": 2, "writerChannel": 2},
                "restore": {"checkpointInterval": 500},
            },
        }
    }


def test_every_type_postgresql_to_postgresql_exact(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str
) -> None:
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    create_pg_types(conn, "public", "src")
    fill_pg_types(conn, "public", "src", 2000)
    create_pg_types(conn, "public", "dst", rows=False)
    run(
        job_of(
            unique_name,
            pg_reader(postgres_url, db, "public.src", splitPk="id"),
            pg_writer(postgres_url, db, "public.dst"),
        ),
        kafka_bootstrap,
    )
    source, target = text_rows(conn, "public", "src"), text_rows(conn, "public", "dst")
    conn.close()
    assert len(target) == len(source) == 2004
    for want, got in zip(source, target, strict=True):
        assert got == want, f"row {want[0]}"
    assert prepared(postgres_url, db) == []


# The fill columns (testkit.pgtypes.FILL): every one maps to a MySQL type and back exactly.
ROUND_TRIP = "id, i2, i4, i8, n102, n, f8, b, vc, tx, by, d, t3, ts, tstz, iv, u, jb, e, ai"


def test_a_round_trip_through_mariadb_gives_back_the_same_rows(
    postgres_url: str,
    postgres_database: str,
    mysql_url: str,
    mysql_database: str,
    kafka_bootstrap: str,
    unique_name: str,
) -> None:
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    create_pg_types(conn, "public", "src", rows=False)
    fill_pg_types(conn, "public", "src", 1500)
    conn.execute("INSERT INTO src (id) VALUES (3)")  # every other column NULL
    conn.execute(f"CREATE TABLE back AS SELECT {ROUND_TRIP} FROM src WHERE false")
    conn.execute("ALTER TABLE back ADD PRIMARY KEY (id)")
    p = pg_params(postgres_url)
    pg = connect(parse_jdbc_url(pg_jdbc_url(postgres_url, db), "postgresql"), p["user"],
                 p["password"], where="test")  # fmt: skip
    source = load_table_schema(pg, "public", "back")
    pg.close()
    # The MariaDB table as a job's DDL would declare it for these columns.
    decls = ", ".join(f"`{c.name}` {as_mysql(c).column_type}" for c in source.columns)
    my = mysql_connect(mysql_url, mysql_database)
    execute(my, f"CREATE TABLE mid ({decls}, PRIMARY KEY (id)) DEFAULT CHARSET=utf8mb4")
    my.close()
    m = mysql_params(mysql_url)
    mysql_block = {
        "username": m["user"],
        "password": m["password"],
        "column": ["*"],
    }
    columns = [c.strip() for c in ROUND_TRIP.split(",")]
    run(
        job_of(
            f"{unique_name}-there",
            pg_reader(postgres_url, db, "public.src", splitPk="id", column=columns),
            {
                "name": "mysqlwriter",
                "parameter": {
                    **mysql_block,
                    "connection": [
                        {"jdbcUrl": jdbc_url(mysql_url, mysql_database), "table": ["mid"]}
                    ],
                },
            },
        ),
        kafka_bootstrap,
    )
    run(
        job_of(
            f"{unique_name}-back",
            {
                "name": "mysqlreader",
                "parameter": {
                    **mysql_block,
                    "connection": [
                        {"jdbcUrl": [jdbc_url(mysql_url, mysql_database)], "table": ["mid"]}
                    ],
                    "splitPk": "id",
                },
            },
            pg_writer(postgres_url, db, "public.back", writeMode="replace"),
        ),
        kafka_bootstrap,
    )
    conn.execute(f"CREATE VIEW src_view AS SELECT {ROUND_TRIP} FROM src")
    want = {r[0]: r for r in text_rows_of(conn, "src_view")}
    got = {r[0]: r for r in text_rows_of(conn, "back")}
    conn.close()
    assert len(got) == len(want) == 1501
    for key, row in want.items():
        assert got[key] == row, f"row {key}"
    assert prepared(postgres_url, db) == []


def text_rows_of(conn: Any, relation: str) -> list[tuple[Any, ...]]:
    columns = [c.strip() for c in ROUND_TRIP.split(",")]
    cur = conn.execute(f"SELECT {', '.join(c + '::text' for c in columns)} FROM {relation}")
    return [tuple(r) for r in cur.fetchall()]


def test_a_missing_table_or_server_is_one_line_before_anything_is_written(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """A bad target table and a bad URL are refused before any row moves, in one line."""
    from coordinator.connectors import build_sink
    from coordinator.errors import ConfigError, ConnectError

    db = postgres_database
    writer = pg_writer(postgres_url, db, "public.nope")
    job = build_job(job_of(unique_name, pg_reader(postgres_url, db, "public.x"), writer))
    with pytest.raises(ConfigError, match=r"table public\.nope does not exist"):
        build_sink(job).check()
    writer["parameter"]["connection"][0]["jdbcUrl"] = "jdbc:postgresql://127.0.0.1:1/x"
    job = build_job(job_of(unique_name, pg_reader(postgres_url, db, "public.x"), writer))
    with pytest.raises(ConnectError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1"):
        build_sink(job).check()


def test_a_multi_dimensional_array_stops_the_reader_naming_column_and_row(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """PostgreSQL lets any integer[] value be a matrix; neutral arrays are one-dimensional.
    The reader stops on the first such value, naming column and row, rather than flatten it."""
    from coordinator.connectors import build_source
    from coordinator.errors import TaskFailed

    conn = pg_connect(postgres_url, postgres_database)
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, a integer[])")
    conn.execute("INSERT INTO m VALUES (1, '{1,2}'), (2, '{{1,2},{3,4}}')")
    conn.close()
    reader = pg_reader(postgres_url, postgres_database, "public.m")
    source = build_source(
        build_job(
            job_of(unique_name, reader, pg_writer(postgres_url, postgres_database, "public.m"))
        )
    )
    source.check()
    part = source.build_part(source.list_parts()[0], "reader-0", None)
    try:
        with pytest.raises(
            TaskFailed,
            match=r"column a of public\.m holds a multi-dimensional array in the row \{'id': 2\}",
        ):
            while part.next_batch() is not None:
                pass
    finally:
        part.close()


def test_a_custom_sql_query_is_read_typed_and_resumes_by_its_restore_column(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    from coordinator.connectors import build_source
    from coordinator.errors import ConfigError

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    create_pg_types(conn, "public", "src")
    fill_pg_types(conn, "public", "src", 50)
    conn.close()
    query = "SELECT id, n102 * 2 AS twice, e, ai FROM src WHERE id % 2 = 1 OR id = 4"
    reader = pg_reader(postgres_url, db, "public.src", customSql=query, fetchSize=7)
    job = job_of(unique_name, reader, pg_writer(postgres_url, db, "public.src"))
    job["job"]["setting"]["restore"]["restoreColumnName"] = "id"
    source = build_source(build_job(job))
    source.check()
    kinds = [c.logical.describe() for c in source.tables()[0].columns]
    assert kinds == ["int64", "numeric", "enum(4 members)", "array<int32>"]
    part = source.list_parts()[0]
    reader_part = source.build_part(part, "reader-0", None)
    first = reader_part.next_batch() or []
    position = reader_part.snapshot()
    reader_part.close()
    rest = []
    reader_part = source.build_part(part, "reader-0", position)
    while (batch := reader_part.next_batch()) is not None:
        rest += batch
    reader_part.close()
    ids = [e.after[0] for e in first + rest]
    conn = pg_connect(postgres_url, db)
    want = [r[0] for r in conn.execute(f"SELECT id FROM ({query}) q ORDER BY id").fetchall()]
    conn.close()
    assert len(first) == 7 and ids == want  # each row once, in order, across the restart
    bad = pg_reader(postgres_url, db, "public.src", customSql="SELECT nope FROM src")
    with pytest.raises(ConfigError, match=r"customSql: the query fails: column \"nope\""):
        build_source(
            build_job(job_of(unique_name, bad, {"name": "streamwriter", "parameter": {}}))
        ).check()


def test_a_row_the_table_refuses_is_rejected_and_the_rest_of_the_batch_written(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """Plain inserts go as one COPY; a value the target refuses fails the COPY, and the
    batch is applied again row by row: only that row is rejected, with the server's reason."""
    from coordinator.connectors import build_sink
    from schemas import types as t
    from schemas.events import Op, RowEvent, SourcePosition
    from schemas.table import Column, TableSchema
    from testkit.sinks import commit_once

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE dst (id int PRIMARY KEY, v varchar(3), n smallint)")
    source = TableSchema(
        "app", "src",
        (Column("id", "int", "int", False, logical=t.int_type(32), dialect="x"),
         Column("v", "text", "text", logical=t.simple(t.STRING), dialect="x"),
         Column("n", "bigint", "bigint", logical=t.int_type(64), dialect="x")),
        ("id",),
    )  # fmt: skip
    rows = [(1, "ok", 1), (2, "too long", 2), (3, "ab", 70000), (4, "cd", 4), (5, None, None)]
    events = [
        RowEvent(Op.SNAPSHOT, source, None, row, SourcePosition("reader-0", seq=n), 0)
        for n, row in enumerate(rows, 1)
    ]
    job = build_job(job_of(unique_name, pg_reader(postgres_url, db, "public.dst"),
                           pg_writer(postgres_url, db, "public.dst")))  # fmt: skip
    sink = build_sink(job)
    sink.check()
    sink.check_input([source])
    writer = sink.build_writer("writer-0")
    writer.begin("sl-rej-writer-0-1")
    rejected = writer.write(events)
    assert [(r.event.after[0], r.reason.split(":")[0]) for r in rejected] == [
        (2, "value too long for type character varying(3)"),
        (3, "smallint out of range"),
    ]
    writer.abort()
    writer.close()
    writer = sink.build_writer("writer-0")
    good = [e for e in events if e.after[0] not in (2, 3)]
    commit_once(writer, "sl-rej-writer-0-2", good, {"t:0": 5})
    got = conn.execute("SELECT id, v, n FROM dst ORDER BY id").fetchall()
    conn.close()
    assert got == [(1, "ok", 1), (4, "cd", 4), (5, None, None)]


@pytest.mark.parametrize("write_mode", ["insert", "replace"])
def test_mariadb_cdc_into_postgresql_follows_every_change(
    write_mode: str,
    postgres_url: str,
    postgres_database: str,
    mysql_url: str,
    mysql_database: str,
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Any,
) -> None:
    """binlogreader (initial snapshot, then the binlog) → postgresqlwriter, 3 writer
    channels: inserts, updates, an update that changes the key, deletes and a re-insert of a
    deleted key, while the job runs; the PostgreSQL table ends equal to the MariaDB one."""
    from testkit.cdc import RunningJob, cdc_job
    from testkit.wait import wait_until

    my = mysql_connect(mysql_url, mysql_database)
    execute(
        my,
        "CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(20), amount DECIMAL(10,2),"
        " at DATETIME(6), flag TINYINT(1))",
        "INSERT INTO src SELECT seq, CONCAT('v', seq), seq / 4, '2024-01-01' + INTERVAL seq"
        " MINUTE, seq % 2 FROM seq_1_to_500",
    )
    pg = pg_connect(postgres_url, postgres_database)
    pg.execute("CREATE TABLE dst (id int PRIMARY KEY, v varchar(20), amount numeric(10,2),"
               " at timestamp(6), flag boolean)")  # fmt: skip
    job = cdc_job(mysql_url, mysql_database, ["src"], mysql_database, "src",
                  name=unique_name, start={"mode": "initial"}, writers=3)  # fmt: skip
    job["job"]["content"][0]["writer"] = pg_writer(
        postgres_url, postgres_database, "public.dst", writeMode=write_mode
    )
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        execute(
            my,
            "INSERT INTO src SELECT seq, CONCAT('n', seq), -seq, NOW(6), 1 FROM seq_501_to_800",
            "UPDATE src SET v = CONCAT(v, '!'), amount = amount + 1 WHERE id % 3 = 0",
            "UPDATE src SET id = id + 10000 WHERE id BETWEEN 10 AND 19",  # the key changes
            "DELETE FROM src WHERE id % 7 = 0",
            "INSERT INTO src VALUES (14, 'back', 1.5, '2000-01-01', 0)",  # deleted, again
            "UPDATE src SET flag = NULL, at = NULL WHERE id = 1",
        )

        def rows_of_mysql() -> list[tuple[Any, ...]]:
            with my.cursor() as cur:
                cur.execute("SELECT id, v, amount, at, flag FROM src ORDER BY id")
                return [
                    (i, v, a, t, None if f is None else bool(f)) for i, v, a, t, f in cur.fetchall()
                ]

        def rows_of_pg() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in pg.execute("SELECT * FROM dst ORDER BY id").fetchall()]

        def copied() -> bool:
            running.assert_running()
            return rows_of_pg() == rows_of_mysql()

        wait_until(copied, 90, "PostgreSQL to follow MariaDB")
    finally:
        running.stop()
        my.close()
    assert prepared(postgres_url, postgres_database) == []
    pg.close()


@pytest.mark.parametrize("strategy", ["range", "mod"])
def test_split_parts_read_every_row_once_nulls_and_a_percent_where_included(
    strategy: str, postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """A NULL-able splitPk (NULLs go to the first part), both split strategies over 3
    channels, a `where` with a literal %: every row the `where` keeps, exactly once."""
    from coordinator.connectors import build_source

    conn = pg_connect(postgres_url, postgres_database)
    conn.execute("CREATE TABLE s (id int PRIMARY KEY, k int, v text)")
    conn.execute(
        "INSERT INTO s SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g % 97 - 40 END,"
        " CASE WHEN g % 3 = 0 THEN '50% off' ELSE 'full' END FROM generate_series(1, 1000) g"
    )
    want = sorted(r[0] for r in conn.execute("SELECT id FROM s WHERE v LIKE '%\\%%' OR id < 50"))
    conn.close()
    reader = pg_reader(postgres_url, postgres_database, "s", splitPk="k", fetchSize=64,
                       splitStrategy=strategy, where="v LIKE '%\\%%' OR id < 50")  # fmt: skip
    job = job_of(unique_name, reader, {"name": "streamwriter", "parameter": {}})
    job["job"]["setting"]["speed"] = {"readerChannel": 3, "writerChannel": 1}
    source = build_source(build_job(job))
    source.check()
    parts = source.list_parts()
    assert len(parts) == 3
    got = []
    for part in parts:
        r = source.build_part(part, "reader-0", None)
        try:
            while (batch := r.next_batch()) is not None:
                got += [e.after[0] for e in batch]
        finally:
            r.close()
    assert sorted(got) == want and len(got) == len(set(got))
