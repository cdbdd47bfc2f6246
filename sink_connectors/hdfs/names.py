"""Where the HDFS sink's files live and what they are called.

Everything a transaction has not committed lives in one hidden staging directory of the
target, ``<path>/<fileName>/.sluice-staging``: in-progress files ``.<txn>-<n>.inprogress`` and
the transaction's manifest ``.<txn>.manifest``. Hive, Spark and MapReduce skip names that start
with ``.`` or ``_``, so a query never reads a partial file; and recovery finds everything of a
writer task with one listing, however many partition directories it writes to.

Committed files get names that are unique and deterministic per transaction,
``<filePrefix>-<txn>-<n>.<ext>`` (``txn`` = ``sl-<run digest>-writer-<i>-<attempt>``, so it
names the run and the task), in ``<target>/[table=<t>/][dt=<yyyy-mm-dd>/]``.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

STAGING_DIR = ".sluice-staging"
INPROGRESS_SUFFIX = ".inprogress"
MANIFEST_SUFFIX = ".manifest"
TMP_SUFFIX = ".tmp"

# Hive's FileUtils.escapePathName: characters a partition value cannot hold as such.
_PATH_UNSAFE = frozenset("\"#%'*/:=?\\\x7f{[]^") | frozenset(chr(c) for c in range(0x20))


def staging_dir(target: str) -> str:
    return posixpath.join(target, STAGING_DIR)


def inprogress_name(txn: str, n: int) -> str:
    return f".{txn}-{n:05d}{INPROGRESS_SUFFIX}"


def manifest_name(txn: str) -> str:
    return f".{txn}{MANIFEST_SUFFIX}"


def final_name(prefix: str, txn: str, n: int, extension: str) -> str:
    return f"{prefix}-{txn}-{n:05d}{extension}"


def belongs_to(name: str, txn_prefix: str) -> bool:
    """Whether a staging entry is one of the transactions whose id starts with ``txn_prefix``."""
    return name.startswith("." + txn_prefix)


def manifest_txn(name: str) -> str | None:
    """The transaction of a (complete) manifest's file name, else None."""
    if name.startswith(".") and name.endswith(MANIFEST_SUFFIX):
        return name[1 : -len(MANIFEST_SUFFIX)]
    return None


def escape_partition_value(value: str) -> str:
    """``a/b`` → ``a%2Fb``, as Hive names partition directories."""
    if not value:
        return "__HIVE_DEFAULT_PARTITION__"
    return "".join(f"%{ord(ch):02X}" if ch in _PATH_UNSAFE else ch for ch in value)


def event_date(ts_ms: int) -> str:
    """The UTC calendar day of an event time in milliseconds: ``2024-02-29``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def partition_dir(kinds: list[str], table: str, ts_ms: int) -> str:
    """The partition sub-directory of one event, in the order ``kinds`` lists them:
    ``table=orders/dt=2024-02-29``; ``""`` without partitioning."""
    parts = []
    for kind in kinds:
        if kind == "table":
            parts.append(f"table={escape_partition_value(table)}")
        else:
            parts.append(f"dt={event_date(ts_ms)}")
    return "/".join(parts)
