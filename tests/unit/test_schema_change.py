"""SchemaChange records on the wire, and what the MySQL writer plans for them."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import SchemaChange, SourcePosition
from schemas.registry import InMemorySchemaRegistry
from schemas.serde import EventSerde
from schemas.table import Column, TableSchema
from sink_connectors.mysql.evolve import holds, plan_change, widens


def col(name: str, column_type: str, **kw: Any) -> Column:
    return Column(name, column_type.split("(")[0].split(" ")[0].lower(), column_type, **kw)


def table(*columns: Column, db: str = "src", name: str = "t", version: int = 1) -> TableSchema:
    return TableSchema(db, name, columns, ("id",), version)


def change(new: TableSchema | None, ddl: str = "ALTER TABLE t ...") -> SchemaChange:
    pos = SourcePosition("reader-0", file="binlog.000007", pos=1234, gtid="0-1-9", seq=5)
    return SchemaChange("src", "t", ddl, new, pos, 1_700_000_000_000)


ID = col("id", "bigint", nullable=False)


@pytest.mark.parametrize(
    "new",
    [
        table(ID, col("v", "varchar(10)", character_set="utf8mb4"), version=3),
        None,  # dropped
    ],
)
def test_schema_change_round_trips_through_the_serde(new: TableSchema | None):
    serde = EventSerde(InMemorySchemaRegistry())
    record = change(new)
    assert serde.decode(serde.encode(record)) == record


def test_evolve_adds_new_columns_in_place_and_widens():
    target = table(ID, col("v", "varchar(10)"), col("n", "int"), db="dst")
    source = table(
        ID,
        col("v", "varchar(100)", character_set="utf8mb4"),
        col("note", "text", character_set="utf8mb4", nullable=False),
        col("n", "bigint"),
        version=2,
    )
    plan = plan_change(change(source), target)
    assert plan.statements == (
        "ALTER TABLE `dst`.`t` MODIFY COLUMN IF EXISTS `v` varchar(100) CHARACTER SET utf8mb4 NULL",
        "ALTER TABLE `dst`.`t` ADD COLUMN IF NOT EXISTS `note` text CHARACTER SET utf8mb4 NULL "
        "AFTER `v`",
        "ALTER TABLE `dst`.`t` MODIFY COLUMN IF EXISTS `n` bigint NULL",
    )
    assert plan.ignored == ()


def test_evolve_keeps_dropped_columns_and_ignores_truncate_and_drop():
    target = table(ID, col("old", "int"), db="dst")
    plan = plan_change(change(table(ID)), target)
    assert plan.statements == ()
    assert "target columns old are no longer in the source; kept" in plan.ignored[0]
    assert "binlog.000007:1234" in plan.ignored[0]
    assert "TRUNCATE" in plan_change(change(table(ID), "TRUNCATE t"), target).ignored[0]
    assert "dropped" in plan_change(change(None, "DROP TABLE t"), target).ignored[0]


@pytest.mark.parametrize(
    ("have", "new", "wider"),
    [
        ("int", "bigint", True),
        ("bigint", "int", False),
        ("int unsigned", "bigint", False),
        ("varchar(10)", "varchar(11)", True),
        ("varchar(10)", "varchar(5)", False),
        ("decimal(10,2)", "decimal(12,2)", True),
        ("decimal(10,2)", "decimal(10,4)", False),  # fewer integer digits
        ("datetime", "datetime(6)", True),
        ("enum('a','b')", "enum('a','b','c')", True),
        ("enum('a','b')", "enum('b','a')", False),
        ("text", "longtext", True),
        ("varchar(10)", "text", False),  # another family: the target was declared so
    ],
)
def test_widens(have: str, new: str, wider: bool):
    assert widens(col("c", have), col("c", new)) is wider


def test_schema_change_keeps_the_schema_before_it_on_the_wire():
    serde = EventSerde(InMemorySchemaRegistry())
    old = table(ID, col("n", "int(11)"), version=1)
    new = table(ID, col("n", "varchar(20)", character_set="utf8mb4"), version=2)
    record = change(new, "ALTER TABLE t MODIFY n VARCHAR(20)")
    with_old = SchemaChange("src", "t", record.ddl, new, record.source, record.ts_ms, old)
    assert serde.decode(serde.encode(with_old)) == with_old


def changed(old: TableSchema | None, new: TableSchema) -> SchemaChange:
    pos = SourcePosition("reader-0", file="binlog.000007", pos=1234)
    return SchemaChange("src", "t", "ALTER TABLE t ...", new, pos, 0, old)


INT_N, VARCHAR_N = col("n", "int(11)"), col("n", "varchar(20)", character_set="utf8mb4")
MODIFY_N = (
    "ALTER TABLE `dst`.`t` MODIFY COLUMN IF EXISTS `n` varchar(20) CHARACTER SET utf8mb4 NULL"
)


@pytest.mark.parametrize("old", [table(ID, INT_N), None])  # None: the reader had not met it
def test_a_type_the_source_changed_is_followed_by_a_target_that_had_the_old_one(old):
    target = table(ID, col("n", "int(11)"), db="dst")
    assert plan_change(changed(old, table(ID, VARCHAR_N, version=2)), target).statements == (
        MODIFY_N,
    )


def test_a_target_declared_otherwise_follows_only_what_it_cannot_hold():
    old, new = table(ID, INT_N), table(ID, col("n", "bigint(20)"), version=2)
    as_text = table(ID, col("n", "varchar(64)"), db="dst")  # holds any BIGINT as text
    assert plan_change(changed(old, new), as_text).statements == ()
    too_short = table(ID, col("n", "varchar(8)"), db="dst")
    assert plan_change(changed(old, new), too_short).statements == (
        "ALTER TABLE `dst`.`t` MODIFY COLUMN IF EXISTS `n` bigint(20) NULL",
    )
    # a change elsewhere leaves a column declared otherwise alone, whatever it holds
    wider = table(ID, INT_N, col("x", "int(11)"), version=2)
    narrow = table(ID, col("n", "varchar(5)"), col("x", "int(11)"), db="dst")
    assert plan_change(changed(table(ID, INT_N), wider), narrow).statements == ()


@pytest.mark.parametrize(
    ("have", "new", "held"),
    [
        ("int(11)", "int", True),  # display width only
        ("bigint", "int unsigned", True),
        ("int", "int unsigned", False),
        ("varchar(64)", "int", True),
        ("varchar(10)", "bigint", False),  # 20 characters
        ("text", "varchar(30)", True),
        ("char(30)", "varchar(20)", False),  # CHAR drops trailing spaces
        ("int", "varchar(20)", False),
        ("binary(8)", "binary(4)", False),  # BINARY pads
        ("varbinary(8)", "binary(4)", True),
        ("datetime(6)", "datetime", True),
        ("double", "float", True),
        ("varchar(30)", "datetime(6)", True),
        ("decimal(12,2)", "decimal(10,2)", True),
    ],
)
def test_holds(have: str, new: str, held: bool):
    assert holds(col("c", have), col("c", new)) is held
