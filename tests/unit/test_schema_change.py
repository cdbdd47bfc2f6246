"""SchemaChange records on the wire, and what the MySQL writer plans for them."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import SchemaChange, SourcePosition
from schemas.registry import InMemorySchemaRegistry
from schemas.serde import EventSerde
from schemas.table import Column, TableSchema
from sink_connectors.mysql.evolve import plan_change, widens


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
