"""Driving a sink's writer by hand, as the writer task would, for tests of one connector."""

from __future__ import annotations

from typing import Any

from schemas.events import RowEvent


def commit_once(writer: Any, xid: str, events: list[RowEvent], offsets: dict[str, int]) -> None:
    """One whole two-phase write of ``events``: begin, write, flush, pre-commit, commit —
    then close the writer. On any failure the transaction is aborted first: an open XA
    transaction or HDFS upload would outlive the test and hold what its fixture drops."""
    try:
        writer.begin(xid)
        assert writer.write(events) == []
        assert writer.flush() == []
        writer.pre_commit(xid, offsets)
        writer.commit(xid)
    except BaseException:
        writer.abort()
        raise
    finally:
        writer.close()
