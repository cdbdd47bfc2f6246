"""Is a user's ``start`` position (``journalName`` + ``position``) a transaction boundary?

Started in the middle of a transaction, the reader would take the rest of it for a whole
one and the target would get half of it; started in the middle of an event, the server
cannot even parse what it sends. So a start position must be where no transaction is open:
the top of a file (4), its end, or the end of an event that leaves no transaction open — an
XID, a ``COMMIT``, an XA PREPARE, a standalone statement (DDL), or a header event between
transactions (format description, GTID list, binlog checkpoint). Transactions are grouped
exactly as :class:`~source_connectors.mysql.binlog_stream.BinlogStream` groups them.

A valid position is nearly always the start of a GTID event (every transaction on MariaDB,
and on MySQL 5.7+, begins with one) or of another event written only between transactions,
which one ``SHOW BINLOG EVENTS … FROM pos LIMIT 2`` confirms. Any other position is judged by
reading the file from its top, in pages (``FROM end LIMIT n``), up to the end of the
transaction the position is in: that read, logged, also finds the boundaries before and
after, which the error names. It costs about 10 s per 60 MB of binlog before the position
(PyMySQL decoding the rows), and a valid position seldom needs it. Only user-given positions
are checked: the positions a run saves are always boundaries.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from coordinator.errors import ConfigError

log = logging.getLogger("sluice.source.binlog")

PAGE_EVENTS = 10_000
ER_WRONG_OFFSET = 1220  # "Wrong offset or I/O error": not the start of an event

# The first event of every transaction (MariaDB; MySQL 5.7+ also without GTID mode).
GROUP_START = ("Gtid", "Anonymous_Gtid")
# Events only ever written between transactions: a position at one is a boundary.
BETWEEN_TRANSACTIONS = (
    *GROUP_START,
    *("Format_desc", "Gtid_list", "Previous_gtids", "Binlog_checkpoint", "Rotate", "Stop"),
)
# Statements that end an open transaction (the stream groups transactions with these too).
TXN_END = ("COMMIT", "ROLLBACK", "XA COMMIT", "XA ROLLBACK")
_USE_DB = re.compile(r"use `(?:[^`]|``)*`; ", re.IGNORECASE)
_GTID = re.compile(r"GTID (\d+-\d+-\d+)|GTID_NEXT= '([^']+)'")


@dataclass(frozen=True)
class Event:
    """One row of ``SHOW BINLOG EVENTS``."""

    pos: int
    type: str
    end: int
    info: str

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Event:
        return cls(int(row[1]), str(row[2]), int(row[4]), str(row[5] or ""))


class Transactions:
    """Follows a file's events and says after each whether a transaction is still open."""

    def __init__(self) -> None:
        self.open = False  # BEGIN seen, its end not yet
        self.pending = False  # a GTID seen, its statement (or BEGIN) not yet
        self.gtid = ""

    @property
    def idle(self) -> bool:
        return not self.open and not self.pending

    def take(self, ev: Event) -> None:
        if ev.type in GROUP_START:
            m = _GTID.search(ev.info)
            self.gtid = (m.group(1) or m.group(2)) if m else ""
            self.open = ev.info.upper().startswith(("BEGIN", "XA START"))
            self.pending = not self.open
        elif ev.type in ("Xid", "XA_prepare", "Transaction_payload"):
            self.open = self.pending = False
        elif ev.type == "Query":
            head = _USE_DB.sub("", ev.info, count=1).lstrip().upper()
            if head.startswith(("BEGIN", "XA START")):
                if not self.pending:  # no GTID event before it (MySQL 5.6)
                    self.gtid = ""
                self.open, self.pending = True, False
            elif head.startswith("XA END") or (self.open and not head.startswith(TXN_END)):
                pass  # inside the transaction (SAVEPOINT, XA END before its PREPARE)
            else:
                self.open = self.pending = False  # its COMMIT, or a standalone statement


def page_of_events(conn: Any, file: str, start: int, limit: int) -> list[Event]:
    """Up to ``limit`` events of ``file`` from ``start`` (the start of an event)."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINLOG EVENTS IN %s FROM %s LIMIT %s", (file, start, limit))
        return [Event.of(r) for r in cur.fetchall()]


def events(conn: Any, file: str, start: int = 4, page: int = PAGE_EVENTS) -> Iterator[Event]:
    """The events of ``file`` from ``start`` on, read ``page`` at a time."""
    pos = start
    while True:
        rows = page_of_events(conn, file, pos, page)
        yield from rows
        if len(rows) < page or rows[-1].end <= pos:
            return
        pos = rows[-1].end


def _between_transactions(conn: Any, file: str, pos: int, size: int) -> bool:
    """Whether an event only ever written between transactions starts at ``pos``, checked
    against where the next one starts (or the file's end), so that bytes inside an event that
    happen to parse as such an event do not pass."""
    try:
        found = page_of_events(conn, file, pos, 2)
    except pymysql.err.OperationalError as e:
        if e.args and e.args[0] == ER_WRONG_OFFSET:
            return False
        raise
    if not found or found[0].pos != pos or found[0].type not in BETWEEN_TRANSACTIONS:
        return False
    return found[0].end == (found[1].pos if len(found) == 2 else size)


@dataclass(frozen=True)
class NotABoundary:
    """Where a position that is not a boundary is, and the boundaries around it."""

    before: int
    after: int | None
    gtid: str  # of the transaction it is in ('' when between transactions or unknown)
    in_transaction: bool
    event: Event | None  # the event it is in the middle of, if any


def locate(conn: Any, file: str, pos: int, page: int = PAGE_EVENTS) -> NotABoundary | None:
    """None when ``pos`` is a transaction boundary of ``file``, else where it is."""
    txns = Transactions()
    before, found = 4, None
    for ev in events(conn, file, 4, page):
        if found is None:
            if ev.pos == pos and txns.idle:
                return None
            if ev.end > pos:  # pos is at or inside ev, or inside a transaction
                inside_event = ev if ev.pos != pos else None
                in_txn = not txns.idle
                gtid = txns.gtid if in_txn else ""
                found = NotABoundary(before, None, gtid, in_txn, inside_event)
        txns.take(ev)
        if txns.idle:
            if found is not None:
                return dataclasses.replace(found, after=ev.end)
            before = ev.end
    return found  # None: pos is the end of what the file holds


def check_start_boundary(
    conn: Any, server: str, file: str, pos: int, size: int, where: str
) -> None:
    """Raise a :class:`ConfigError` naming ``where`` and the boundaries around ``pos`` when
    ``file:pos`` is not a transaction boundary. ``size``: the file's size now."""
    if pos in (4, size) or _between_transactions(conn, file, pos, size):
        return
    started = time.monotonic()
    log.info(
        "checking that the start position %s:%d is a transaction boundary: reading %s "
        "(%d bytes) from its top up to there",
        file,
        pos,
        file,
        size,
    )
    spot = locate(conn, file, pos)
    log.info("%s:%d checked in %.1f s", file, pos, time.monotonic() - started)
    if spot is None:
        return
    raise ConfigError(boundary_message(where, server, file, pos, spot))


def boundary_message(where: str, server: str, file: str, pos: int, spot: NotABoundary) -> str:
    after = spot.after
    if spot.in_transaction:
        txn = f"transaction {spot.gtid}" if spot.gtid else "a transaction"
        ends = f" and ends at {after}" if after is not None else ""
        detail = f"inside {txn}, which begins at {spot.before}{ends}"
        if spot.event is not None:
            detail = f"in the middle of the {spot.event.type} event at {spot.event.pos}, {detail}"
        fix = f"start at position {spot.before} to read that transaction whole"
        if after is not None:
            fix += f", or at {after} to start after it"
    else:
        ev = spot.event
        assert ev is not None  # between transactions, only the middle of an event is wrong
        detail = f"in the middle of the {ev.type} event at {ev.pos}"
        fix = f"start at position {spot.before}" + (f" or {after}" if after is not None else "")
    return (
        f"binlogreader: {where}: {file}:{pos} on {server} is not a transaction boundary "
        f"(it is {detail}); {fix}"
    )
