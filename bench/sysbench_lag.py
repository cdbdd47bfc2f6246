"""Does CDC keep up with sysbench ``oltp_write_only``? (issue 9: 4 threads, lag bounded 5 min)

    python -m bench.sysbench_lag [--seconds 300] [--threads 4] [--tables 4]
        [--table-size 100000] [--rate 0] [--exactly-once]

1. sysbench (Debian's package, installed by ``ensure_sysbench`` when missing) prepares
   ``--tables`` sbtest tables of ``--table-size`` rows in the database ``sluice_bench_sysbench``;
   prepare is outside the measured window, the binlog start position is taken after it.
2. A Sluice job, ``binlogreader`` of those tables → Kafka, starts in ``sluice run
   --metrics-port`` and is waited for until its reader reports. Its writer is ``streamwriter``
   ``print: false``, which only decodes, at-least-once like ``bench.anchor``'s capture run; with
   ``--exactly-once`` it is ``kafkawriter`` (Debezium JSON into ``<prefix>.out.<table>``),
   exactly-once, since streamwriter cannot take part in a checkpoint's commit.
3. ``sysbench oltp_write_only --threads --time --report-interval=10 run`` (``--rate``: sysbench's
   own transactions/s cap, 0 = as fast as it goes, which is what the target asks). Every 5 s a
   sample: the job's ``sluice_lag_milliseconds`` (now − the source commit time of the last row
   read; binlog times are whole seconds) and ``sluice_lag_binlog_bytes`` (binlog bytes between
   the reader and the server's end, re-measured by the reader every 5 s), the rows the reader
   has read, the data topic's end offsets (barriers and commit markers included) and the bytes
   the server's binlog grew (other databases' writes included: the machine is shared).
4. After sysbench stops, *drain*: seconds until the reader has read every row event written
   (committed transactions × 4, see ``bench.sysbench_stats``): ``drain_s``; and until the
   writer has written (exactly-once: committed) them all: ``drain_written_s``. Then the job is
   stopped (SIGTERM), the database dropped and the run's topics deleted.

Output: one ``sysbench_lag_sample`` JSON line per sample, then the ``sysbench_lag`` summary.
``bounded`` compares the mean lag of the last minute with that of the second minute (see
``bench.sysbench_stats.lag_trend``): true when the lag does not grow. The lag is measured by
the reader itself, so a reader stuck behind a long stretch of *other* databases' binlog events
reports 0 ms but a large byte lag: both are in the output. The machine's cores are shared by
sysbench, MariaDB, Kafka and Sluice: the CPU seconds each took are in ``cpu_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from bench.anchor import data_topic
from bench.common import child_pids, machine, servers
from bench.debezium import topic_count
from bench.latency import percentile
from bench.sysbench_stats import lag_trend, parse_metrics, parse_sysbench
from coordinator.local.install import ensure_sysbench
from testkit.cdc import RunningJob, binlog_position, cdc_job, execute
from testkit.mysql import mysql_connect, mysql_params

DB = "sluice_bench_sysbench"
SAMPLE_S = 5.0
READ, WRITE = "sluice_num_read_total", "sluice_num_write_total"
LAG_MS, LAG_BYTES = "sluice_lag_milliseconds", "sluice_lag_binlog_bytes"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sysbench_cmd(program: str, mysql_url: str, args: argparse.Namespace, *more: str) -> list[str]:
    p = mysql_params(mysql_url)
    cmd = [program, "oltp_write_only", "--db-driver=mysql"]
    cmd += [f"--mysql-host={p['host']}", f"--mysql-port={p['port']}", f"--mysql-user={p['user']}"]
    if p["password"]:
        cmd.append(f"--mysql-password={p['password']}")
    cmd += [f"--mysql-db={DB}", f"--tables={args.tables}", f"--table-size={args.table_size}"]
    return cmd + list(more)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return parse_metrics(r.read().decode())
    except OSError:
        return {}  # not listening yet, or busy: the sample shows the gap


def binlog_bytes_since(conn: Any, start: dict[str, Any]) -> int:
    """Bytes the server's binlog grew since ``start`` (over file rotations)."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        files = [(row[0], int(row[1])) for row in cur.fetchall()]
    names = [f for f, _ in files]
    if start["journalName"] not in names:
        return 0
    i = names.index(start["journalName"])
    return sum(size for _, size in files[i:]) - int(start["position"])


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes and all their descendants, alive now."""
    total, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            continue
        todo += child_pids(pid)
    return total / CLK_TCK


def mariadbd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "mariadbd":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def job_spec(
    mysql_url: str, tables: list[str], start: dict[str, Any], args: argparse.Namespace, prefix: str
) -> dict[str, Any]:
    spec = cdc_job(mysql_url, DB, tables, DB, "unused", name="bench-sysbench-lag", start=start)
    content = spec["job"]["content"][0]
    # streamwriter only decodes (the capture alone, as bench.anchor's run); it cannot pre-commit,
    # so exactly-once into Kafka means kafkawriter's consume-transform-produce transactions.
    content["writer"] = (
        {"name": "kafkawriter", "parameter": {"topic": f"{prefix}.out.${{table}}"}}
        if args.exactly_once
        else {"name": "streamwriter", "parameter": {"print": False}}
    )
    setting = spec["job"]["setting"]
    setting["restore"]["checkpointInterval"] = 1000
    setting["kafka"] = {"topicPrefix": prefix}
    setting["delivery"] = "exactly-once" if args.exactly_once else "at-least-once"
    return spec


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Millions of records nobody reads again: give the shared broker its disk back."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix + ".")]
        for future in admin.delete_topics(ours, operation_timeout=30).values() if ours else []:
            future.result()
    except KafkaException as e:  # the measurement stands; say what was left behind
        print(f"could not delete the topics {prefix}.*: {e}", file=sys.stderr)


class Sampler:
    """One sample: the job's metrics, the data topic's end offsets, the binlog's growth."""

    def __init__(self, port: int, bootstrap: str, topic: str, conn: Any, start: dict[str, Any]):
        self.port, self.topic, self.conn, self.start = port, topic, conn, start
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "sluice-bench-lag"})
        self.began = time.monotonic()

    def sample(self) -> dict[str, Any]:
        m = scrape(self.port)
        try:
            records: int | None = topic_count(self.consumer, self.topic)
        except Exception:  # noqa: BLE001 - a shared broker hiccup loses one figure, not the run
            records = None
        return {
            "bench": "sysbench_lag_sample",
            "t": round(time.monotonic() - self.began, 1),
            "lag_ms": m.get(LAG_MS),
            "lag_bytes": m.get(LAG_BYTES),
            "rows_read": int(m[READ]) if READ in m else None,
            "topic_records": records,
            "binlog_bytes": binlog_bytes_since(self.conn, self.start),
        }

    def close(self) -> None:
        self.consumer.close()


def load(sampler: Sampler, cmd: list[str], log: Path) -> tuple[list[dict[str, Any]], str]:
    """Run sysbench, sampling every SAMPLE_S; (samples, sysbench's output)."""
    samples = []
    with log.open("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        sampler.began = time.monotonic()
        tick = 0
        while True:
            ended = proc.poll() is not None
            s = sampler.sample()  # the last one as sysbench has just ended
            samples.append(s)
            print(json.dumps(s), flush=True)
            if ended:
                break
            tick += 1
            while time.monotonic() < sampler.began + tick * SAMPLE_S and proc.poll() is None:
                time.sleep(0.1)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"sysbench run failed (exit {proc.returncode}):\n{text[-3000:]}")
    return samples, text


def drain(port: int, expected: int, timeout: float) -> dict[str, Any]:
    """After the load: seconds until the reader has read ``expected`` rows (``drain_s``) and
    until the writer has written (exactly-once: committed) them all (``drain_written_s``);
    None if not within ``timeout`` or when nothing moved for 20 s. And the counts reached."""
    began = time.monotonic()
    counts = {READ: -1, WRITE: -1}
    done: dict[str, float | None] = {READ: None, WRITE: None}
    moved = began
    # Both: the writer's count can get there first (the reader's is reported every 0.5 s).
    while time.monotonic() < began + timeout and None in done.values():
        now = time.monotonic()
        m = scrape(port)
        for key in counts:
            if key in m and int(m[key]) != counts[key]:
                counts[key], moved = int(m[key]), now
            if done[key] is None and counts[key] >= expected:
                done[key] = round(now - began, 1)
        if now - moved > 20:
            break
        time.sleep(0.25)
    return {
        "drain_s": done[READ],
        "drain_written_s": done[WRITE],
        "events_captured": counts[READ],
        "events_written": counts[WRITE],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    program = ensure_sysbench()
    bootstrap, mysql_url = servers()
    conn = mysql_connect(mysql_url)
    try:
        return _measure(args, program, bootstrap, mysql_url, conn)
    finally:
        execute(conn, f"DROP DATABASE IF EXISTS {DB}")  # the sbtest tables: sysbench cleanup
        conn.close()


def _measure(
    args: argparse.Namespace, program: str, bootstrap: str, mysql_url: str, conn: Any
) -> dict[str, Any]:
    execute(conn, f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}")
    tables = [f"sbtest{i}" for i in range(1, args.tables + 1)]
    began = time.monotonic()
    # One thread per table: prepare loads the tables in parallel.
    threads = f"--threads={min(args.tables, 4)}"
    prep = subprocess.run(
        sysbench_cmd(program, mysql_url, args, threads, "prepare"), capture_output=True, text=True
    )
    if prep.returncode != 0:
        tail = (prep.stdout + prep.stderr)[-3000:]
        raise RuntimeError(f"sysbench prepare failed (exit {prep.returncode}):\n{tail}")
    prepare_s = time.monotonic() - began
    start = binlog_position(conn)
    prefix = f"benchsysbench{int(time.time())}"
    port = free_port()
    run = sysbench_cmd(
        program,
        mysql_url,
        args,
        f"--threads={args.threads}",
        f"--time={args.seconds}",
        f"--rate={args.rate}",
        "--report-interval=10",
        "run",
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = job_spec(mysql_url, tables, start, args, prefix)
        job = RunningJob(spec, Path(tmp) / "job.json", bootstrap, ("--metrics-port", str(port)))
        sampler, failed = None, True
        try:
            deadline = time.monotonic() + 120
            while LAG_BYTES not in scrape(port):  # the reader is up and has measured once
                job.assert_running()
                if time.monotonic() > deadline:
                    raise RuntimeError("the job's reader reported no lag within 120 s")
                time.sleep(0.5)
            topic = data_topic(bootstrap, prefix, timeout=30)
            sampler = Sampler(port, bootstrap, topic, conn, start)
            sluice_pids, db_pids = [job.proc.pid], mariadbd_pids()
            cpu0 = (tree_cpu_s(sluice_pids), tree_cpu_s(db_pids))
            child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples, output = load(sampler, run, Path(tmp) / "sysbench.log")
            child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu1 = (tree_cpu_s(sluice_pids), tree_cpu_s(db_pids))
            at_end = samples[-1]
            bench = parse_sysbench(output)
            job.assert_running()
            # A reader at a quarter of the write rate needs 3× the load's time to catch up.
            drained = drain(port, bench["row_events"], max(300.0, 3.0 * args.seconds))
            after = sampler.sample()
            failed = False
        finally:
            if sampler is not None:
                sampler.close()
            code, log = job.stop()
            if failed:
                sys.stderr.write(f"sluice run (exit {code}), its log's tail:\n{log[-3000:]}\n")
            delete_topics(bootstrap, prefix)
    sysbench_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    cpu = {
        "sysbench": round(sysbench_cpu, 1),
        "sluice": round(cpu1[0] - cpu0[0], 1),
        "mariadbd": round(cpu1[1] - cpu0[1], 1),
    }
    if drained["drain_written_s"] is None:  # why, from the run's log; the summary says how many
        sys.stderr.write(f"sluice run exit {code}; its log's tail:\n{log[-3000:]}\n")
    return summarize(args, bench, samples, at_end, after, drained, cpu, prepare_s)


def summarize(
    args: argparse.Namespace,
    bench: dict[str, Any],
    samples: list[dict[str, Any]],
    at_end: dict[str, Any],
    after: dict[str, Any],
    drained: dict[str, Any],
    cpu: dict[str, float],
    prepare_s: float,
) -> dict[str, Any]:
    seconds = bench["total_time_s"]
    lags = sorted(float(s["lag_ms"]) for s in samples if s["lag_ms"] is not None)
    lag_bytes = [float(s["lag_bytes"]) for s in samples if s["lag_bytes"] is not None]
    trend, trend_bytes = lag_trend(samples, seconds), lag_trend(samples, seconds, "lag_bytes")
    read_at_end = at_end["rows_read"] or 0
    return {
        "bench": "sysbench_lag",
        "threads": args.threads,
        "tables": args.tables,
        "table_size": args.table_size,
        "rate_limit_tps": args.rate,
        "delivery": "exactly-once" if args.exactly_once else "at-least-once",
        "seconds": round(seconds, 1),
        "prepare_s": round(prepare_s, 1),
        "tps": round(bench["tps"], 1),
        "transactions": bench["transactions"],
        "sysbench_ignored_errors": bench["ignored_errors"],
        "sysbench_latency_p95_ms": bench["latency_p95_ms"],
        "row_events_written": bench["row_events"],
        "row_events_written_per_s": round(bench["row_events"] / seconds),
        "binlog_mib_per_s": round(at_end["binlog_bytes"] / seconds / 2**20, 2),
        "events_captured_during_load": read_at_end,
        "capture_events_per_s": round(read_at_end / seconds),
        "events_captured": drained["events_captured"],
        "events_written": drained["events_written"],
        "captured_all": drained["events_captured"] == bench["row_events"],
        "topic_records": after["topic_records"],
        "lag_ms_p50": round(percentile(lags, 0.50)) if lags else None,
        "lag_ms_p99": round(percentile(lags, 0.99)) if lags else None,
        "lag_ms_max": round(lags[-1]) if lags else None,
        "lag_ms_at_end": at_end["lag_ms"],
        "lag_bytes_max": round(max(lag_bytes)) if lag_bytes else None,
        "lag_window_s": trend["window_s"],
        "lag_ms_early": trend["early"],
        "lag_ms_late": trend["late"],
        "lag_ms_slope_per_s": trend["slope_per_s"],
        "lag_bytes_early": trend_bytes["early"],
        "lag_bytes_late": trend_bytes["late"],
        "bounded": trend["bounded"],
        "drain_s": drained["drain_s"],
        "drain_written_s": drained["drain_written_s"],
        "cpu_s": cpu,
        "tps_intervals": bench["intervals"],
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--table-size", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=0, help="sysbench --rate (tps cap), 0: none")
    ap.add_argument("--exactly-once", action="store_true", help="capture with exactly-once")
    args = ap.parse_args(argv)
    print(json.dumps({"bench": "machine", **machine()}), flush=True)
    print(json.dumps(measure(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
