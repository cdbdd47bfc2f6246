"""The physical limits the CDC figures are compared with, on the same data.

* ``mariadb_binlog``: MariaDB's own ``mariadb-binlog`` decoding the benchmark's binlog range
  from the local files, rows decoded (``--base64-output=decode-rows -v``), to /dev/null: how
  fast a C program turns these binlog events into rows.
* ``producer_perf``: Kafka's ``ProducerPerformance`` (kafka-tools, resolved with the broker)
  sending as many records of the Sluice record size as the workload has changes, acks=all.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import REPO_ROOT
from coordinator.local.install import LOG4J2_CONFIG, kafka_libs_dir, which
from testkit.mysql import mysql_connect


def binlog_files(mysql_url: str, start: dict[str, Any], end: dict[str, Any]) -> list[Path]:
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute("SELECT @@datadir, @@log_bin_basename")
        datadir, basename = cur.fetchone()
        cur.execute("SHOW BINARY LOGS")
        names = [row[0] for row in cur.fetchall()]
    conn.close()
    folder = Path(basename).parent if basename else Path(datadir)
    lo, hi = names.index(start["journalName"]), names.index(end["journalName"])
    return [folder / n for n in names[lo : hi + 1]]


def mariadb_binlog(
    mysql_url: str, start: dict[str, Any], end: dict[str, Any], events: int
) -> dict[str, Any]:
    tool = which("mariadb-binlog") or which("mysqlbinlog")
    if tool is None:
        return {"bench": "mariadb_binlog", "error": "mariadb-binlog is not installed"}
    files = binlog_files(mysql_url, start, end)
    cmd = [
        tool,
        "--base64-output=decode-rows",
        "-v",
        f"--start-position={start['position']}",
        f"--stop-position={end['position']}",
        *map(str, files),
    ]
    began = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    seconds = time.monotonic() - began
    # Bytes of the range only: the first file from the start position, the last up to the end.
    size = sum(f.stat().st_size for f in files) - start["position"]
    size -= files[-1].stat().st_size - end["position"]
    return {
        "bench": "mariadb_binlog",
        "events": events,
        "binlog_mib": round(size / 2**20, 1),
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds),
    }


def avg_value_size(bootstrap: str, topic: str, sample: int = 5000) -> int:
    """Mean value size of the first ``sample`` records of ``topic`` (partition 0 on)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sluice-bench-size-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    sizes: list[int] = []
    deadline = time.monotonic() + 30
    while len(sizes) < sample and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1.0):
            value = msg.value() if msg.error() is None else None
            if value:
                sizes.append(len(value))
    consumer.close()
    return round(sum(sizes) / len(sizes)) if sizes else 100


def producer_perf(bootstrap: str, records: int, record_size: int) -> dict[str, Any]:
    java = which("java")
    libs = kafka_libs_dir(REPO_ROOT / ".cache")
    if java is None or not libs.is_dir():
        return {"bench": "producer_perf", "error": "Kafka jars not resolved; run make install"}
    topic = f"sluice-bench-perf-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    cmd = [
        java,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        f"{libs}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        admin.delete_topics([topic])
    # Last line: "N records sent, R records/sec (M MB/sec), A ms avg latency, ..."
    m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", out)
    if not m:
        return {"bench": "producer_perf", "error": out[-500:]}
    sent, rate, mb = m[-1]
    return {
        "bench": "producer_perf",
        "events": int(sent),
        "record_bytes": record_size,
        "events_per_s": round(float(rate)),
        "mib_per_s": float(mb),
        "seconds": round(int(sent) / float(rate), 1),
    }
