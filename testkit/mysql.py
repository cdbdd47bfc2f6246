"""MySQL helpers: connect to a ``mysql://`` URL, its JDBC URL, a FlinkX ``mysqlreader →
mysqlwriter`` job, and comparing two tables (fingerprint, differing keys)."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import pymysql


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
