"""Whether a table part can resume exactly where it stopped.

A part reads its rows ordered by its resume key and, restarted from a saved position,
continues with the rows after the last one it committed (``key > last``). That is exact only
when the key tells every two rows apart: it holds the whole primary key, or a unique key of
NOT NULL columns. With a key rows may share (a non-unique ``splitPk``, no key at all), rows
tied with the last one committed would be skipped, or — without any key — every row read
again. So an exactly-once job is refused before anything is read, naming the table and what
would do; an at-least-once job's part restarts from its first row (rows again, none lost).
"""

from __future__ import annotations

from collections.abc import Iterable

from coordinator.errors import ConfigError


def tells_rows_apart(
    key: tuple[str, ...], primary_key: tuple[str, ...], unique_keys: Iterable[tuple[str, ...]]
) -> bool:
    """Whether ordering by ``key`` orders every two rows: it holds the primary key or one of
    ``unique_keys`` (each of NOT NULL columns)."""
    held = set(key)
    if primary_key and set(primary_key) <= held:
        return True
    return any(cols and set(cols) <= held for cols in unique_keys)


def require_unique_resume(
    where: str, table: str, key: tuple[str, ...], unique: bool, exactly_once: bool
) -> None:
    """Refuse an exactly-once read whose resume key does not tell rows apart."""
    if unique or not exactly_once:
        return
    why = (
        f"its resume key ({', '.join(key)}) holds no primary key or NOT NULL unique key"
        if key
        else "it has no primary key or NOT NULL unique key to resume by"
    )
    raise ConfigError(
        f"{where}: table {table}: {why}, so a reader restarted after a crash would skip or "
        "repeat rows; give splitPk or setting.restore.restoreColumnName a unique NOT NULL "
        'column, add a primary key, or set "setting.delivery": "at-least-once" (a restarted '
        "part then reads its rows again)"
    )
