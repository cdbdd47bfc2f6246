"""Workers (issue 6) against real Kafka and MariaDB: three ``sluice worker`` processes share a
binlog job and a batch job (3 writer channels each); one worker is SIGKILLed mid-stream,
another SIGSTOPped (a zombie) until its tasks moved, then woken. The targets have no unique
key on ``id`` and take plain INSERTs, so a row applied twice would show as a second row; the
checks list missing, duplicated and changed ids, and all must be empty. The zombie's late
commits are fenced (its log says so) and none of them reached the targets."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from testkit.cdc import binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_job
from testkit.wait import wait_until
from tests.integration.test_worker_support import (
    REPO_ROOT,
    WorkerProc,
    http,
    job_status,
    wait_for_group,
)

pytestmark = pytest.mark.integration

BATCH_ROWS = 10_000


def differences(conn, db: str, src: str, dst: str) -> dict[str, list[int]]:
    q = f"`{db}`"
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT s.id FROM {q}.{src} s LEFT JOIN {q}.{dst} d ON d.id = s.id "
            "WHERE d.id IS NULL ORDER BY 1 LIMIT 50"
        )
        missing = [r[0] for r in cur.fetchall()]
        cur.execute(f"SELECT id FROM {q}.{dst} GROUP BY id HAVING COUNT(*) > 1 ORDER BY 1 LIMIT 50")
        duplicated = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"SELECT d.id FROM {q}.{dst} d LEFT JOIN {q}.{src} s ON s.id = d.id "
            "WHERE s.id IS NULL OR NOT (s.v <=> d.v AND s.n <=> d.n) ORDER BY 1 LIMIT 50"
        )
        changed = [r[0] for r in cur.fetchall()]
    return {"missing": missing, "duplicated": duplicated, "changed": changed}


def counts(conn, db: str, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.{table}")
        return int(cur.fetchone()[0])


def counts_where(conn, db: str, table: str, where: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.{table} WHERE {where}")
        return int(cur.fetchone()[0])


class Workload:
    """Inserts and updates on the binlog source from a thread, until stopped."""

    def __init__(self, mysql_url: str, db: str) -> None:
        self.conn = mysql_connect(mysql_url, db)
        self.stop = threading.Event()
        self.next_id = 1
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            ids = range(self.next_id, self.next_id + 20)
            self.next_id += 20
            execute(
                self.conn,
                "INSERT INTO csrc VALUES " + ",".join(f"({i}, 'v{i}', 0)" for i in ids),
                f"UPDATE csrc SET n = n + 1, v = CONCAT(v, 'u') WHERE id % 7 = {self.next_id % 7}"
                f" AND id > {max(0, self.next_id - 400)}",
            )
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.conn.close()


@pytest.fixture
def workers(kafka_bootstrap: str, unique_name: str, mysql_database: str, tmp_path: Path):
    # Depends on mysql_database so the workers (and any stopped zombie holding locks) are
    # killed before the database is dropped.
    started: list[WorkerProc] = []

    def start(n: int) -> list[WorkerProc]:
        new = [
            WorkerProc(unique_name, kafka_bootstrap, tmp_path / f"worker{len(started) + i}.log")
            for i in range(n)
        ]
        started.extend(new)
        wait_for_group(started)
        return new

    yield start
    for w in started:
        w.kill()


def make_tables(conn, db: str) -> None:
    execute(
        conn,
        f"CREATE TABLE `{db}`.csrc (id BIGINT PRIMARY KEY, v VARCHAR(400), n INT)",
        # No unique key on id in the targets: a duplicate stays visible.
        f"CREATE TABLE `{db}`.cdst (id BIGINT NOT NULL, v VARCHAR(400), n INT, KEY (id))",
        f"CREATE TABLE `{db}`.bsrc (id BIGINT PRIMARY KEY, v VARCHAR(400), n INT)",
        f"INSERT INTO `{db}`.bsrc SELECT seq, CONCAT('b', seq), seq % 100 "
        f"FROM `{db}`.seq_1_to_{BATCH_ROWS}",
        f"CREATE TABLE `{db}`.bdst (id BIGINT NOT NULL, v VARCHAR(400), n INT, KEY (id))",
    )


def test_three_workers_survive_a_kill_and_a_zombie(
    workers, mysql_url, mysql_database, kafka_bootstrap, unique_name, tmp_path
):
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    make_tables(conn, db)
    cdc = cdc_job(
        mysql_url,
        db,
        ["csrc"],
        db,
        "cdst",
        name=f"{unique_name}_cdc",
        start=binlog_position(conn),
        writers=3,
    )
    batch = mysql_job(
        mysql_url,
        db,
        "bsrc",
        "bdst",
        name=f"{unique_name}_batch",
        channel=3,
        writer_extra={"column": ["id", "v", "n"], "batchSize": 500},
        setting_extra={"restore": {"checkpointInterval": 500}},
    )
    w = workers(3)
    # One job through the REST API, one through the CLI.
    code, body = http("POST", w[0].url + "/jobs", cdc)
    assert code == 201, body
    job_file = tmp_path / "batch.json"
    job_file.write_text(__import__("json").dumps(batch))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "submit",
            str(job_file),
            "--group",
            unique_name,
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    load = Workload(mysql_url, db)
    try:
        names = [f"{unique_name}_cdc", f"{unique_name}_batch"]
        wait_until(lambda: counts(conn, db, "cdst") > 0, 60, "the binlog job to apply rows")

        def owners() -> dict[str, str | None]:
            """Owner of each task still to run (a finished task stays with its last owner)."""
            out = {}
            for name in names:
                status = job_status(survivor_url[0], name)
                for t in status["tasks"]:
                    if status["finished"] or t["state"] == "FINISHED":
                        continue
                    out[f"{name}/{t['task']}"] = t["worker"] if t["state"] != "UNASSIGNED" else None
            return out

        survivor_url = [w[0].url]

        # The zombie owns the binlog reader, which commits every 0.25 s, so its first
        # commit after waking meets the fence; the victim is the busier of the other two.
        before = owners()
        by_worker = {p: [t for t, o in before.items() if p.owns(o)] for p in w}
        zombie = next(p for p in w if p.owns(before[f"{names[0]}/reader-0"]))
        victim, survivor = sorted(
            (p for p in w if p is not zombie), key=lambda p: -len(by_worker[p])
        )
        print(f"{time.strftime('%X')} kill {victim.pid}, zombie {zombie.pid}", flush=True)
        survivor_url[0] = survivor.url
        victim.signal_group(signal.SIGKILL)
        time.sleep(1.0)
        zombie.signal_group(signal.SIGSTOP)

        def moved() -> bool:
            now = owners()
            return all(o is not None and survivor.owns(o) for o in now.values())

        wait_until(moved, 60, "every task to move to the surviving worker")
        print(f"{time.strftime('%X')} all tasks moved", flush=True)

        # The new binlog reader runs — past init_transactions, which fenced the zombie's
        # producer — once it reports rows read. (Its writers may wait: the zombie's open XA
        # transactions hold row locks until it wakes up and rolls them back.)
        def new_reader_reads() -> bool:
            t = next(
                t for t in job_status(survivor.url, names[0])["tasks"] if t["task"] == "reader-0"
            )
            return survivor.owns(t["worker"]) and t["rows"] > 0

        wait_until(new_reader_reads, 60, "the binlog reader to read on its new owner")
        zombie.signal_group(signal.SIGCONT)
        time.sleep(3.0)
    finally:
        load.finish()
    print(f"{time.strftime('%X')} workload done", flush=True)
    wait_until(
        lambda: (
            differences(conn, db, "csrc", "cdst")
            == {"missing": [], "duplicated": [], "changed": []}
        ),
        60,
        f"binlog target == source ({differences(conn, db, 'csrc', 'cdst')})",
    )
    wait_until(
        lambda: job_status(survivor.url, names[1])["finished"], 60, "the batch job to finish"
    )
    assert differences(conn, db, "bsrc", "bdst") == {"missing": [], "duplicated": [], "changed": []}
    assert counts(conn, db, "bdst") == BATCH_ROWS
    # Still exact a little later: no late commit of the zombie slipped in.
    time.sleep(2.0)
    assert differences(conn, db, "csrc", "cdst") == {"missing": [], "duplicated": [], "changed": []}
    assert counts(conn, db, "cdst") == counts(conn, db, "csrc")
    zombie_log = zombie.output()
    assert "lost slots" in zombie_log or "revoked slots" in zombie_log, zombie_log[-3000:]
    assert "fenced" in zombie_log.lower(), zombie_log[-3000:]
    with conn.cursor() as cur:
        cur.execute("XA RECOVER")
        assert cur.fetchall() == ()
    conn.close()
