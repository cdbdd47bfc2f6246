"""``preSql`` / ``postSql``: every statement checked before any runs, then all of them in one
transaction, so a failing statement leaves the target as it was (README: "the target is
untouched")."""

from __future__ import annotations

import re
from collections.abc import Callable

import pymysql

from coordinator.errors import ConfigError, TaskFailed

# Statements that commit implicitly in MariaDB: they cannot be rolled back, and a statement
# after one may name a table it creates, so PREPARE cannot check what follows them.
_IMPLICIT_COMMIT = re.compile(r"^\s*(create|alter|drop|rename|truncate)\b", re.IGNORECASE)
# ER_UNSUPPORTED_PS: a statement MariaDB cannot prepare is run unchecked.
_UNSUPPORTED_PS = 1295


def run_statements(
    connect: Callable[[], pymysql.connections.Connection], statements: list[str], path: str
) -> None:
    """Run ``statements`` (the JSON path ``path`` names the list). Each is first PREPAREd —
    which checks its syntax, tables and columns without running it — and a failure there is
    a ConfigError naming ``path[i]`` with nothing run; then they run in one transaction,
    rolled back whole if one fails (DDL commits implicitly, so it cannot be undone)."""
    if not statements:
        return
    conn = connect()
    try:
        with conn.cursor() as cur:
            for i, sql in enumerate(statements):
                if any(_IMPLICIT_COMMIT.match(s) for s in statements[:i]):
                    break
                try:
                    cur.execute("PREPARE sluice_presql_check FROM %s", (sql,))
                    cur.execute("DEALLOCATE PREPARE sluice_presql_check")
                except pymysql.MySQLError as e:
                    if e.args and e.args[0] == _UNSUPPORTED_PS:
                        continue
                    raise ConfigError(
                        f"{path}[{i}]: {e.args[-1]}; no statement of {path} was run"
                    ) from None
            cur.execute("START TRANSACTION")
            for i, sql in enumerate(statements):
                try:
                    cur.execute(sql)
                except pymysql.MySQLError as e:
                    conn.rollback()
                    raise TaskFailed(
                        f"{path}[{i}]: {e.args[-1]}; what {path} had done before it was "
                        "rolled back (except DDL, which MariaDB commits at once)"
                    ) from None
            conn.commit()
    finally:
        conn.close()
