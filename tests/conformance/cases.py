"""One case per registered connector: what the conformance suite needs to run it against its
real server. Adding a connector = adding one function here and naming it in SOURCES or SINKS;
`test_every_registered_connector_has_a_case` fails until it is there.

A **source case** is a job whose reader is the connector (the writer is streamwriter, never
run), the rows its source holds (what every part together must read, exactly), and bad
parameters with the JSON path the refusal must name. A **sink case** is a job whose writer
is the connector, a way to read back what the target holds, and, for a two-phase sink, how
its writer dies (what a SIGKILL leaves behind).
"""

from __future__ import annotations

import json
import posixpath
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.events import Op, RowEvent
from schemas.table import TableSchema
from source_connectors.stream import STREAM_TYPES, stream_value
from testkit.alltypes import create_all_types
from testkit.cdc import NON_STRICT, cdc_job, execute
from testkit.mysql import jdbc_url, mysql_connect, mysql_job, mysql_params

Row = tuple[Any, ...]
Mutation = Callable[[dict[str, Any]], None]
STREAM_WRITER = {"name": "streamwriter", "parameter": {}}
GENERATED_ROWS = 300  # plus the 6 edge rows of the all-types table


@dataclass
class SourceCase:
    name: str
    job: dict[str, Any]
    expected: Callable[[], list[Row]]
    """Every row the source holds now, as the reader must hand them over (any order)."""
    endless: bool = False
    bad: list[tuple[Mutation, str]] = field(default_factory=list)
    """(change to the reader's parameter block, what the one-line refusal must contain)."""
    before_read: Callable[[], None] | None = None
    """For a CDC source: the changes to make once a part has read its first batch."""


@dataclass
class SinkCase:
    name: str
    writer: Callable[[TableSchema], dict[str, Any]]
    """The job's writer block (name, parameter) for rows of ``table``; creates the target."""
    read_back: Callable[[TableSchema], list[Row]]
    """What the target holds now, as rows of ``table``'s columns."""
    kill: Callable[[Any], None] = lambda writer: None
    """What a SIGKILL of the writer's process does to its server (cut its connection);
    the default: nothing, the sink's state lives only in the target."""
    two_phase: bool = True
    """Whether the crash-at-every-phase test applies (the sink keeps prepared state)."""
    bad: list[tuple[Mutation, str]] = field(default_factory=list)
    """(change to the writer's parameter block, what the one-line refusal must contain)."""
    all_types: Callable[[], tuple[TableSchema, list[Row]]] | None = None
    """The sink's own family's all-types table (schema, rows) to write, when the MySQL one
    holds values its target types cannot (zero dates in PostgreSQL); None: MySQL's."""


def _reader_job(name: str, reader: dict[str, Any], channels: int = 2) -> dict[str, Any]:
    return {
        "job": {
            "name": name,
            "content": [{"reader": reader, "writer": STREAM_WRITER}],
            "setting": {
                "speed": {"readerChannel": channels, "writerChannel": 1},
                "delivery": "at-least-once",  # streamwriter, never run: the reader is tested
            },
        }
    }


def _mysql_rows(mysql_url: str, db: str, table: str) -> list[Row]:
    """The rows as the MySQL readers' session reads them: TIMESTAMP in UTC, FLOAT widened to
    DOUBLE (the text protocol prints a FLOAT to 6 digits: 0.142857 for the stored
    0.1428571492433548, a different float32)."""
    conn = mysql_connect(mysql_url, db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (db, table),
            )
            select = ", ".join(
                f"CAST(`{name}` AS DOUBLE)" if kind == "float" else f"`{name}`"
                for name, kind in cur.fetchall()
            )
            cur.execute(f"SELECT {select} FROM `{table}`")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _all_types(request: pytest.FixtureRequest) -> tuple[str, str]:
    mysql_url = request.getfixturevalue("mysql_url")
    db = request.getfixturevalue("mysql_database")
    conn = mysql_connect(mysql_url, db)
    try:
        create_all_types(conn, db, "src", GENERATED_ROWS)
    finally:
        conn.close()
    return mysql_url, db


# --- sources ---------------------------------------------------------------------------------


def mysqlreader(request: pytest.FixtureRequest) -> SourceCase:
    mysql_url, db = _all_types(request)
    job = mysql_job(mysql_url, db, "src", "src", name=request.getfixturevalue("unique_name"))
    reader = job["job"]["content"][0]["reader"]  # type: ignore[index]
    reader["parameter"]["fetchSize"] = 40  # many positions per part
    return SourceCase(
        "mysqlreader",
        _reader_job(str(job["job"]["name"]), reader),  # type: ignore[index]
        lambda: _mysql_rows(mysql_url, db, "src"),
        bad=[
            (lambda p: p["connection"][0].update(table=["nope"]), "nope"),
            (lambda p: p.update(splitPk="no_such_column"), "splitPk"),
            (lambda p: p.update(fetchSize="many"), "job.content[0].reader.parameter.fetchSize"),
        ],
    )


def binlogreader(request: pytest.FixtureRequest) -> SourceCase:
    mysql_url, db = _all_types(request)
    name = request.getfixturevalue("unique_name")
    job = cdc_job(mysql_url, db, ["src"], db, "src", name=name, start={"mode": "initial"})
    reader = job["job"]["content"][0]["reader"]
    changes = [
        f"INSERT INTO src (id, vc, dtm) VALUES ({10_000 + i}, 'cdc {i}', NOW(6))" for i in range(12)
    ]

    def write_changes() -> None:
        conn = mysql_connect(mysql_url, db)
        try:
            for sql in changes:  # one transaction each: many binlog positions
                execute(conn, sql)
        finally:
            conn.close()

    reader["parameter"]["fetchSize"] = 100  # several snapshot batches, then one per insert
    return SourceCase(
        "binlogreader",
        _reader_job(name, reader, channels=1),
        lambda: _mysql_rows(mysql_url, db, "src"),  # the snapshot's rows and the inserts
        endless=True,
        before_read=write_changes,
        bad=[
            (lambda p: p.update(start={"mode": "sometime"}), "start"),
            (lambda p: p.update(jdbcUrl="jdbc:mysql://127.0.0.1:1/x"), "127.0.0.1:1"),
        ],
    )


def streamreader(request: pytest.FixtureRequest) -> SourceCase:
    kinds = list(STREAM_TYPES)
    counts = [130, 170]
    reader = {
        "name": "streamreader",
        "parameter": {
            "column": [{"name": f"c_{k}", "type": k} for k in kinds],
            "sliceRecordCount": counts,
            "seed": 3,
        },
    }
    rows = []
    for channel, n_rows in enumerate(counts):
        for n in range(n_rows):
            rng = random.Random(f"3/{channel}/{n}")
            rows.append(tuple(stream_value(k, rng, n * len(counts) + channel) for k in kinds))
    return SourceCase(
        "streamreader",
        _reader_job(request.getfixturevalue("unique_name"), reader, channels=len(counts)),
        lambda: rows,
        bad=[
            (lambda p: p["column"].append({"name": "x", "type": "varchar"}), "column"),
            (lambda p: p.update(sliceRecordCount=-1), "sliceRecordCount"),
        ],
    )


def _pg_all_types(request: pytest.FixtureRequest, rows: int) -> tuple[str, str]:
    from testkit.pgtypes import create_pg_types, fill_pg_types
    from testkit.postgres import pg_connect

    postgres_url = request.getfixturevalue("postgres_url")
    db = request.getfixturevalue("postgres_database")
    conn = pg_connect(postgres_url, db)
    try:
        create_pg_types(conn, "public", "src")
        fill_pg_types(conn, "public", "src", rows)
    finally:
        conn.close()
    return postgres_url, db


def _pg_rows(postgres_url: str, db: str, table: str) -> tuple[TableSchema, list[Row]]:
    """The table and its rows as a Sluice PostgreSQL session reads them (neutral values)."""
    from coordinator.jdbc import parse_jdbc_url
    from coordinator.pg_client import connect, load_table_schema
    from schemas.postgres_types import select_expr
    from testkit.postgres import pg_jdbc_url, pg_params

    p = pg_params(postgres_url)
    url = parse_jdbc_url(pg_jdbc_url(postgres_url, db), "postgresql")
    conn = connect(url, p["user"], p["password"], where="test")
    try:
        schema = load_table_schema(conn, "public", table)
        with conn.cursor() as cur:
            cols = ", ".join(select_expr(c) for c in schema.columns)
            cur.execute(f'SELECT {cols} FROM public."{table}"')
            return schema, [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def postgresqlreader(request: pytest.FixtureRequest) -> SourceCase:
    from testkit.postgres import pg_reader

    postgres_url, db = _pg_all_types(request, GENERATED_ROWS)
    reader = pg_reader(postgres_url, db, "public.src", splitPk="id", fetchSize=40)
    return SourceCase(
        "postgresqlreader",
        _reader_job(request.getfixturevalue("unique_name"), reader),
        lambda: _pg_rows(postgres_url, db, "src")[1],
        bad=[
            (lambda p: p["connection"][0].update(table=["nope"]), "nope"),
            (lambda p: p.update(splitPk="no_such_column"), "splitPk"),
            (lambda p: p.update(fetchSize="many"), "job.content[0].reader.parameter.fetchSize"),
            (lambda p: p["connection"][0].update(jdbcUrl=["jdbc:mysql://h/db"]), "postgresql"),
        ],
    )


def pgwalreader(request: pytest.FixtureRequest) -> SourceCase:
    """The all-types table's snapshot, then copies of its edge rows inserted through the
    WAL one transaction each: every type decoded from pgoutput's text equals what a SELECT
    reads, and a resume in the snapshot takes a new one and skips what it already holds."""
    from testkit.postgres import pg_connect, pg_wal_reader

    postgres_url, db = _pg_all_types(request, GENERATED_ROWS)
    conn = pg_connect(postgres_url, db)
    conn.execute("ALTER TABLE public.src REPLICA IDENTITY FULL")
    conn.close()
    reader = pg_wal_reader(postgres_url, db, ["public.src"], start={"mode": "initial"},
                           fetchSize=100)  # fmt: skip

    def write_changes() -> None:
        conn = pg_connect(postgres_url, db)
        try:
            for i, copied in enumerate([1, 2, 3, 4, 100, 101, 102, 1, 2, 3, 4, 103]):
                conn.execute(  # one transaction each: many WAL positions
                    "INSERT INTO public.src SELECT %s + 0 * id, i2, i4, i8, n102, n, n50, nneg,"
                    " f4, f8, b, vc, ch, tx, by, d, t, t3, tz, ts, ts3, tstz, tstz0, iv, u, j,"
                    " jb, e, ai, atx, an, bt, vb, ip, cid, mac, m, x, pt"
                    " FROM public.src WHERE id = %s",
                    (10_000 + i, copied),
                )
        finally:
            conn.close()

    return SourceCase(
        "pgwalreader",
        _reader_job(request.getfixturevalue("unique_name"), reader, channels=1),
        lambda: _pg_rows(postgres_url, db, "src")[1],
        endless=True,
        before_read=write_changes,
        bad=[
            (lambda p: p.update(tableList=["public.nope"]), "public.nope"),
            (lambda p: p.update(lsn="0/zz"), "job.content[0].reader.parameter.lsn"),
            (lambda p: p.update(temporary=True), "temporary"),
            (lambda p: p.update(url="jdbc:postgresql://127.0.0.1:1/x"), "127.0.0.1:1"),
        ],
    )


SOURCES: dict[str, Callable[[pytest.FixtureRequest], SourceCase]] = {
    "pgwalreader": pgwalreader,
    "mysqlreader": mysqlreader,
    "postgresqlreader": postgresqlreader,
    "binlogreader": binlogreader,
    "streamreader": streamreader,
}


# --- sinks -----------------------------------------------------------------------------------


def _mysql_declaration(table: TableSchema) -> str:
    from schemas.mysql_types import as_mysql

    cols = ", ".join(f"`{c.name}` {as_mysql(c).column_type}" for c in table.columns)
    return f"{cols}, PRIMARY KEY ({', '.join(f'`{k}`' for k in table.primary_key)})"


def mysqlwriter(request: pytest.FixtureRequest) -> SinkCase:
    mysql_url = request.getfixturevalue("mysql_url")
    db = request.getfixturevalue("mysql_database")
    p = mysql_params(mysql_url)

    def writer(table: TableSchema) -> dict[str, Any]:
        conn = mysql_connect(mysql_url, db)
        try:
            execute(conn, f"CREATE TABLE IF NOT EXISTS dst ({_mysql_declaration(table)}) "
                    "DEFAULT CHARSET=utf8mb4")  # fmt: skip
        finally:
            conn.close()
        return {
            "name": "mysqlwriter",
            "parameter": {
                "username": p["user"],
                "password": p["password"],
                "connection": [{"jdbcUrl": jdbc_url(mysql_url, db), "table": ["dst"]}],
                "writeMode": "insert",
                "session": NON_STRICT,  # zero dates and '' ENUMs, as the source holds them
            },
        }

    def kill(w: Any) -> None:
        conn = mysql_connect(mysql_url)
        try:
            execute(conn, f"KILL {w.conn.thread_id()}")  # what the server sees at a SIGKILL
        finally:
            conn.close()

    return SinkCase(
        "mysqlwriter",
        writer,
        lambda table: _mysql_rows(mysql_url, db, "dst"),
        kill=kill,
        bad=[
            (lambda p: p["connection"][0].update(table=["missing"]), "missing"),
            (lambda p: p.update(writeMode="upsert"), "job.content[0].writer.parameter.writeMode"),
            (lambda p: p.update(column=["no_such"]), "no_such"),
        ],
    )


def postgresqlwriter(request: pytest.FixtureRequest) -> SinkCase:
    from testkit.pgtypes import create_pg_types
    from testkit.postgres import pg_connect, pg_writer

    postgres_url, db = _pg_all_types(request, 50)
    conn = pg_connect(postgres_url, db)
    try:
        create_pg_types(conn, "public", "dst", rows=False)
    finally:
        conn.close()

    def kill(w: Any) -> None:
        conn = pg_connect(postgres_url, db)
        try:  # what the server sees at a SIGKILL: the connection ends
            conn.execute("SELECT pg_terminate_backend(%s)", (w.conn.info.backend_pid,))
        finally:
            conn.close()

    return SinkCase(
        "postgresqlwriter",
        lambda table: pg_writer(postgres_url, db, "public.dst"),
        lambda table: _pg_rows(postgres_url, db, "dst")[1],
        kill=kill,
        all_types=lambda: _pg_rows(postgres_url, db, "src"),
        bad=[
            (lambda p: p["connection"][0].update(table=["missing"]), "missing"),
            (lambda p: p.update(writeMode="upsert"), "job.content[0].writer.parameter.writeMode"),
            (lambda p: p.update(column=["no_such"]), "no_such"),
            (lambda p: p.update(schemaChange="drop"), "schemaChange"),
        ],
    )


def hdfswriter(request: pytest.FixtureRequest) -> SinkCase:
    hdfs_url = request.getfixturevalue("hdfs_url")
    name = request.getfixturevalue("unique_name")
    from hdfs import InsecureClient

    client = InsecureClient(hdfs_url, timeout=60)
    path = f"/sluice-conformance/{name}"
    request.addfinalizer(lambda: client.delete(path, recursive=True))

    def writer(table: TableSchema) -> dict[str, Any]:
        return {
            "name": "hdfswriter",
            "parameter": {"defaultFS": hdfs_url, "path": path, "fileType": "avro"},
        }

    def read_back(table: TableSchema) -> list[Row]:
        import io

        from fastavro import reader as avro_reader

        from schemas.avro_types import RowCodec

        codec = RowCodec(table)
        rows: list[Row] = []
        if client.status(path, strict=False) is None:
            return rows
        for root, _dirs, files in client.walk(path):
            rel = posixpath.relpath(root, path)
            if any(part.startswith((".", "_")) for part in rel.split("/") if part != "."):
                continue  # staged, not committed
            for f in files:
                if f.startswith((".", "_")):
                    continue
                with client.read(posixpath.join(root, f)) as r:
                    data = r.read()
                rows.extend(codec.from_avro(rec) for rec in avro_reader(io.BytesIO(data)))
        return rows

    return SinkCase(
        "hdfswriter",
        writer,
        read_back,
        # At a SIGKILL its open uploads end with the process: close() ends them the same way
        # (staged, never renamed; recover() deletes them). Left open, they outlive the test.
        kill=lambda w: w.close(),
        bad=[
            (lambda p: p.update(fileType="csv"), "job.content[0].writer.parameter.fileType"),
            (lambda p: p.update(path="relative/dir"), "path"),
        ],
    )


def kafkawriter(request: pytest.FixtureRequest) -> SinkCase:
    # kafkawriter hands its records to the runner, which produces them inside the
    # checkpoint's Kafka transaction: its phases are Kafka's, covered by tests/unit/
    # test_protocol.py and tests/integration/test_kafka_sink.py.
    return SinkCase(
        "kafkawriter",
        lambda table: {"name": "kafkawriter", "parameter": {"topic": "conformance"}},
        lambda table: [],
        two_phase=False,
        bad=[
            (lambda p: p.update(format="xml"), "job.content[0].writer.parameter.format"),
            (lambda p: p.pop("topic"), "topic"),
        ],
    )


def streamwriter(request: pytest.FixtureRequest) -> SinkCase:
    return SinkCase(
        "streamwriter",
        lambda table: {"name": "streamwriter", "parameter": {"print": False}},
        lambda table: [],
        two_phase=False,  # at-least-once: nothing prepared to resolve
        bad=[(lambda p: p.update(format="yaml"), "job.content[0].writer.parameter.format")],
    )


SINKS: dict[str, Callable[[pytest.FixtureRequest], SinkCase]] = {
    "mysqlwriter": mysqlwriter,
    "postgresqlwriter": postgresqlwriter,
    "hdfswriter": hdfswriter,
    "kafkawriter": kafkawriter,
    "streamwriter": streamwriter,
}


def event_rows(events: list[RowEvent]) -> list[Row]:
    out = []
    for ev in events:
        assert ev.op in (Op.SNAPSHOT, Op.INSERT), ev
        assert ev.after is not None
        out.append(tuple(ev.after))
    return out


def json_copy(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(doc))
    return result
