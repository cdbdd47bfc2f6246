"""The pgoutput decoder against messages built by the protocol's documented layout (the real
server's messages: tests/conformance and tests/integration/test_pgwal.py), truncation at
every byte, and LSN text both ways."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from source_connectors.postgres.pgoutput import (
    PG_EPOCH_MS,
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    RelationColumn,
    Truncate,
    Update,
    decode,
    lsn_text,
    parse_lsn,
)

values = st.one_of(st.none(), st.just(UNCHANGED), st.binary(max_size=40))


def tuple_data(row: tuple[object, ...]) -> bytes:
    out = struct.pack(">h", len(row))
    for v in row:
        if v is None:
            out += b"n"
        elif v is UNCHANGED:
            out += b"u"
        else:
            assert isinstance(v, bytes)
            out += b"t" + struct.pack(">i", len(v)) + v
    return out


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


@given(st.integers(0, 2**64 - 41), st.integers(0, 2**40), st.integers(0, 2**32 - 1))
def test_begin_and_commit(lsn: int, micros: int, xid: int) -> None:
    assert decode(b"B" + struct.pack(">QqI", lsn, micros, xid)) == Begin(
        lsn, PG_EPOCH_MS + micros // 1000, xid
    )
    body = struct.pack(">BQQq", 0, lsn, lsn + 40, micros)
    assert decode(b"C" + body) == Commit(lsn, lsn + 40, PG_EPOCH_MS + micros // 1000)


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=10).filter(lambda s: "\0" not in s),
            st.integers(0, 2**32 - 1),
            st.integers(-1, 2**31 - 1),
            st.booleans(),
        ),
        max_size=8,
    ),  # fmt: skip
    st.sampled_from("dfin"),
)
def test_relation(columns: list[tuple[str, int, int, bool]], identity: str) -> None:
    body = struct.pack(">I", 16384) + cstr("public") + cstr("t") + identity.encode()
    body += struct.pack(">h", len(columns))
    for name, oid, typmod, key in columns:
        body += bytes([1 if key else 0]) + cstr(name) + struct.pack(">Ii", oid, typmod)
    assert decode(b"R" + body) == Relation(
        16384, "public", "t", identity, tuple(RelationColumn(*c) for c in columns)
    )


@given(st.lists(values, max_size=10), st.lists(values, max_size=10), st.sampled_from("KO"))
def test_row_changes(new: list[object], old: list[object], kind: str) -> None:
    rel = struct.pack(">I", 7)
    new_t, old_t = tuple(new), tuple(old)
    assert decode(b"I" + rel + b"N" + tuple_data(new_t)) == Insert(7, new_t)
    assert decode(b"U" + rel + b"N" + tuple_data(new_t)) == Update(7, None, False, new_t)
    both = b"U" + rel + kind.encode() + tuple_data(old_t) + b"N" + tuple_data(new_t)
    assert decode(both) == Update(7, old_t, kind == "K", new_t)
    assert decode(b"D" + rel + kind.encode() + tuple_data(old_t)) == Delete(7, old_t, kind == "K")


def test_truncate() -> None:
    body = struct.pack(">ib", 2, 3) + struct.pack(">II", 5, 6)
    assert decode(b"T" + body) == Truncate((5, 6), True, True)


def test_every_truncation_is_an_error_not_a_guess() -> None:
    message = b"U" + struct.pack(">I", 7) + b"O" + tuple_data((b"abc", None)) + b"N"
    message += tuple_data((b"abcd", UNCHANGED))
    for cut in range(1, len(message)):
        with pytest.raises(PgoutputError):
            decode(message[:cut])


def test_unknown_messages_and_binary_values_are_refused_by_name() -> None:
    with pytest.raises(PgoutputError, match="'S'"):
        decode(b"S\0\0\0\1")  # a stream start: protocol 2, never asked for
    with pytest.raises(PgoutputError, match="binary"):
        decode(b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"b")


@given(st.integers(0, 2**64 - 1))
def test_lsn_text_round_trip(lsn: int) -> None:
    assert parse_lsn(lsn_text(lsn)) == lsn


def test_lsn_spellings() -> None:
    assert lsn_text(0x16B374D848) == "16/B374D848"
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("123") == 123
    for bad in ("0/", "/1", "x/1", "zz"):
        with pytest.raises(ValueError):
            parse_lsn(bad)
