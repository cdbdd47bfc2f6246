"""MySQL → Kafka → HDFS (``hdfswriter``) through real MariaDB, Kafka and HDFS (issue 7).

Each job copies the all-types table, then every final file is read back from HDFS and its
rows are compared with the source's: text files line by line against the canonical Hive text
rendering of the source rows, Avro files key by key against the source values (Avro keeps
the exact types). Nothing missing, nothing duplicated; no in-progress file or manifest left;
and a listing taken while the job runs never shows a file that later grows or disappears.

Crash tests kill writer tasks at the two-phase commit's critical points (``SLUICE_FAULTS``)
and check the same; ``recover`` is also driven directly with a simulated earlier incarnation.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader as avro_reader

from coordinator.connectors import build_sink
from coordinator.errors import SluiceError
from coordinator.job import build_job
from coordinator.local.stack import LocalStack
from coordinator.local_run import LocalJobRunner
from schemas.avro_types import RowCodec, shortest_float32
from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import load_table_schema
from schemas.table import Column, TableSchema
from sink_connectors.hdfs import names
from sink_connectors.hdfs.formats import TextRenderer
from testkit.alltypes import create_all_types
from testkit.mysql import jdbc_url, mysql_connect, mysql_params

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW = os.environ.get("SLUICE_SLOW") == "1"
ROWS = 500_000 if SLOW else 50_000
EDGE_ROWS = 6


# -- HDFS helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hdfs_client(hdfs_url: str) -> Any:
    from hdfs import InsecureClient

    return InsecureClient(hdfs_url, timeout=60)


@pytest.fixture
def hdfs_dir(hdfs_client: Any, unique_name: str) -> Iterator[str]:
    path = f"/sluice-tests/{unique_name}"
    yield path
    hdfs_client.delete(path, recursive=True)


def is_hidden(path: str, root: str) -> bool:
    rel = posixpath.relpath(path, root)
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def list_files(client: Any, root: str) -> dict[str, int]:
    """Every file under ``root`` (hidden ones included) with its size."""
    out: dict[str, int] = {}
    if client.status(root, strict=False) is None:
        return out
    for directory, _dirs, files in client.walk(root, status=True):
        for name, status in files:
            out[posixpath.join(directory[0], name)] = status["length"]
    return out


def visible_files(client: Any, root: str) -> dict[str, int]:
    return {p: size for p, size in list_files(client, root).items() if not is_hidden(p, root)}


def read_bytes(client: Any, path: str) -> bytes:
    with client.read(path) as r:
        return bytes(r.read())


class ListingWatcher:
    """Lists the target every 100 ms while a job runs and remembers every visible file's
    size: a file that is visible must already be complete, so the size may never change."""

    def __init__(self, client: Any, root: str) -> None:
        self.client, self.root = client, root
        self.seen: dict[str, int] = {}
        self.changed: list[str] = []
        self.listings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ListingWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                files = visible_files(self.client, self.root)
            except Exception:  # a directory renamed or deleted mid-walk: list again
                continue
            self.listings += 1
            for path, size in files.items():
                if self.seen.setdefault(path, size) != size:
                    self.changed.append(path)
            time.sleep(0.1)

    def assert_never_partial(self, final: dict[str, int]) -> None:
        assert self.listings > 0
        assert not self.changed, f"visible files changed size: {self.changed[:5]}"
        vanished = sorted(set(self.seen) - set(final))
        assert not vanished, f"visible files disappeared: {vanished[:5]}"
        grew = [p for p, size in self.seen.items() if final[p] != size]
        assert not grew, f"visible files grew after they appeared: {grew[:5]}"


def assert_no_leftovers(client: Any, root: str) -> None:
    hidden = sorted(p for p in list_files(client, root) if is_hidden(p, root))
    assert hidden == [], f"in-progress files or manifests left behind: {hidden[:10]}"


# -- source rows ----------------------------------------------------------------------------
def source_rows(conn: Any, db: str, table: str) -> tuple[TableSchema, dict[int, tuple]]:
    """The rows as the reader reads them: FLOAT widened to DOUBLE then shortened (as the
    Avro codec does), TIMESTAMP in UTC."""
    schema = load_table_schema(conn, db, table)
    floats = [i for i, c in enumerate(schema.columns) if c.data_type == "float"]
    select = ", ".join(
        f"CAST(`{c.name}` AS DOUBLE)" if c.data_type == "float" else f"`{c.name}`"
        for c in schema.columns
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"SELECT {select} FROM `{db}`.`{table}`")
        rows = cur.fetchall()
    out = {}
    for row in rows:
        values = list(row)
        for i in floats:
            if values[i] is not None:
                values[i] = shortest_float32(values[i])
        out[values[0]] = tuple(values)
    return schema, out


def hdfs_job(
    mysql_url: str,
    db: str,
    name: str,
    hdfs_url: str,
    path: str,
    writer: dict[str, Any],
    channel: int = 2,
) -> dict[str, Any]:
    p = mysql_params(mysql_url)
    return {
        "job": {
            "name": name,
            "content": [
                {
                    "reader": {
                        "name": "mysqlreader",
                        "parameter": {
                            "username": p["user"],
                            "password": p["password"],
                            "connection": [
                                {"jdbcUrl": [jdbc_url(mysql_url, db)], "table": ["src"]}
                            ],
                            "column": ["*"],
                            "splitPk": "id",
                            "fetchSize": 2000,
                        },
                    },
                    "writer": {
                        "name": "hdfswriter",
                        "parameter": {"defaultFS": hdfs_url, "path": path} | writer,
                    },
                }
            ],
            "setting": {
                "speed": {"channel": channel},
                "restore": {"checkpointInterval": 1000, "maxRestarts": 10},
            },
        }
    }


@pytest.fixture
def all_types(mysql_url: str, mysql_database: str) -> Iterator[tuple[Any, str]]:
    conn = mysql_connect(mysql_url, mysql_database)
    create_all_types(conn, mysql_database, "src", ROWS)
    yield conn, mysql_database
    conn.close()


def diff_keys(expected: dict[Any, Any], actual: dict[Any, Any]) -> dict[str, list[Any]]:
    return {
        "missing": sorted(set(expected) - set(actual))[:20],
        "extra": sorted(set(actual) - set(expected))[:20],
        "changed": sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])[
            :20
        ],
    }


# -- the tests ------------------------------------------------------------------------------
def test_text_gzip_partitioned_copies_every_row_exactly_once(
    all_types, mysql_url, kafka_bootstrap, hdfs_url, hdfs_client, hdfs_dir, unique_name
):
    conn, db = all_types
    writer = {
        "fileType": "text",
        "compress": "GZIP",
        "fileName": "pt=1",
        "partition": "table,date",
        "maxFileSize": 2_000_000,  # several rolled files per transaction
        "writeMode": "overwrite",
    }
    job = build_job(hdfs_job(mysql_url, db, unique_name, hdfs_url, hdfs_dir, writer))
    started = time.monotonic()
    with ListingWatcher(hdfs_client, hdfs_dir) as watcher:
        summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    elapsed = time.monotonic() - started
    assert summary.status == "finished"
    assert summary.numWrite == ROWS + EDGE_ROWS

    final = visible_files(hdfs_client, hdfs_dir)
    watcher.assert_never_partial(final)
    assert_no_leftovers(hdfs_client, hdfs_dir)
    assert all(p.startswith(f"{hdfs_dir}/pt=1/table=src/dt=") for p in final)
    assert all(posixpath.basename(p).endswith(".txt.gz") for p in final)
    assert len(final) > 2, "maxFileSize should have rolled files"

    lines: list[str] = []
    for path in final:
        lines += gzip.decompress(read_bytes(hdfs_client, path)).decode("utf-8").splitlines()
    _schema, rows = source_rows(conn, db, "src")
    renderer = TextRenderer("\x01")
    expected = Counter(renderer.line(row).rstrip("\n") for row in rows.values())
    actual = Counter(lines)
    ids = Counter(int(line.split("\x01", 1)[0]) for line in lines)
    duplicated = sorted(i for i, n in ids.items() if n > 1)[:20]
    assert duplicated == [], f"rows written twice: {duplicated}"
    assert sorted(set(rows) - set(ids))[:20] == [], "rows missing"
    assert actual == expected, f"{len(actual - expected)} lines differ from the source rendering"
    print(f"\ntext: {len(lines)} rows, {len(final)} files, {len(lines) / elapsed:,.0f} rows/s")


def test_avro_files_keep_every_value_exact(
    all_types, mysql_url, kafka_bootstrap, hdfs_url, hdfs_client, hdfs_dir, unique_name
):
    conn, db = all_types
    writer = {"fileType": "avro", "compress": "deflate", "maxFileSize": 4_000_000}
    job = build_job(hdfs_job(mysql_url, db, unique_name, hdfs_url, hdfs_dir, writer, channel=3))
    started = time.monotonic()
    with ListingWatcher(hdfs_client, hdfs_dir) as watcher:
        summary = LocalJobRunner(job, kafka_bootstrap, quiet=True).run()
    elapsed = time.monotonic() - started
    assert summary.status == "finished"

    final = visible_files(hdfs_client, hdfs_dir)
    watcher.assert_never_partial(final)
    assert_no_leftovers(hdfs_client, hdfs_dir)
    schema, rows = source_rows(conn, db, "src")
    codec = RowCodec(schema)
    written: dict[int, tuple] = {}
    duplicated = []
    for path in final:
        assert posixpath.dirname(path) == hdfs_dir and path.endswith(".avro")
        for record in avro_reader(io.BytesIO(read_bytes(hdfs_client, path))):
            values = codec.from_avro(record)
            if values[0] in written:
                duplicated.append(values[0])
            written[values[0]] = values
    assert duplicated == [], f"rows written twice: {duplicated[:20]}"
    assert diff_keys(rows, written) == {"missing": [], "extra": [], "changed": []}
    print(f"\navro: {len(written)} rows, {len(final)} files, {len(written) / elapsed:,.0f} rows/s")


CRASH_ROWS = 20_000


@pytest.mark.chaos
# The commit protocol does not depend on the file type; make test runs it once.
@pytest.mark.parametrize(
    "file_type",
    ["text", pytest.param("avro", marks=pytest.mark.skipif(not SLOW, reason="SLUICE_SLOW=1"))],
)
def test_writer_crashes_at_each_commit_phase_lose_and_duplicate_nothing(
    mysql_url,
    mysql_database,
    kafka_bootstrap,
    hdfs_url,
    hdfs_client,
    hdfs_dir,
    unique_name,
    file_type,
    monkeypatch,
):
    """writer-0 dies after a pre-commit (manifest written, Kafka not committed: its files must
    be deleted), writer-1 after a Kafka commit (its files must be renamed on restart), writer-2
    mid-transaction (in-progress files without a manifest: deleted)."""
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(20,4))"
        )
        cur.execute(
            "INSERT INTO src SELECT seq, CONCAT('name-', seq, IF(seq % 7 = 0, ' 😀', '')),"
            f" seq * 1.0001 FROM seq_1_to_{CRASH_ROWS}"
        )
    # The first pre-commit / Kafka commit of a writer may well be the final one: the readers
    # read this table in about a second.
    monkeypatch.setenv(
        "SLUICE_FAULTS",
        "writer-0:after_prepare:1,writer-1:after_kafka_commit:1,writer-2:mid_write:2",
    )
    job_doc = hdfs_job(
        mysql_url,
        mysql_database,
        unique_name,
        hdfs_url,
        hdfs_dir,
        {"fileType": file_type},
        channel=3,
    )
    summary = LocalJobRunner(build_job(job_doc), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished"
    assert summary.restarts >= 3, "every injected fault must have fired and been survived"
    assert_no_leftovers(hdfs_client, hdfs_dir)
    ids: Counter[int] = Counter()
    for path in visible_files(hdfs_client, hdfs_dir):
        data = read_bytes(hdfs_client, path)
        if file_type == "avro":
            ids.update(r["id"] for r in avro_reader(io.BytesIO(data)))
        else:
            ids.update(int(line.split("\x01", 1)[0]) for line in data.decode().splitlines())
    missing = sorted(set(range(1, CRASH_ROWS + 1)) - set(ids))
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    assert (missing[:20], duplicated[:20]) == ([], []), (
        f"{len(missing)} missing, {len(duplicated)} duplicated"
    )
    conn.close()


def direct_sink(hdfs_url: str, hdfs_dir: str, **writer: Any) -> Any:
    """An hdfswriter sink built from a job, for driving its writer directly."""
    stream = {"column": [{"name": "id", "type": "id"}], "sliceRecordCount": 1}
    parameter = {"defaultFS": hdfs_url, "path": hdfs_dir} | writer
    return build_sink(
        build_job(
            {
                "job": {
                    "content": [
                        {
                            "reader": {"name": "streamreader", "parameter": stream},
                            "writer": {"name": "hdfswriter", "parameter": parameter},
                        }
                    ]
                }
            }
        )
    )


def test_a_commit_that_fails_midway_is_finished_by_recover_never_undone(
    hdfs_url, hdfs_client, hdfs_dir, monkeypatch
):
    """Once Kafka committed, abort() must not delete the transaction's files even when the
    renames failed halfway (HDFS went away): the next incarnation's recover renames the rest."""
    from hdfs.util import HdfsError

    table = TableSchema("db", "t", (Column("id", "bigint", "bigint(20)", nullable=False),))
    events = [
        RowEvent(Op.SNAPSHOT, table, None, (i,), SourcePosition("reader-0", seq=i), 0)
        for i in range(10)
    ]
    sink = direct_sink(hdfs_url, hdfs_dir, maxFileSize=1)  # one file per write()
    sink.prepare_target()
    writer = sink.build_writer("writer-0")
    txn = "sl-test-writer-0-0001"
    writer.recover("sl-test-writer-0-", lambda t: False)
    writer.begin(txn)
    writer.write(events[:5])
    writer.write(events[5:])
    writer.pre_commit(txn, {"topic:0": 10})
    renames = 0
    real_rename = writer.client.rename

    def rename_once_then_fail(src: str, dst: str) -> None:
        nonlocal renames
        renames += 1
        if renames > 1:
            raise HdfsError("simulated: NameNode went away")
        real_rename(src, dst)

    monkeypatch.setattr(writer.client, "rename", rename_once_then_fail)
    with pytest.raises(SluiceError):
        writer.commit(txn)
    writer.abort()  # what the runner does when commit raised
    assert len(visible_files(hdfs_client, hdfs_dir)) == 1
    monkeypatch.undo()
    again = sink.build_writer("writer-0")
    assert again.recover("sl-test-writer-0-", lambda t: t == txn) == [(txn, True)]
    final = visible_files(hdfs_client, hdfs_dir)
    lines = sorted(int(line) for p in final for line in read_bytes(hdfs_client, p).split())
    assert (len(final), lines) == (2, list(range(10)))
    assert_no_leftovers(hdfs_client, hdfs_dir)


def test_recover_finishes_committed_and_deletes_undecided_transactions(
    hdfs_url, hdfs_client, hdfs_dir
):
    """A simulated earlier incarnation of writer-0 left: a manifest of a committed txn (one
    file already renamed, one not), a manifest of an uncommitted txn, in-progress files of a
    txn that never reached pre-commit, a half-written manifest, and files of writer-1."""
    sink = direct_sink(hdfs_url, hdfs_dir)
    staging = names.staging_dir(hdfs_dir)
    prefix, other = "sl-test-writer-0-", "sl-test-writer-1-"

    def inprogress(txn: str, n: int, body: bytes) -> dict[str, Any]:
        path = f"{staging}/{names.inprogress_name(txn, n)}"
        hdfs_client.write(path, data=body)
        final = f"{hdfs_dir}/{names.final_name('part', txn, n, '.txt')}"
        return {"inprogress": path, "final": final, "size": len(body), "rows": 1}

    def manifest(txn: str, files: list[dict[str, Any]], suffix: str = "") -> None:
        doc = {"txn": txn, "task": "writer-0", "offsets": {}, "files": files}
        hdfs_client.write(f"{staging}/{names.manifest_name(txn)}{suffix}", data=json.dumps(doc))

    done = [inprogress(prefix + "aa", 0, b"a0\n"), inprogress(prefix + "aa", 1, b"a1\n")]
    hdfs_client.makedirs(hdfs_dir)
    hdfs_client.rename(done[0]["inprogress"], done[0]["final"])  # crashed mid-commit
    manifest(prefix + "aa", done)
    undecided = [inprogress(prefix + "bb", 0, b"b0\n")]
    manifest(prefix + "bb", undecided)
    orphan = inprogress(prefix + "cc", 0, b"c0\n")
    half = inprogress(prefix + "dd", 0, b"d0\n")
    manifest(prefix + "dd", [half], suffix=names.TMP_SUFFIX)
    foreign = inprogress(other + "ee", 0, b"e0\n")
    manifest(other + "ee", [foreign])

    writer = sink.build_writer("writer-0")
    resolved = writer.recover(prefix, lambda txn: txn == prefix + "aa")
    assert sorted(resolved) == [(prefix + "aa", True), (prefix + "bb", False)]
    assert {p: read_bytes(hdfs_client, p) for p in visible_files(hdfs_client, hdfs_dir)} == {
        done[0]["final"]: b"a0\n",
        done[1]["final"]: b"a1\n",
    }
    left = sorted(posixpath.basename(p) for p in list_files(hdfs_client, staging))
    assert left == sorted(
        [names.inprogress_name(other + "ee", 0), names.manifest_name(other + "ee")]
    ), "only writer-1's files may remain"
    assert not any(orphan["inprogress"] == p for p in list_files(hdfs_client, staging))
    # Recovering again finds nothing: recovery is idempotent.
    assert writer.recover(prefix, lambda txn: True) == []


def test_local_status_reports_hdfs_healthy(hdfs_url: str) -> None:
    stack = LocalStack.from_env(root=REPO_ROOT, with_hdfs=True)
    if stack.hdfs.running_pid() is None or stack.hdfs.url != hdfs_url:
        pytest.skip(f"HDFS at {hdfs_url} is not the local launcher's")
    result = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "local", "status", "--with-hdfs"]
        + ["--state-dir", str(stack.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    hdfs_line = next(line for line in result.stdout.splitlines() if line.startswith("hdfs"))
    assert "ok: wrote, read back and deleted" in hdfs_line, result.stdout


def test_unreachable_webhdfs_is_one_line_naming_default_fs(
    mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    """The user's path: `sluice run` fails before anything is read or written."""
    conn = mysql_connect(mysql_url, mysql_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE src (id BIGINT PRIMARY KEY, name VARCHAR(20))")
        cur.execute("INSERT INTO src VALUES (1, 'a')")
    conn.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = hdfs_job(mysql_url, mysql_database, unique_name, f"http://127.0.0.1:{port}", "/x", {})
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "run", str(path), "-q"]
        + ["--bootstrap-servers", kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if "defaultFS" in line]
    assert len(lines) == 1, out.stderr[-2000:]
    assert (
        f"job.content[0].writer.parameter.defaultFS: WebHDFS at http://127.0.0.1:{port}"
        in (lines[0])
    )
    assert "Traceback" not in out.stderr


def test_postgresql_rows_land_in_avro_files_exactly(
    postgres_url, postgres_database, kafka_bootstrap, hdfs_url, hdfs_client, hdfs_dir, unique_name
):
    """PostgreSQL's all-types table → hdfswriter Avro: every value read back from the files
    equals what a SELECT reads (the neutral types carry PostgreSQL to any sink)."""
    from testkit.pgtypes import create_pg_types, fill_pg_types
    from testkit.postgres import pg_connect, pg_reader
    from tests.conformance.cases import _pg_rows

    conn = pg_connect(postgres_url, postgres_database)
    create_pg_types(conn, "public", "src")
    fill_pg_types(conn, "public", "src", 300)
    conn.close()
    doc = {
        "job": {
            "name": unique_name,
            "content": [{
                "reader": pg_reader(postgres_url, postgres_database, "public.src", splitPk="id"),
                "writer": {"name": "hdfswriter", "parameter": {
                    "defaultFS": hdfs_url, "path": hdfs_dir, "fileType": "avro"}},
            }],
            "setting": {"speed": {"readerChannel": 2, "writerChannel": 2}},
        }
    }  # fmt: skip
    summary = LocalJobRunner(build_job(doc), kafka_bootstrap, quiet=True).run()
    assert summary.status == "finished"
    schema, rows = _pg_rows(postgres_url, postgres_database, "src")
    codec = RowCodec(schema)
    written = [
        codec.from_avro(record)
        for path in visible_files(hdfs_client, hdfs_dir)
        for record in avro_reader(io.BytesIO(read_bytes(hdfs_client, path)))
    ]
    from tests.conformance.test_conformance import assert_same_rows

    assert len(written) == len(rows) == 304
    assert_same_rows(written, rows, schema)
