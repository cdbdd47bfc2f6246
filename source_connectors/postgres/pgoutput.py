"""Decoding ``pgoutput`` messages, protocol version 1 (PostgreSQL's built-in logical decoding
output plugin, the one logical replication itself uses).

Reference: "Logical Replication Message Formats" in PostgreSQL's documentation. Every
message is one ``XLogData`` payload; values are sent in their text output form (what
``SELECT col::text`` gives in the walsender's session), which the reader turns into neutral
values with the same loaders a table read uses. Only what a change-data-capture reader needs
is kept; a message this module does not know raises :class:`PgoutputError` naming its tag,
never a guess.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PG_EPOCH_MS = 946_684_800_000
"""2000-01-01 in Unix milliseconds: PostgreSQL timestamps count microseconds from there."""

UNCHANGED = object()
"""A TOASTed value an UPDATE did not change: the WAL does not carry it (``'u'``)."""

Tuple = tuple[object, ...]
"""One row as sent: per column ``None`` (NULL), :data:`UNCHANGED` or the text ``bytes``."""


class PgoutputError(ValueError):
    """A message that is truncated or of a kind this decoder does not know."""


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    """The transaction's commit record: with the exported snapshot's consistent point it
    tells whether a snapshot already holds the transaction (before it: yes)."""
    commit_ts_ms: int
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    """Right after the commit record: where streaming resumes to get the next transaction."""
    commit_ts_ms: int


@dataclass(frozen=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    key: bool
    """Part of the replica identity (the primary key, by default)."""


@dataclass(frozen=True)
class Relation:
    relid: int
    namespace: str
    name: str
    replica_identity: str
    """``d`` default (the primary key), ``f`` full, ``i`` an index, ``n`` nothing."""
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True)
class Insert:
    relid: int
    new: Tuple


@dataclass(frozen=True)
class Update:
    relid: int
    old: Tuple | None
    """The old row: all columns (``REPLICA IDENTITY FULL``), the key columns when the key
    changed (others None), or None when the key did not change."""
    old_is_key: bool
    new: Tuple


@dataclass(frozen=True)
class Delete:
    relid: int
    old: Tuple
    old_is_key: bool


@dataclass(frozen=True)
class Truncate:
    relids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class Ignored:
    """A message with no effect on rows (origin, type, logical message)."""

    tag: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Ignored

_BEGIN = struct.Struct(">QqI")  # LSNs are unsigned 64-bit
_COMMIT = struct.Struct(">BQQq")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I16 = struct.Struct(">h")
_COL = struct.Struct(">Ii")


class _Reader:
    __slots__ = ("data", "p")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.p = 1

    def need(self, n: int) -> None:
        if self.p + n > len(self.data):
            raise PgoutputError(
                f"pgoutput {chr(self.data[0])!r} message truncated: {n} bytes needed at "
                f"offset {self.p} of {len(self.data)}"
            )

    def unpack(self, st: struct.Struct) -> tuple[int, ...]:
        self.need(st.size)
        values = st.unpack_from(self.data, self.p)
        self.p += st.size
        return values

    def byte(self) -> int:
        self.need(1)
        self.p += 1
        return self.data[self.p - 1]

    def string(self) -> str:
        end = self.data.find(b"\0", self.p)
        if end < 0:
            raise PgoutputError(f"pgoutput {chr(self.data[0])!r} message: unterminated string")
        text = self.data[self.p : end].decode()
        self.p = end + 1
        return text

    def tuple_data(self) -> Tuple:
        (n,) = self.unpack(_I16)
        values: list[object] = []
        for _ in range(n):
            kind = self.byte()
            if kind == 0x74:  # 't': text
                (length,) = self.unpack(_I32)
                self.need(length)
                values.append(self.data[self.p : self.p + length])
                self.p += length
            elif kind == 0x6E:  # 'n'
                values.append(None)
            elif kind == 0x75:  # 'u'
                values.append(UNCHANGED)
            else:
                raise PgoutputError(
                    f"pgoutput tuple: column kind {chr(kind)!r} (binary values are not asked for)"
                )
        return tuple(values)


def _ms(pg_micros: int) -> int:
    return PG_EPOCH_MS + pg_micros // 1000


def decode(data: bytes) -> Message:
    """One ``pgoutput`` message (the payload of one ``XLogData``)."""
    if not data:
        raise PgoutputError("empty pgoutput message")
    tag = chr(data[0])
    r = _Reader(data)
    if tag == "B":
        final_lsn, ts, xid = r.unpack(_BEGIN)
        return Begin(final_lsn, _ms(ts), xid)
    if tag == "C":
        _flags, commit_lsn, end_lsn, ts = r.unpack(_COMMIT)
        return Commit(commit_lsn, end_lsn, _ms(ts))
    if tag == "R":
        (relid,) = r.unpack(_U32)
        namespace, name = r.string(), r.string()
        identity = chr(r.byte())
        (n,) = r.unpack(_I16)
        columns = []
        for _ in range(n):
            flags = r.byte()
            col = r.string()
            oid, typmod = r.unpack(_COL)
            columns.append(RelationColumn(col, oid, typmod, bool(flags & 1)))
        return Relation(relid, namespace or "pg_catalog", name, identity, tuple(columns))
    if tag == "I":
        (relid,) = r.unpack(_U32)
        if r.byte() != 0x4E:
            raise PgoutputError("pgoutput insert: no new tuple")
        return Insert(relid, r.tuple_data())
    if tag == "U":
        (relid,) = r.unpack(_U32)
        kind = r.byte()
        old: Tuple | None = None
        if kind in (0x4B, 0x4F):  # 'K' key, 'O' old row
            old = r.tuple_data()
            new_kind = r.byte()
        else:
            new_kind = kind
        if new_kind != 0x4E:
            raise PgoutputError("pgoutput update: no new tuple")
        return Update(relid, old, kind == 0x4B, r.tuple_data())
    if tag == "D":
        (relid,) = r.unpack(_U32)
        kind = r.byte()
        if kind not in (0x4B, 0x4F):
            raise PgoutputError("pgoutput delete: no old tuple")
        return Delete(relid, r.tuple_data(), kind == 0x4B)
    if tag == "T":
        (n,) = r.unpack(_I32)
        options = r.byte()
        relids = tuple(r.unpack(_U32)[0] for _ in range(n))
        return Truncate(relids, bool(options & 1), bool(options & 2))
    if tag in "OYM":
        return Ignored(tag)
    raise PgoutputError(f"pgoutput message {tag!r} is not one protocol version 1 sends")


def lsn_text(lsn: int) -> str:
    """PostgreSQL's own spelling of an LSN: ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``16/B374D848`` (or a plain integer) → the 64-bit LSN; ValueError when neither."""
    text = text.strip()
    if "/" in text:
        high, _, low = text.partition("/")
        if not (high and low):
            raise ValueError(f"not an LSN: {text!r}")
        return (int(high, 16) << 32) | int(low, 16)
    return int(text)
