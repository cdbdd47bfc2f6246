"""Schema history lookups and the MySQL sink's plans for DDL beyond ADD/MODIFY COLUMN, without
servers (the real-server tests are tests/integration/test_binlog_history.py and
test_binlog_ddl.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE

from schemas.events import SchemaChange, SourcePosition
from schemas.table import Column, TableSchema
from sink_connectors.mysql.evolve import plan_change, plan_create
from source_connectors.mysql.binlog_history import HistoryEntry, SchemaHistory, history_topic
from source_connectors.mysql.binlog_schema import SchemaTracker, TrackedTable
from source_connectors.mysql.binlog_table_map import mismatch


def table(*columns: Column, key: tuple[str, ...] = ("id",), db: str = "db") -> TableSchema:
    return TableSchema(db, "t", columns, key)


ID = Column("id", "int", "int(11)", nullable=False)
V20 = Column("v", "varchar", "varchar(20)", nullable=False, character_set="utf8mb4")
GONE = Column("gone", "int", "int(10) unsigned")
EXTRA = Column("extra", "varchar", "varchar(5)", character_set="utf8mb4")


def history(*entries: HistoryEntry) -> SchemaHistory:
    h = SchemaHistory(None, "h:3306")
    for e in entries:
        h._add(e)
    return h


def entry(file: str, pos: int, before: TableSchema | None, after: TableSchema | None) -> Any:
    return HistoryEntry.of("db", "t", (file, pos), "0-1-9", "ALTER ...", before, after)


V1, V2, V3 = table(ID, V20, GONE), table(ID, V20), table(ID, V20, EXTRA)
DROP = entry("binlog.000002", 900, V1, V2)
ADD = entry("binlog.000003", 120, V2, V3)


def names(data: dict[str, Any] | None) -> list[str] | None:
    return None if data is None else [c["name"] for c in data["columns"]]


def test_topic_name_is_per_server():
    assert history_topic("db-1.example:3306") == "sluice-schema-history-db-1.example_3306"


def test_schema_at_a_position_is_after_the_last_ddl_before_it():
    h = history(ADD, DROP)  # out of order: kept sorted by position
    assert names(h.columns_at("db", "t", ("binlog.000001", 99999))) == ["id", "v", "gone"]
    assert names(h.columns_at("db", "t", ("binlog.000002", 899))) == ["id", "v", "gone"]
    assert names(h.columns_at("db", "t", ("binlog.000002", 901))) == ["id", "v"]
    assert names(h.columns_at("db", "t", ("binlog.000003", 4))) == ["id", "v"]
    assert names(h.columns_at("db", "t", ("binlog.000003", 500))) == ["id", "v", "extra"]
    assert h.columns_at("db", "other", ("binlog.000003", 500)) is None
    assert h.exact("db", "t", ("binlog.000002", 900)) == DROP
    assert h.next_after("db", "t", ("binlog.000002", 900)) == ADD
    assert h.next_after("db", "t", ("binlog.000003", 120)) is None


def test_a_recorded_schema_round_trips_exactly():
    assert DROP.schema_before(5) == TableSchema("db", "t", V1.columns, ("id",), 5)
    assert ADD.schema_after(2) == TableSchema("db", "t", V3.columns, ("id",), 2)
    assert entry("binlog.000004", 4, V3, None).schema_after(3) is None


class NoServer:
    def cursor(self) -> Any:
        raise AssertionError("the history should have answered")


def test_tracker_replays_a_recorded_ddl_with_the_schema_it_produced():
    tracker = SchemaTracker(NoServer)
    tracker.history = history(DROP, ADD)
    # read again: the DROP's own record, not the live table (which has "extra" now)
    got = tracker.after_ddl("db", "t", ("binlog.000002", 900), "0-1-9", "ALTER ...")
    assert got is not None and got.column_names == ("id", "v")
    # a DDL between the two recorded ones: the next one's "before" says what it left
    got = tracker.after_ddl("db", "t", ("binlog.000002", 1500), "0-1-10", "OPTIMIZE ...")
    assert got is not None and got.column_names == ("id", "v") and got.version == 2


def change(new: TableSchema | None, ddl: str = "CREATE TABLE t (...)") -> SchemaChange:
    return SchemaChange("db", "t", ddl, new, SourcePosition("reader-0", file="b.1", pos=7), 0)


def test_create_table_copies_columns_and_key():
    plan = plan_create(change(table(ID, V20, EXTRA)), "dst", "t")
    assert plan.statements == (
        "CREATE TABLE IF NOT EXISTS `dst`.`t` (`id` int(11) NOT NULL, "
        "`v` varchar(20) CHARACTER SET utf8mb4 NOT NULL, "
        "`extra` varchar(5) CHARACTER SET utf8mb4 NULL, PRIMARY KEY (`id`)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    assert plan_create(change(None, "DROP TABLE t"), "dst", "t").statements == ()


def test_a_dropped_not_null_column_is_kept_and_made_nullable():
    note = Column("note", "varchar", "varchar(16)", nullable=False)
    target = table(ID, V20, note, db="dst")
    plan = plan_change(change(table(ID, V20), "ALTER TABLE t DROP COLUMN note"), target)
    assert plan.statements == (
        "ALTER TABLE `dst`.`t` MODIFY COLUMN IF EXISTS `note` varchar(16) NULL",
    )
    assert "note are no longer in the source; kept" in plan.ignored[0]
    # once NULL-able, meeting the change again (another partition) changes nothing
    relaxed = table(ID, V20, Column("note", "varchar", "varchar(16)"), db="dst")
    assert plan_change(change(table(ID, V20), "ALTER ..."), relaxed).statements == ()


# --- which schema fits a TABLE_MAP (issue 14 item 8) -----------------------------------------


def map_column(name: str, code: int, primary: bool = False, **kw: Any) -> Any:
    attrs = {"unsigned": False, "collation_name": None, "character_set_name": None}
    return SimpleNamespace(name=name, type=code, is_primary=primary, **{**attrs, **kw})


INT_MAP = SimpleNamespace(
    schema="db",
    table="t",
    columns=[map_column("id", FIELD_TYPE.LONG, True), map_column("n", FIELD_TYPE.LONG)],
)
VARCHAR_N = Column("n", "varchar", "varchar(20)", character_set="utf8mb4")
INT_N = Column("n", "int", "int(11)")
AS_VARCHAR, AS_INT = table(ID, VARCHAR_N), table(ID, INT_N)


def test_a_schema_with_the_event_s_names_but_other_types_does_not_fit():
    assert mismatch(AS_INT, INT_MAP) is None
    assert mismatch(AS_VARCHAR, INT_MAP) == "column n: binlog type 3, not varchar(20)"
    assert mismatch(table(ID), INT_MAP) == "2 columns, not 1"
    assert mismatch(table(ID, INT_N, key=("n",)), INT_MAP) == "primary key (id), not (n)"
    assert mismatch(AS_INT, INT_MAP, (False, False)) == "column n: NOT NULL"
    unsigned = table(ID, Column("n", "int", "int(10) unsigned"))
    assert mismatch(unsigned, INT_MAP) == "column n: signedness differs"
    utf8 = {"collation_name": "utf8mb4_general_ci", "max_length": 80}
    text_map = SimpleNamespace(
        columns=[map_column("id", FIELD_TYPE.LONG, True), map_column("n", 15, **utf8)]
    )
    assert mismatch(AS_VARCHAR, text_map) is None
    wider = table(ID, Column("n", "varchar", "varchar(40)", character_set="utf8mb4"))
    assert mismatch(wider, text_map) == "column n: 80 bytes long, not varchar(40)"
    latin1 = table(ID, Column("n", "varchar", "varchar(80)", character_set="latin1"))
    assert mismatch(latin1, text_map) == "column n: charset utf8mb4, not latin1"


class LiveTable:
    """A tracker whose information_schema says ``live`` (and counts the look-ups)."""

    def __init__(self, live: TableSchema | None) -> None:
        self.live, self.loads = live, 0

    def __call__(self, db: str, name: str, version: int) -> TableSchema | None:
        self.loads += 1
        if self.live is None:
            return None
        return TableSchema(db, name, self.live.columns, self.live.primary_key, version)


def tracker_with(live: TableSchema | None, *entries: HistoryEntry) -> SchemaTracker:
    tracker = SchemaTracker(NoServer)
    tracker._load = LiveTable(live)  # type: ignore[method-assign]
    tracker.history = history(*entries)
    return tracker


def test_rows_written_before_a_modify_decode_with_the_old_types():
    modify = entry("binlog.000002", 900, AS_INT, AS_VARCHAR)
    # read long after the ALTER: the live table is VARCHAR, the history says INT before it
    tracker = tracker_with(AS_VARCHAR, modify)
    got = tracker.for_event("db", "t", INT_MAP, ("binlog.000002", 500))
    assert got.schema.columns == AS_INT.columns
    # without any history: not the live VARCHAR either, the binlog's own INT
    tracker = tracker_with(AS_VARCHAR)
    got = tracker.for_event("db", "t", INT_MAP, ("binlog.000002", 500), (False, True))
    assert [(c.name, c.column_type, c.nullable) for c in got.schema.columns] == [
        ("id", "int", False),
        ("n", "int", True),
    ]
    # the same TABLE_MAP again: held, no second look-up
    loads = tracker._load.loads  # type: ignore[attr-defined]
    assert tracker.for_event("db", "t", INT_MAP, ("binlog.000002", 600)) is got
    assert tracker._load.loads == loads  # type: ignore[attr-defined]


def test_a_table_created_again_is_not_read_with_the_history_of_the_old_one():
    # a job recorded the MODIFY; the table was then dropped and created again as INT while
    # no reader ran: the history's last word (VARCHAR) does not fit, the live table does
    tracker = tracker_with(AS_INT, entry("binlog.000002", 900, AS_INT, AS_VARCHAR))
    got = tracker.for_event("db", "t", INT_MAP, ("binlog.000005", 4))
    assert got.schema.columns == AS_INT.columns and got.schema.primary_key == ("id",)


def test_a_dropped_table_has_no_schema_after_its_drop():
    # replayed while a table of that name exists again: not the live one
    tracker = tracker_with(AS_INT)
    assert tracker.history is not None
    tracker.history.record = tracker.history._add  # type: ignore[method-assign]  # no Kafka
    tracker.tables[("db", "t")] = TrackedTable(AS_VARCHAR)
    got = tracker.after_ddl("db", "t", ("binlog.000003", 50), "0-1-11", "DROP TABLE t", True)
    assert got is None and ("db", "t") not in tracker.tables
    assert tracker._load.loads == 0  # type: ignore[attr-defined]
    recorded = tracker.history.exact("db", "t", ("binlog.000003", 50))
    assert recorded is not None and recorded.after is None and names(recorded.before) == ["id", "n"]
