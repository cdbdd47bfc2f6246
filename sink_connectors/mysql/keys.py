"""Which unique keys make ``writeMode`` ``replace`` / ``update`` idempotent.

``REPLACE`` and ``INSERT … ON DUPLICATE KEY UPDATE`` overwrite a row only when the new one
collides with it on a unique index; without one, they append. Replay and restarts apply rows
again on the promise that these modes are idempotent, so a target that cannot keep that
promise is refused before anything is written.
"""

from __future__ import annotations

from typing import Any

from coordinator.errors import ConfigError
from coordinator.mysql_client import unique_keys
from schemas.table import TableSchema


def require_idempotent_key(
    conn: Any,
    target: TableSchema,
    write_mode: str,
    written: tuple[str, ...],
    update_key: tuple[str, ...] | None,
    where: str,
) -> None:
    """Refuse ``replace`` / ``update`` unless rows collide on a unique key: one on NOT NULL
    columns (MySQL lets any number of rows share a NULL in a UNIQUE key), all of them
    written, and — with ``updateKey`` — within the ``updateKey`` columns."""
    if write_mode not in ("replace", "update"):
        return
    usable = [
        cols
        for cols, not_null in unique_keys(conn, target).values()
        if not_null
        and all(c in written for c in cols)
        and (update_key is None or set(cols) <= set(update_key))
    ]
    if usable:
        return
    if update_key is not None:
        raise ConfigError(
            f"{where}.updateKey: target table {target.qualified_name} has no PRIMARY KEY or "
            f"UNIQUE index on NOT NULL columns within {list(update_key)}, so writeMode "
            f"{write_mode!r} would append rows again on every replay; add one "
            f"(e.g. ALTER TABLE ... ADD UNIQUE ({', '.join(update_key)}))"
        )
    raise ConfigError(
        f"{where}.writeMode: {write_mode!r} needs a PRIMARY KEY or UNIQUE index on NOT NULL "
        f"written columns in target table {target.qualified_name}, which has none: it "
        "would append rows again on every run and replay; add a key, or use writeMode "
        "'insert'"
    )
