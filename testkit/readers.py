"""Driving one part reader of a real job directly (no runner, no Kafka): what the incremental
and polling tests of every SQL family share."""

from __future__ import annotations

import time
from typing import Any

from coordinator.connectors import build_source
from coordinator.job import build_job
from source_connectors.base import SourcePartReader


def open_reader(job: dict[str, Any], state: dict[str, str] | None = None) -> SourcePartReader:
    """The reader of the job's first part, checked and planned as a run would, at ``state``."""
    source = build_source(build_job(job))
    source.check()
    return source.build_part(source.list_parts()[0], "reader-0", state)


def read_for(reader: SourcePartReader, seconds: float) -> list[tuple[Any, ...]]:
    """Rows (after-images) the reader returns within ``seconds``."""
    rows: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = reader.next_batch()
        if batch is None:
            break
        rows += [e.after for e in batch if e.after is not None]
    return rows


def read_until(reader: SourcePartReader, count: int, timeout: float) -> list[tuple[Any, ...]]:
    """Rows the reader returns until there are ``count`` of them (or ``timeout`` s passed)."""
    rows: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + timeout
    while len(rows) < count and time.monotonic() < deadline:
        rows += read_for(reader, 0.1)
    return rows


def ids_read_restarting_after_every_batch(job: dict[str, Any], limit: int = 400) -> list[int]:
    """The first column of every row a bounded part reads when a new reader resumes from
    the position after each batch: a lost or repeated row shows in the list."""
    seen: list[int] = []
    state: dict[str, str] | None = None
    for _ in range(limit):
        reader = open_reader(job, state)
        batch = reader.next_batch()
        state = reader.snapshot()
        reader.close()
        if batch is None:
            break
        seen += [int(e.after[0]) for e in batch if e.after is not None]  # type: ignore[call-overload]
    return seen


def missing_and_duplicated(seen: list[int], want: range) -> dict[str, list[int]]:
    return {
        "missing": sorted(set(want) - set(seen)),
        "duplicated": sorted({i for i in seen if seen.count(i) > 1}),
    }
