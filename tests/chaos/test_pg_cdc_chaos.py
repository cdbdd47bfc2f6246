"""PostgreSQL CDC under crashes (issue 16): pgbench's load captured by ``pgwalreader``
(``initial``) into ``postgresqlwriter`` (3 channels, ``table: ["dst.*"]``) while the reader is
SIGKILLed inside a Kafka transaction, each writer at another commit phase (rows written,
prepared, Kafka committed), and the broker is SIGKILLed and kept down for 8 s (with ``SLUICE_CHAOS_LONG=1``, ``make chaos``: until issue
19's faster recovery lands, a broker restart costs a 45 s commit watchdog, and the runner's
broker handling is the same for every source, killed in make test by test_exactly_once.py).
After the load:
every pgbench table in ``dst`` equals its source and nothing is left prepared. (That the
slot does not move before the commit covering it: tests/integration/test_pgwal.py.)"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testkit.cdc import RunningJob
from testkit.postgres import pg_connect, pg_params, pg_wal_reader, pg_writer, prepared
from testkit.wait import wait_until
from tests.chaos.test_exactly_once import kill_and_restart_broker, local_kafka

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

LONG = os.environ.get("SLUICE_CHAOS_LONG") == "1"
FAULTS = "reader-0:mid_txn:40,writer-0:mid_write:5,writer-1:after_prepare:4,writer-2:after_kafka_commit:4"
TABLES = {
    "pgbench_accounts": "aid, bid, abalance",
    "pgbench_branches": "bid, bbalance",
    "pgbench_tellers": "tid, bid, tbalance",
    "pgbench_history": "hid, tid, bid, aid, delta, mtime",
}


def test_pgbench_cdc_survives_task_and_broker_kills(
    postgres_url: str, postgres_database: str, kafka_bootstrap: str, unique_name: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    db = postgres_database
    p = pg_params(postgres_url)
    env = {**os.environ, "PGPASSWORD": p["password"]}
    bench = ["pgbench", "-h", p["host"], "-p", str(p["port"]), "-U", p["user"]]
    subprocess.run([*bench, "-i", "-s", "1", "-q", db], check=True, env=env, capture_output=True)
    pg = pg_connect(postgres_url, db)
    pg.execute("ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY")
    pg.execute("CREATE SCHEMA dst")
    for table in TABLES:
        pg.execute(f"CREATE TABLE dst.{table} (LIKE public.{table} INCLUDING ALL)")
    reader = pg_wal_reader(postgres_url, db, [f"public.{t}" for t in TABLES],
                           start={"mode": "initial"}, fetchSize=5000)  # fmt: skip
    job = {"job": {
        "name": unique_name,
        "content": [{"reader": reader, "writer": pg_writer(postgres_url, db, "dst.*",
                                                           writeMode="replace")}],
        "setting": {"speed": {"readerChannel": 1, "writerChannel": 3},
                    "restore": {"checkpointInterval": 500, "maxRestarts": 20}},
    }}  # fmt: skip
    broker = local_kafka(kafka_bootstrap) if LONG else None
    monkeypatch.setenv("SLUICE_FAULTS", FAULTS)
    running = RunningJob(job, tmp_path / "job.json", kafka_bootstrap)
    monkeypatch.delenv("SLUICE_FAULTS")
    load_out: list[subprocess.CompletedProcess[str]] = []

    def load() -> None:
        load_out.append(subprocess.run([*bench, "-c", "4", "-j", "2", "-T", "12", "-n", db],
                                       env=env, capture_output=True, text=True))  # fmt: skip

    try:
        wait_until(lambda: "writer-2: partitions" in running.output(), 60, "the job to start")
        loader = threading.Thread(target=load)
        loader.start()
        if broker is not None:
            time.sleep(6)
            kill_and_restart_broker(*broker, down_s=8)
        loader.join(60)
        assert load_out and load_out[0].returncode == 0, (
            load_out[0].stderr[-2000:] if load_out else ""
        )
        pg.execute(
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 0, now())"
        )

        def differing() -> list[str]:
            out = []
            for table, cols in TABLES.items():
                q = f"SELECT {cols} FROM {{}}.{table} ORDER BY 1"
                if (
                    pg.execute(q.format("public")).fetchall()
                    != pg.execute(q.format("dst")).fetchall()
                ):
                    out.append(table)
            return out

        def copied() -> bool:
            running.assert_running()
            return not differing()

        try:
            wait_until(copied, 240, "every dst table to equal its pgbench source")
        except AssertionError:
            raise AssertionError(f"{differing()}\n{running.output()[-4000:]}") from None
    finally:
        code, out = running.stop(120)
    assert code == 0, out[-3000:]
    assert out.count("restarting") >= 4, "every injected task fault must have fired"
    assert prepared(postgres_url, db) == []
    pg.close()
