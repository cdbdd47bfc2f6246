"""Kafka keys of row events: each key's history must stay in one partition, so an update
that changes the primary key is split into a DELETE under the old key and an INSERT under
the new one (the integration test shows the loss this prevents with two writers)."""

from __future__ import annotations

from coordinator.reader_task import record_key, split_key_change
from schemas.events import Op, RowEvent, SourcePosition
from schemas.table import Column, TableSchema

TABLE = TableSchema(
    "d",
    "t",
    (Column("a", "int", "int"), Column("b", "int", "int"), Column("v", "varchar", "varchar(9)")),
    primary_key=("a", "b"),
)
AT = SourcePosition("reader-0", seq=7)


def update(before: tuple, after: tuple) -> RowEvent:
    return RowEvent(Op.UPDATE, TABLE, before, after, AT, 0)


def test_an_update_in_place_is_published_whole_under_its_key() -> None:
    ev = update((1, 2, "x"), (1, 2, "y"))
    assert record_key(ev) == b"1\x1f2"
    assert split_key_change(ev, record_key(ev)) is None


def test_a_key_change_is_a_delete_under_the_old_key() -> None:
    ev = update((1, 2, "x"), (1, 3, "x"))
    new_key = record_key(ev)
    assert new_key == b"1\x1f3"
    split = split_key_change(ev, new_key)
    assert split is not None
    delete, old_key = split
    assert old_key == b"1\x1f2"
    assert (delete.op, delete.before, delete.after) == (Op.DELETE, (1, 2, "x"), None)
    assert delete.source == AT  # same source position: one source change, one transaction


def test_inserts_deletes_and_keyless_tables_are_never_split() -> None:
    for ev in (
        RowEvent(Op.INSERT, TABLE, None, (1, 2, "x"), AT, 0),
        RowEvent(Op.DELETE, TABLE, (1, 2, "x"), None, AT, 0),
    ):
        assert split_key_change(ev, record_key(ev)) is None
    keyless = TableSchema("d", "k", TABLE.columns)
    ev = RowEvent(Op.UPDATE, keyless, (1, 2, "x"), (5, 6, "y"), AT, 0)
    assert record_key(ev) is None and split_key_change(ev, None) is None
