"""``pgwalreader`` through real jobs (real PostgreSQL with logical replication, Kafka with
transactions, MariaDB): every type PostgreSQL → PostgreSQL through the WAL, pgbench's own
load into MariaDB while tasks are killed, schema changes, the slot's confirmed LSN, and each
bad input as one line with nothing written. (Every type decoded from the WAL equal to a
SELECT, and a resume from every position, snapshot included: tests/conformance.)"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.job import build_job
from source_connectors.postgres.pgoutput import parse_lsn
from testkit.cdc import RunningJob, execute
from testkit.mysql import jdbc_url, mysql_connect, mysql_params
from testkit.pgtypes import create_pg_types, fill_pg_types, text_rows
from testkit.postgres import pg_connect, pg_params, pg_wal_reader, pg_writer, prepared
from testkit.wait import wait_until
from tests.integration.test_snapshot_safety import one_error_line, sluice_run

pytestmark = pytest.mark.integration


def wal_job(name: str, reader: dict[str, Any], writer: dict[str, Any], writers: int = 1
            ) -> dict[str, Any]:  # fmt: skip
    return {
        "job": {
            "name": name,
            "content": [{"reader": reader, "writer": writer}],
            "setting": {
                "speed": {"readerChannel": 1, "writerChannel": writers},
                "restore": {"checkpointInterval": 500},
            },
        }
    }


def slot_lsn(postgres_url: str, slot: str) -> int | None:
    conn = pg_connect(postgres_url)
    try:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
        return parse_lsn(row[0]) if row and row[0] else None
    finally:
        conn.close()


def test_every_type_and_every_change_postgresql_to_postgresql(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """initial snapshot, then inserts, updates of every column, an update of the key, deletes,
    a re-inserted key and a TRUNCATE-free transaction of many rows, 3 writer channels: the
    target equals the source as the server's own text of every column."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    create_pg_types(conn, "public", "src")
    fill_pg_types(conn, "public", "src", 500)
    conn.execute("ALTER TABLE public.src REPLICA IDENTITY FULL")
    create_pg_types(conn, "public", "dst", rows=False)
    job = wal_job(
        unique_name,
        pg_wal_reader(postgres_url, db, ["public.src"], start={"mode": "initial"}),
        pg_writer(postgres_url, db, "public.dst"),
        writers=3,
    )
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        conn.execute("INSERT INTO public.src SELECT id + 100000, i2, i4, i8, n102, n, n50, nneg,"
                     " f4, f8, b, vc, ch, tx, by, d, t, t3, tz, ts, ts3, tstz, tstz0, iv, u, j,"
                     " jb, e, ai, atx, an, bt, vb, ip, cid, mac, m, x, pt FROM public.src"
                     " WHERE id < 5")  # fmt: skip
        with conn.transaction():
            conn.execute("UPDATE public.src SET i4 = i4 / 2, tx = tx || '!', n = n * 2,"
                         " ts = ts + interval '1 day', ai = ai || 7, jb = jb || '{\"u\": 1}'"
                         " WHERE id % 3 = 0")  # fmt: skip
            conn.execute("UPDATE public.src SET id = id + 50000 WHERE id BETWEEN 200 AND 209")
            conn.execute("DELETE FROM public.src WHERE id % 7 = 0")
        conn.execute("INSERT INTO public.src (id, tx) VALUES (7, 'back again')")
        conn.execute("UPDATE public.src SET tx = NULL, m = NULL, e = 'ok' WHERE id = 1")

        def copied() -> bool:
            running.assert_running()
            return text_rows(conn, "public", "dst") == text_rows(conn, "public", "src")

        wait_until(copied, 120, "the PostgreSQL target to follow the WAL")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    source = text_rows(conn, "public", "src")
    conn.close()
    assert len(source) > 400
    assert prepared(postgres_url, db) == []


def test_pgbench_into_mariadb_with_tasks_killed(
    postgres_url: str, postgres_database: str, mysql_url: str, mysql_database: str,
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """pgbench (its own schema and TPC-B-like load, 4 clients) while a pgwalreader initial →
    mysqlwriter job with 3 writer channels runs, and the reader is SIGKILLed right after a
    commit and inside a transaction, one writer after its XA PREPARE and one after the Kafka
    commit: once the load stops, every pgbench table in MariaDB equals PostgreSQL's, no XA
    transaction is left prepared, and the slot has not passed the committed position."""
    db = postgres_database
    p = pg_params(postgres_url)
    env = {**os.environ, "PGPASSWORD": p["password"]}
    bench = ["pgbench", "-h", p["host"], "-p", str(p["port"]), "-U", p["user"]]
    subprocess.run([*bench, "-i", "-s", "1", "-q", db], check=True, env=env, capture_output=True)
    pg = pg_connect(postgres_url, db)
    pg.execute("ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY")
    my = mysql_connect(mysql_url, mysql_database)
    execute(
        my,
        "CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT,"
        " filler CHAR(84))",
        "CREATE TABLE pgbench_branches (bid INT PRIMARY KEY, bbalance INT, filler CHAR(88))",
        "CREATE TABLE pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT,"
        " filler CHAR(84))",
        "CREATE TABLE pgbench_history (tid INT, bid INT, aid INT, delta INT, mtime DATETIME(6),"
        " filler CHAR(22), hid BIGINT PRIMARY KEY)",
    )
    tables = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
    m = mysql_params(mysql_url)
    writer = {
        "name": "mysqlwriter",
        "parameter": {
            "username": m["user"],
            "password": m["password"],
            "connection": [{"jdbcUrl": jdbc_url(mysql_url, mysql_database), "table": ["*"]}],
            "writeMode": "insert",
        },
    }
    reader = pg_wal_reader(postgres_url, db, [f"public.{t}" for t in tables],
                           start={"mode": "initial"}, fetchSize=5000)  # fmt: skip
    monkeypatch.setenv(
        "SLUICE_FAULTS",
        "reader-0:after_commit:4,writer-1:after_prepare:3,writer-2:after_kafka_commit:5",
    )
    running = RunningJob(wal_job(unique_name, reader, writer, writers=3),
                         tmp_path / "job.json", kafka_bootstrap)  # fmt: skip
    monkeypatch.delenv("SLUICE_FAULTS")
    try:
        load = subprocess.run([*bench, "-c", "4", "-j", "2", "-T", "12", "-n", db],
                              env=env, capture_output=True, text=True)  # fmt: skip
        assert load.returncode == 0, load.stderr[-2000:]
        pg.execute("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES"
                   " (1, 1, 1, 0, now())")  # after the load: the last change to wait for  # fmt: skip

        queries = {
            "pgbench_accounts": "SELECT aid, bid, abalance FROM pgbench_accounts ORDER BY aid",
            "pgbench_branches": "SELECT bid, bbalance FROM pgbench_branches ORDER BY bid",
            "pgbench_tellers": "SELECT tid, bid, tbalance FROM pgbench_tellers ORDER BY tid",
            "pgbench_history": "SELECT hid, tid, bid, aid, delta, mtime FROM pgbench_history"
            " ORDER BY hid",
        }

        def differing() -> list[str]:
            out = []
            for table, sql in queries.items():
                want = [tuple(r) for r in pg.execute(sql).fetchall()]
                with my.cursor() as cur:
                    cur.execute(sql)
                    got = [tuple(r) for r in cur.fetchall()]
                if got != want:
                    out.append(f"{table}: {len(got)} rows, PostgreSQL has {len(want)}")
            return out

        def copied() -> bool:
            running.assert_running()
            return not differing()

        try:
            wait_until(copied, 180, "MariaDB to equal PostgreSQL's pgbench tables")
        except AssertionError:
            raise AssertionError(f"{differing()}\n{running.output()[-3000:]}") from None
        history = pg.execute("SELECT count(*) FROM pgbench_history").fetchone()
        assert history is not None and history[0] > 100  # the load really ran
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    assert differing() == []  # and still, after the stop settled every writer
    assert "restarting" in out  # the faults did strike
    with my.cursor() as cur:
        cur.execute("XA RECOVER")
        assert cur.fetchall() == ()
    my.close()
    pg.close()


def test_the_slot_moves_only_after_the_commit_that_covers_it(
    postgres_url: str, postgres_database: str, unique_name: str
) -> None:
    """The reader reads changes and lets keepalives go by without a commit: the slot's
    confirmed LSN stays put; told of the commit, the slot moves to that position, no further."""
    from source_connectors.base import SourceContext
    from source_connectors.postgres.wal import PgWalSource

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    reader_block = pg_wal_reader(postgres_url, db, ["public.t"], statusInterval=1000)
    job = build_job(wal_job(unique_name, reader_block, {"name": "streamwriter", "parameter": {}}))
    config = job.content[0].reader.config
    source = PgWalSource(config, SourceContext(unique_name, 1))
    source.check()
    (part,) = source.list_parts()
    slot = config.slot(unique_name)
    start = slot_lsn(postgres_url, slot)
    assert start is not None
    reader = source.build_part(part, "reader-0", None)
    try:
        for i in range(5):
            conn.execute("INSERT INTO t VALUES (%s, 'x')", (i,))
        events: list[Any] = []
        deadline = time.monotonic() + 30
        while len(events) < 5 and time.monotonic() < deadline:
            events += reader.next_batch() or []
        assert [e.after[0] for e in events] == [0, 1, 2, 3, 4]
        state = reader.snapshot()
        for _ in range(30):  # 3 s of keepalives and status updates, no commit
            reader.next_batch()
            time.sleep(0.1)
        assert slot_lsn(postgres_url, slot) == start
        reader.committed(state)
        wait_until(lambda: slot_lsn(postgres_url, slot) == int(state["lsn"]), 10,
                   "the slot to move to the committed position")  # fmt: skip
        conn.execute("INSERT INTO t VALUES (99, 'later')")
        time.sleep(1)
        reader.next_batch()
        assert slot_lsn(postgres_url, slot) == int(state["lsn"])
    finally:
        reader.close()
        conn.close()


def test_a_schema_change_in_postgresql_reaches_mariadb(
    postgres_url: str, postgres_database: str, mysql_url: str, mysql_database: str,
    kafka_bootstrap: str, unique_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """ADD COLUMN and a widened column in PostgreSQL, with rows before and after in the same
    run: mysqlwriter adds and widens its columns from the Relation messages, and every row
    lands with its values."""
    db = postgres_database
    pg = pg_connect(postgres_url, db)
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v varchar(10))")
    pg.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g")
    my = mysql_connect(mysql_url, mysql_database)
    execute(my, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
    m = mysql_params(mysql_url)
    writer = {"name": "mysqlwriter", "parameter": {
        "username": m["user"], "password": m["password"], "writeMode": "replace",
        "connection": [{"jdbcUrl": jdbc_url(mysql_url, mysql_database), "table": ["t"]}],
    }}  # fmt: skip
    job = wal_job(unique_name, pg_wal_reader(postgres_url, db, ["public.t"],
                                             start={"mode": "initial"}), writer)  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        pg.execute("INSERT INTO t VALUES (51, 'before')")
        pg.execute("ALTER TABLE t ADD COLUMN amount numeric(12,2)")
        pg.execute("ALTER TABLE t ALTER COLUMN v TYPE varchar(40)")
        pg.execute("INSERT INTO t VALUES (52, 'after the change, longer', 12.5)")
        pg.execute("UPDATE t SET amount = id / 4.0 WHERE id <= 10")

        def rows_of(cur_rows: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in cur_rows]

        def copied() -> bool:
            running.assert_running()
            want = rows_of(pg.execute("SELECT id, v, amount FROM t ORDER BY id").fetchall())
            with my.cursor() as cur:
                try:
                    cur.execute("SELECT id, v, amount FROM t ORDER BY id")
                except Exception:  # noqa: BLE001 - the column is not there yet
                    return False
                return rows_of(cur.fetchall()) == want

        wait_until(copied, 90, "MariaDB to take the new column and every row")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    my.close()
    pg.close()


def test_an_unchanged_toasted_value_without_replica_identity_full_stops_with_one_line(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """An update that leaves a large value out of the WAL (REPLICA IDENTITY DEFAULT): the job
    fails naming the table, column and fix, and never writes a row with a made-up value."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE big (id int PRIMARY KEY, n int, doc text)")
    conn.execute("CREATE TABLE big_copy (id int PRIMARY KEY, n int, doc text)")
    # md5 chains do not compress: the value is stored out of line (TOASTed).
    conn.execute("INSERT INTO big SELECT 1, 0, string_agg(md5(g::text), '') FROM"
                 " generate_series(1, 2000) g")  # fmt: skip
    slot = f"s_{unique_name}"[:63].lower()
    job = wal_job(unique_name, pg_wal_reader(postgres_url, db, ["public.big"],
                  start={"mode": "initial"}, slotName=slot),
                  pg_writer(postgres_url, db, "public.big_copy"))  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: conn.execute("SELECT count(*) FROM big_copy").fetchone() == (1,),
                   60, "the snapshot row")  # fmt: skip
        conn.execute("UPDATE big SET n = 1 WHERE id = 1")
        running.proc.wait(60)
        out = running.output()
    finally:
        running.stop()
    assert running.proc.returncode not in (0, None), out[-2000:]
    errors = [line for line in out.splitlines() if line.startswith("sluice: error:")]
    assert len(errors) == 1, out[-3000:]
    assert "public.big" in errors[0] and "'doc'" in errors[0], errors[0]
    assert "REPLICA IDENTITY FULL" in errors[0], errors[0]
    assert conn.execute("SELECT n FROM big_copy").fetchall() == [(0,)]  # nothing made up
    conn.close()


def test_bad_inputs_are_one_line_and_write_nothing(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """No REPLICATION privilege, a missing publication or slot with allowCreateSlot false, a
    slot in use, an LSN the slot has already passed, a temporary slot: one line each naming
    the problem, exit non-zero, the target empty."""
    import psycopg2
    import psycopg2.extras

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("CREATE TABLE t_copy (id int PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1), (2)")
    role = f"noreplication_{unique_name[-8:]}".lower()
    conn.execute(f"CREATE ROLE {role} LOGIN")
    conn.execute(f"GRANT SELECT ON t TO {role}")
    writer = pg_writer(postgres_url, db, "public.t_copy")

    def refused(name: str, extra: dict[str, Any], *, fragment: str) -> None:
        reader = pg_wal_reader(postgres_url, db, ["public.t"],
                               **{"start": {"mode": "initial"}, **extra})  # fmt: skip
        out = sluice_run(wal_job(f"{unique_name}_{name}", reader, writer), tmp_path,
                         kafka_bootstrap)  # fmt: skip
        line = one_error_line(out)
        assert fragment in line, line
        assert conn.execute("SELECT count(*) FROM t_copy").fetchone() == (0,)

    try:
        refused("priv", {"username": role}, fragment="REPLICATION")
        refused("nopub", {"allowCreateSlot": False, "publicationName": "nopub"},
                fragment="publication 'nopub' does not exist")  # fmt: skip
        conn.execute("CREATE PUBLICATION havepub FOR TABLE t")
        refused("noslot", {"allowCreateSlot": False, "publicationName": "havepub",
                           "slotName": "noslot"}, fragment="slot 'noslot' does not exist")  # fmt: skip
        refused("temp", {"temporary": True}, fragment="temporary")
        conn.execute("SELECT pg_create_logical_replication_slot('busy', 'pgoutput')")
        p = pg_params(postgres_url)
        holder = psycopg2.connect(host=p["host"], port=p["port"], user=p["user"], dbname=db,
                                  connection_factory=psycopg2.extras.LogicalReplicationConnection)  # fmt: skip
        cur = holder.cursor()
        cur.start_replication(slot_name="busy", decode=False,
                              options={"proto_version": "1", "publication_names": "havepub"})  # fmt: skip
        try:
            refused("busy", {"slotName": "busy", "publicationName": "havepub"},
                    fragment="slot 'busy' is in use")  # fmt: skip
        finally:
            holder.close()
        conn.execute("INSERT INTO t VALUES (3)")
        conn.execute("SELECT pg_replication_slot_advance('busy', pg_current_wal_lsn())")
        refused("oldlsn", {"slotName": "busy", "publicationName": "havepub", "start": {},
                           "lsn": "0/10"}, fragment="is before")  # fmt: skip
    finally:
        conn.execute("SELECT pg_drop_replication_slot('busy') FROM pg_replication_slots"
                     " WHERE slot_name = 'busy'")  # fmt: skip
        conn.close()


def test_job_json_errors_name_their_key() -> None:
    """Bad keys of pgwalreader's block are refused at load time with their JSON path."""
    from coordinator.errors import ConfigError

    base = {"url": "jdbc:postgresql://127.0.0.1:5432/db", "tableList": ["public.t"]}
    cases = [
        ({"lsn": "12/XYZ"}, "reader.parameter.lsn"),
        ({"slotName": "Bad-Name"}, "reader.parameter.slotName"),
        ({"start": {"mode": "lsn"}}, "start.lsn"),
        ({"url": "jdbc:mysql://h:3306/db"}, "reader.parameter.url"),
        ({"cat": "insert,upsert"}, "reader.parameter.cat"),
    ]
    for extra, fragment in cases:
        doc = wal_job("j", {"name": "pgwalreader", "parameter": {**base, **extra}},
                      {"name": "streamwriter", "parameter": {}})  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            build_job(json.loads(json.dumps(doc)))
        assert fragment in str(refused.value), str(refused.value)


def test_wal_changes_reach_kafka_in_debeziums_postgresql_envelope(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """pgwalreader → kafkawriter (debezium): each insert, update and delete once, with the
    PostgreSQL connector's source block (db, schema, table, txId, lsn), read committed."""
    from testkit.kafka import read_topic

    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    conn.execute("ALTER TABLE t REPLICA IDENTITY FULL")
    writer = {"name": "kafkawriter", "parameter": {
        "topic": f"{unique_name}.${{schema}}.${{table}}", "serverName": "pg1"}}  # fmt: skip
    job = wal_job(unique_name, pg_wal_reader(postgres_url, db, ["public.t"]), writer)
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: slot_lsn(postgres_url, f"sluice_{unique_name}".lower()) is not None
                   and running.proc.poll() is None and "writer-0" in running.output(), 60,
                   "the job to start")  # fmt: skip
        conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g")
        conn.execute("UPDATE t SET v = 'u' WHERE id <= 5")
        conn.execute("DELETE FROM t WHERE id > 15")
        records = read_topic(kafka_bootstrap, f"{unique_name}.public.t", 20 + 5 + 5 * 2)
        running.assert_running()
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    ops: dict[int, list[str | None]] = {}
    for key, value in records:
        k = json.loads(key)["id"]
        if value is None:
            ops.setdefault(k, []).append(None)
            continue
        v = json.loads(value)
        src = v["source"]
        assert (src["connector"], src["name"], src["db"], src["schema"], src["table"]) == (
            "postgresql", "pg1", db, "public", "t")  # fmt: skip
        assert isinstance(src["txId"], int) and src["lsn"] > 0
        ops.setdefault(k, []).append(v["op"])
        if v["op"] == "u":
            assert v["before"] == {"id": k, "v": f"v{k}"} and v["after"] == {"id": k, "v": "u"}
    want = {i: ["c"] + (["u"] if i <= 5 else []) + (["d", None] if i > 15 else [])
            for i in range(1, 21)}  # fmt: skip
    assert ops == want


def test_not_null_columns_of_a_default_identity_table_follow_every_change(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """REPLICA IDENTITY DEFAULT and NOT NULL columns: the before images of updates and
    deletes hold only the key, yet every update, key change and delete reaches the target
    (its NOT NULL columns never receive the nulls of a before image)."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    for table in ("src", "dst"):
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, k int NOT NULL, v text NOT NULL)")
    job = wal_job(unique_name, pg_wal_reader(postgres_url, db, ["public.src"]),
                  pg_writer(postgres_url, db, "public.dst"), writers=2)  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: slot_lsn(postgres_url, f"sluice_{unique_name}".lower()) is not None
                   and "writer-1" in running.output(), 60, "the job to start")  # fmt: skip
        conn.execute("INSERT INTO src SELECT g, g % 10, 'v' || g FROM generate_series(1, 300) g")
        conn.execute("UPDATE src SET k = k + 100, v = v || '!' WHERE id % 2 = 0")
        conn.execute("UPDATE src SET id = id + 1000 WHERE id BETWEEN 50 AND 59")
        conn.execute("DELETE FROM src WHERE id % 5 = 0")

        def copied() -> bool:
            running.assert_running()
            rows = "SELECT * FROM {} ORDER BY id"
            return (conn.execute(rows.format("dst")).fetchall()
                    == conn.execute(rows.format("src")).fetchall())  # fmt: skip

        wait_until(copied, 60, "the target to follow")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    conn.close()


def test_schema_changes_evolve_postgresql_targets_of_the_same_names(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Two source tables → ``table: ["dst.*"]`` (targets of the same names in schema dst),
    2 writer channels; in the source an added column, a widened varchar, an int made bigint
    and a dropped NOT NULL column: postgresqlwriter follows each, and every row lands."""
    db = postgres_database
    conn = pg_connect(postgres_url, db)
    conn.execute("CREATE SCHEMA dst")
    for schema in ("public", "dst"):
        conn.execute(f"CREATE TABLE {schema}.a (id int PRIMARY KEY, v varchar(10), n int)")
        conn.execute(f"CREATE TABLE {schema}.b (id int PRIMARY KEY, w text NOT NULL,"
                     " gone int NOT NULL)")  # fmt: skip
    conn.execute("INSERT INTO a SELECT g, 'a' || g, g FROM generate_series(1, 100) g")
    conn.execute("INSERT INTO b SELECT g, 'b' || g, g FROM generate_series(1, 100) g")
    reader = pg_wal_reader(postgres_url, db, ["public.a", "public.b"], start={"mode": "initial"})
    job = wal_job(unique_name, reader, pg_writer(postgres_url, db, "dst.*", writeMode="replace"),
                  writers=2)  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: "writer-1: partitions" in running.output(), 60, "the job to start")
        conn.execute("INSERT INTO a VALUES (101, 'before', 1)")
        conn.execute("ALTER TABLE a ADD COLUMN amount numeric(12,2)")
        conn.execute("ALTER TABLE a ALTER COLUMN v TYPE varchar(40)")
        conn.execute("ALTER TABLE a ALTER COLUMN n TYPE bigint")
        conn.execute("INSERT INTO a VALUES (102, 'after the changes: longer', 9000000000, 1.25)")
        conn.execute("UPDATE a SET amount = id / 8.0 WHERE id <= 20")
        conn.execute("ALTER TABLE b DROP COLUMN gone")
        conn.execute("INSERT INTO b VALUES (101, 'no gone column')")
        conn.execute("UPDATE b SET w = w || '!' WHERE id % 10 = 0")

        def same(table: str, cols: str) -> bool:
            q = f"SELECT {cols} FROM {{}}.{table} ORDER BY id"
            return (conn.execute(q.format("public")).fetchall()
                    == conn.execute(q.format("dst")).fetchall())  # fmt: skip

        def copied() -> bool:
            running.assert_running()
            try:
                return same("a", "id, v, n, amount") and same("b", "id, w")
            except Exception:  # noqa: BLE001 - a column not there yet
                return False

        wait_until(copied, 90, "the dst tables to follow every change")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    types = dict(conn.execute(
        "SELECT column_name, data_type || coalesce('(' || character_maximum_length || ')', '')"
        " FROM information_schema.columns WHERE table_schema = 'dst' AND table_name = 'a'"
    ).fetchall())  # fmt: skip
    assert types == {"id": "integer", "v": "character varying(40)", "n": "bigint",
                     "amount": "numeric"}, types  # fmt: skip
    nullable = conn.execute(
        "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'dst'"
        " AND table_name = 'b' AND column_name = 'gone'"
    ).fetchone()
    assert nullable == ("YES",)  # kept, made NULL-able
    conn.close()


def test_mariadb_tables_created_and_altered_while_running_reach_postgresql(
    postgres_url: str, postgres_database: str, mysql_url: str, mysql_database: str,
    kafka_bootstrap: str, unique_name: str, tmp_path: Path,
) -> None:  # fmt: skip
    """binlogreader (tableRegex) → postgresqlwriter ``table: ["*"]``: a MariaDB table created
    while the job runs is created in PostgreSQL from the neutral types, key included, and an
    added MariaDB column is added there; the rows arrive with their values."""
    from testkit.cdc import cdc_job

    my = mysql_connect(mysql_url, mysql_database)
    execute(my, "CREATE TABLE t1 (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO t1 VALUES (1, 'one'), (2, 'two')")  # fmt: skip
    pg = pg_connect(postgres_url, postgres_database)
    pg.execute("CREATE TABLE t1 (id int PRIMARY KEY, v varchar(20))")
    job = cdc_job(mysql_url, mysql_database, [], mysql_database, "t1", name=unique_name,
                  start={"mode": "initial"}, writers=2,
                  reader_extra={"tableRegex": rf"{mysql_database}\.t\d+"})  # fmt: skip
    job["job"]["content"][0]["writer"] = pg_writer(postgres_url, postgres_database, "*",
                                                   writeMode="replace")  # fmt: skip
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    try:
        wait_until(lambda: pg.execute("SELECT count(*) FROM t1").fetchone() == (2,), 60,
                   "the snapshot")  # then the stream: the DDL below comes through it  # fmt: skip
        execute(
            my,
            "CREATE TABLE t2 (id BIGINT PRIMARY KEY, amount DECIMAL(10,3), at DATETIME(6),"
            " note TEXT)",
            "INSERT INTO t2 VALUES (1, 1.5, '2024-01-02 03:04:05.678901', 'x'), (2, NULL,"
            " NULL, NULL)",
            "ALTER TABLE t1 ADD COLUMN flag TINYINT(1)",
            "INSERT INTO t1 VALUES (3, 'three', 1)",
            "UPDATE t2 SET amount = -2.25 WHERE id = 2",
        )

        def copied() -> bool:
            running.assert_running()
            try:
                t1 = pg.execute("SELECT id, v, flag FROM t1 ORDER BY id").fetchall()
                t2 = pg.execute("SELECT id, amount::text, at::text, note FROM t2 ORDER BY id"
                                ).fetchall()  # fmt: skip
            except Exception:  # noqa: BLE001 - not created yet
                pg.rollback()
                return False
            return t1 == [(1, "one", None), (2, "two", None), (3, "three", True)] and t2 == [
                (1, "1.500", "2024-01-02 03:04:05.678901", "x"), (2, "-2.250", None, None)]  # fmt: skip

        wait_until(copied, 90, "PostgreSQL to have t2 and t1's new column")
    finally:
        code, out = running.stop()
    assert code == 0, out[-3000:]
    key = pg.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 't2'::regclass AND i.indisprimary"
    ).fetchall()
    assert key == [("id",)]
    my.close()
    pg.close()
