"""Start mode ``timestamp``: which binlog file holds the first transaction at or after a time.

Binlog files are written one after another, so their start times (the timestamp of each
file's format description event) increase: a binary search over ``SHOW BINARY LOGS`` finds
the last file that starts at or before the time, reading one event per probe. Streaming then
starts at the top of that file and drops transactions committed before the time
(:class:`~source_connectors.mysql.binlog_stream.BinlogStream`'s ``not_before_ms``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import FormatDescriptionEvent

from source_connectors.mysql import binlog_server as server


def file_started_ms(settings: dict[str, Any], server_id: int, name: str) -> int:
    """When binlog file ``name`` was begun, in ms."""
    stream = BinLogStreamReader(
        connection_settings=dict(settings),
        server_id=server_id,
        log_file=name,
        log_pos=4,
        resume_stream=True,
        blocking=False,
        only_events=[FormatDescriptionEvent],
        enable_logging=False,
    )
    try:
        event = stream.fetchone()
        return int(event.timestamp) * 1000 if event is not None else 0
    finally:
        with contextlib.suppress(Exception):
            stream.close()


def first_file_at(
    conn: Any, settings: dict[str, Any], server_id: int, server_name: str, ts_ms: int
) -> tuple[str, int]:
    """``(file, 4)``: the file to start reading from to find the first transaction at or
    after ``ts_ms``. A time before the oldest file starts at the oldest file."""
    logs = server.binary_logs(conn, str(settings["user"]), server_name)
    lo, hi = 0, len(logs) - 1
    try:
        while lo < hi:  # the last file whose start is <= ts_ms
            mid = (lo + hi + 1) // 2
            if file_started_ms(settings, server_id, logs[mid].name) <= ts_ms:
                lo = mid
            else:
                hi = mid - 1
    except pymysql.MySQLError as e:
        raise server.stream_error(
            e, str(settings["user"]), server_name, "start.timestamp"
        ) from None
    return logs[lo].name, 4
