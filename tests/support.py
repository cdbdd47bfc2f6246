"""Helpers shared by tests: connecting to the servers the fixtures found."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import pymysql
from confluent_kafka import Consumer, KafkaError

from coordinator.local.stack import LocalStack


@dataclass(frozen=True)
class Servers:
    """The Kafka and MariaDB the session's tests use (the ``servers`` fixture)."""

    kafka_bootstrap: str
    mysql_url: str
    source: str
    """Where they came from: "env", "docker" or "local"."""
    local_stack: LocalStack | None = None


def mysql_params(mysql_url: str) -> dict[str, object]:
    u = urlparse(mysql_url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 3306,
        "user": unquote(u.username or "root"),
        "password": unquote(u.password or ""),
    }


def mysql_connect(mysql_url: str, database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        **mysql_params(mysql_url),
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def new_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = 30.0) -> str:
    """Create topic ``name`` and wait until every partition has a leader; return the name.

    The local broker does not auto-create topics, as Sluice never relies on that.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout)

    def has_leaders() -> bool:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        return (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    wait_until(has_leaders, timeout, f"topic {name} to have leaders")
    return name


def jdbc_url(mysql_url: str, database: str) -> str:
    p = mysql_params(mysql_url)
    return f"jdbc:mysql://{p['host']}:{p['port']}/{database}?useUnicode=true&characterEncoding=utf8"


def mysql_job(
    mysql_url: str,
    database: str,
    source_table: str,
    target_table: str,
    *,
    name: str,
    channel: int = 1,
    write_mode: str = "insert",
    split_pk: str | None = "id",
    reader_extra: dict[str, object] | None = None,
    writer_extra: dict[str, object] | None = None,
    setting_extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """A FlinkX mysqlreader → mysqlwriter job as a dict (dump it with json.dumps)."""
    p = mysql_params(mysql_url)
    reader: dict[str, object] = {
        "username": p["user"],
        "password": p["password"],
        "connection": [{"jdbcUrl": [jdbc_url(mysql_url, database)], "table": [source_table]}],
        "column": ["*"],
        "fetchSize": 2000,
    }
    if split_pk:
        reader["splitPk"] = split_pk
    reader.update(reader_extra or {})
    writer: dict[str, object] = {
        "username": p["user"],
        "password": p["password"],
        "connection": [{"jdbcUrl": jdbc_url(mysql_url, database), "table": [target_table]}],
        "column": ["*"],
        "writeMode": write_mode,
        "batchSize": 2000,
    }
    writer.update(writer_extra or {})
    setting: dict[str, object] = {
        "speed": {"channel": channel},
        "restore": {"checkpointInterval": 1000},
    }
    setting.update(setting_extra or {})
    return {
        "job": {
            "name": name,
            "content": [
                {
                    "reader": {"name": "mysqlreader", "parameter": reader},
                    "writer": {"name": "mysqlwriter", "parameter": writer},
                }
            ],
            "setting": setting,
        }
    }


def table_fingerprint(
    conn: pymysql.connections.Connection, database: str, table: str
) -> tuple[int, int]:
    """(row count, CHECKSUM TABLE): equal for two tables of one definition iff same rows."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")
        (count,) = cur.fetchone()
        cur.execute(f"CHECKSUM TABLE `{database}`.`{table}`")
        (_name, checksum) = cur.fetchone()
    return int(count), int(checksum)


def key_differences(
    conn: pymysql.connections.Connection, database: str, source: str, target: str, key: str = "id"
) -> dict[str, list[object]]:
    """Which keys are missing from the target, extra in it, or differ in value (first 20 each)."""
    q = f"`{database}`"
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT s.{key} FROM {q}.`{source}` s LEFT JOIN {q}.`{target}` t ON s.{key} = t.{key} "
            f"WHERE t.{key} IS NULL ORDER BY 1 LIMIT 20"
        )
        missing = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"SELECT t.{key} FROM {q}.`{target}` t LEFT JOIN {q}.`{source}` s ON s.{key} = t.{key} "
            f"WHERE s.{key} IS NULL ORDER BY 1 LIMIT 20"
        )
        extra = [r[0] for r in cur.fetchall()]
    return {"missing": missing, "extra": extra}


# The sink creates its topic once the job starts: until then a subscriber hears of it missing.
_NOT_YET = (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART)


def read_topic(
    bootstrap: str, topic: str, expected: int, *, committed: bool = True, timeout: float = 60
) -> list[Any]:
    """Every record of ``topic`` (``(key, value)`` bytes) once ``expected`` have arrived, plus
    whatever arrives in the next second (a duplicate must have a chance to show)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}-{time.monotonic_ns()}",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for m in consumer.consume(500, 0.2):
                err = m.error()
                if err is not None and err.code() not in _NOT_YET:
                    raise AssertionError(f"reading {topic}: {err.str()}")
                if err is None:
                    out.append((m.key(), m.value()))
            if len(out) >= expected and settle is None:
                settle = time.monotonic() + 1.0
        return out
    finally:
        consumer.close()
