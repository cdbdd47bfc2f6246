"""The binlog reader's pieces without servers: transaction-boundary batching, DDL parsing,
table filters, skip lists, config and messages (row values: ``test_binlog_rows.py``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from coordinator.errors import ConfigError
from coordinator.job import JobConfigError, build_job
from schemas.events import Op, SchemaChange
from schemas.table import Column, TableSchema
from source_connectors.mysql.binlog_config import BinlogReaderConfig
from source_connectors.mysql.binlog_lean import LeanRows
from source_connectors.mysql.binlog_schema import TableFilter, TrackedTable, ddl_tables
from source_connectors.mysql.binlog_server import settings_problem
from source_connectors.mysql.binlog_snapshot import SkipList
from source_connectors.mysql.binlog_stream import BinlogStream, StreamPosition


def col(name: str, column_type: str, **kw: Any) -> Column:
    data_type = column_type.split("(")[0].split(" ")[0].lower()
    return Column(name, data_type, column_type, **kw)


# --- transaction boundaries -------------------------------------------------------------------

TABLE = TableSchema("db", "t", (col("id", "int", nullable=False), col("v", "varchar(10)")), ("id",))


def event(cls: type, end: int, size: int = 10, ts: int = 1_700_000_000, **attrs: Any) -> Any:
    ev = object.__new__(cls)
    ev.packet = SimpleNamespace(log_pos=end, event_size=size)
    ev.timestamp = ts
    for k, v in attrs.items():
        # RowsEvent.rows is a property over the rows the library decoded
        setattr(ev, "_RowsEvent__rows" if k == "rows" else k, v)
    return ev


def gtid(end: int, seq: int, flags: int = 0) -> Any:
    return event(MariadbGtidEvent, end, gtid=f"0-1-{seq}", flags=flags)


# The TABLE_MAP of TABLE, as mysql-replication parses it.
MAP_TABLE = SimpleNamespace(
    schema="db",
    table="t",
    columns=[
        SimpleNamespace(name="id", type=FIELD_TYPE.LONG, unsigned=False),
        SimpleNamespace(
            name="v", type=FIELD_TYPE.VARCHAR, max_length=40, character_set_name="utf8mb4"
        ),
    ],
)


def image(row: tuple[int, str | None]) -> bytes:
    """A row image of TABLE: the null bitmap, INT as 4 bytes, VARCHAR as length + UTF-8."""
    key, text = row
    body = key.to_bytes(4, "little", signed=True)
    if text is None:
        return b"\x02" + body
    return b"\x00" + body + bytes([len(text.encode())]) + text.encode()


def rows(cls: type, end: int, *images: Any, table: str = "t") -> LeanRows:
    """A rows event as the lean reader frames it: where its row images are."""
    mapped = SimpleNamespace(**{**vars(MAP_TABLE), "table": table})
    ev = LeanRows(cls, 1, {1: mapped}, mapped)
    ev.timestamp, ev.log_pos, ev.event_size = 1_700_000_000, end, 10
    flat = [i for pair in images for i in pair] if cls is UpdateRowsEvent else list(images)
    ev.data = b"header" + b"".join(image(i) for i in flat) + b"CRC!"
    ev.start, ev.end = 6, len(ev.data) - 4
    return ev


def query(end: int, text: str) -> Any:
    return event(QueryEvent, end, query=text, schema=b"db")


class FakeTracker:
    def __init__(self) -> None:
        self.version = 1
        self.tables: dict[tuple[str, str], TrackedTable] = {}

    def for_event(
        self, db: str, table: str, map_table: Any, at: Any = None, nullable: Any = None
    ) -> TrackedTable:
        return TrackedTable(TABLE)

    def after_ddl(self, db: str, table: str, *_position: Any) -> TableSchema:
        self.version += 1
        return TableSchema(db, table, TABLE.columns, TABLE.primary_key, self.version)


def stream(events: list[Any], ops: set[Op] | None = None) -> BinlogStream:
    s = BinlogStream(
        settings={},
        server_id=7,
        server="h:3306",
        user="u",
        task="reader-0",
        tables=TableFilter(["t"], "db", None, []),
        tracker=FakeTracker(),  # type: ignore[arg-type]
        ops=ops or {Op.INSERT, Op.UPDATE, Op.DELETE},
        position=StreamPosition("binlog.000001", 4),
        seq=0,
        skip=SkipList({}),
        idle_s=0,
    )
    feed = iter(events)
    reader = SimpleNamespace(fetchone=lambda: next(feed, None), close=lambda: None)
    s._open = lambda: reader  # type: ignore[method-assign]
    return s


def test_rows_are_handed_over_only_with_their_commit():
    s = stream(
        [
            event(RotateEvent, 0, ts=0, next_binlog="binlog.000001", position=4),
            gtid(100, 41),
            rows(WriteRowsEvent, 200, (1, "a"), (2, "b")),
            rows(UpdateRowsEvent, 300, ((1, "a"), (1, "A"))),
            event(XidEvent, 330),
            gtid(400, 42),
            rows(DeleteRowsEvent, 500, (2, "b")),
        ]
    )
    batch = s.read_batch(max_events=100, max_seconds=10)
    assert [(e.op, e.before, e.after) for e in batch] == [
        (Op.INSERT, None, (1, "a")),
        (Op.INSERT, None, (2, "b")),
        (Op.UPDATE, (1, "a"), (1, "A")),
    ]
    first = batch[0].source
    assert (first.file, first.pos, first.gtid, first.row, first.seq) == (
        "binlog.000001",
        190,
        "0-1-41",
        0,
        1,
    )
    assert [e.source.row for e in batch] == [0, 1, 0]
    # The delete's transaction never committed in what was read: not handed over, its
    # sequence numbers are given again, and streaming resumes after the last commit.
    assert (s.position.file, s.position.pos, s.position.gtid) == ("binlog.000001", 330, "0-1-41")
    assert s.seq == 3


def test_a_batch_ends_right_after_a_ddl_with_its_schema_change():
    s = stream(
        [
            gtid(100, 1),
            rows(WriteRowsEvent, 200, (1, "a")),
            event(XidEvent, 230),
            gtid(300, 2, flags=1),  # FL_STANDALONE
            query(400, "ALTER TABLE t ADD COLUMN x INT"),
            gtid(500, 3),
            rows(WriteRowsEvent, 600, (2, "b")),
            event(XidEvent, 630),
        ]
    )
    batch = s.read_batch(max_events=100, max_seconds=10)
    assert [e.after for e in batch] == [(1, "a")]
    (change,) = s.schema_changes
    assert isinstance(change, SchemaChange)
    assert (change.qualified_name, change.ddl, change.new_schema.version) == (  # type: ignore[union-attr]
        "db.t",
        "ALTER TABLE t ADD COLUMN x INT",
        2,
    )
    assert (change.source.pos, change.source.gtid) == (390, "0-1-2")
    assert s.position.pos == 400
    s.schema_changes.clear()
    assert [e.after for e in s.read_batch(100, 10)] == [(2, "b")]


def test_uncaptured_tables_kinds_and_rolled_back_statements():
    s = stream(
        [
            gtid(100, 1),
            rows(WriteRowsEvent, 200, (1, "a"), table="other"),
            rows(DeleteRowsEvent, 300, (1, "a")),
            query(330, "COMMIT"),
            query(400, "GRANT SELECT ON *.* TO x"),  # a standalone statement: a boundary
        ],
        ops={Op.INSERT},
    )
    assert s.read_batch(100, 10) == []
    assert s.position.pos == 400


def test_a_statement_logged_change_of_a_captured_table_is_refused():
    s = stream([gtid(100, 1), query(200, "INSERT INTO t VALUES (1, 'a')")])
    with pytest.raises(
        ConfigError, match=r"logged a change of db\.t as a statement.*binlog_format=ROW"
    ):
        s.read_batch(100, 10)


def test_a_real_rotation_moves_the_position_to_the_next_file():
    s = stream([event(RotateEvent, 0, ts=1, next_binlog="binlog.000002", position=4)])
    s.read_batch(100, 10)
    assert (s.position.file, s.position.pos) == ("binlog.000002", 4)


# --- DDL, filters, skip lists --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER TABLE t ADD c INT", ("ALTER", [("db", "t")])),
        ("alter online table `x``y`.`t 2` drop c", ("ALTER", [("x`y", "t 2")])),
        ("CREATE TABLE IF NOT EXISTS o.n (id int)", ("CREATE", [("o", "n")])),
        (
            "DROP TABLE IF EXISTS a, o.b /* generated by server */",
            ("DROP", [("db", "a"), ("o", "b")]),
        ),
        (
            "RENAME TABLE a TO b, c TO o.d",
            ("RENAME", [("db", "a"), ("db", "b"), ("db", "c"), ("o", "d")]),
        ),
        ("TRUNCATE t", ("TRUNCATE", [("db", "t")])),
        ("/* x */ TRUNCATE TABLE o.t", ("TRUNCATE", [("o", "t")])),
        ("INSERT INTO t VALUES (1)", None),
        ("CREATE USER u", None),
    ],
)
def test_ddl_tables(sql: str, expected: Any):
    assert ddl_tables(sql, "db") == expected


def test_table_filter():
    f = TableFilter(["t", "o.u"], "db", r"db\.log_\d+", [r".*\.log_0"])
    assert f("db", "t") and f("o", "u") and f("db", "log_7")
    assert not f("o", "t") and not f("db", "log_0") and not f("db", "logs")
    assert TableFilter(["t"], "db", None, []).explicit_only


def test_skip_list_covers_rows_read_by_a_later_snapshot():
    skip = SkipList({})
    skip.add("db.t", [100], ("b.2", 50))  # rows after key 100 were read at b.2:50
    skip.add("db.u", None, ("b.3", 10))
    assert skip.covers("db.t", [101], ("b.2", 49))
    assert not skip.covers("db.t", [101], ("b.2", 50))
    assert not skip.covers("db.t", [100], ("b.1", 9))
    assert skip.covers("db.u", [1], ("b.2", 99))
    again = SkipList.from_json(skip.to_json())
    assert again.entries == skip.entries
    again.prune(("b.2", 60))
    assert list(again.entries) == ["db.u"]


# --- config and messages ----------------------------------------------------------------------


def job(**reader: Any) -> dict[str, Any]:
    parameter = {"jdbcUrl": "jdbc:mysql://h:3306/db", "table": ["t"], **reader}
    return {
        "job": {
            "name": "cdc",
            "content": [
                {
                    "reader": {"name": "binlogreader", "parameter": parameter},
                    "writer": {"name": "streamwriter", "parameter": {}},
                }
            ],
            "setting": {"speed": {"readerChannel": 1}, "delivery": "at-least-once"},
        }
    }


def test_config_flinkx_keys():
    cfg = build_job(
        job(
            cat="insert, delete",
            start={"journalName": "mysql-bin.000003", "position": 120},
            slaveId=9,
            host="other",
        )
    ).reader.config
    assert isinstance(cfg, BinlogReaderConfig)
    assert cfg.cat == ["insert", "delete"]
    assert cfg.start.effective_mode == "file"
    assert cfg.server_id("cdc") == 9
    assert (cfg.url.host, cfg.url.port, cfg.url.database) == ("other", 3306, "db")
    derived = build_job(job()).reader.config.server_id("cdc")
    assert derived == build_job(job()).reader.config.server_id("cdc") != 9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": {"mode": "initial", "gtid": "0-1-2"}}, "give one way to start"),
        ({"start": {"position": 4}}, '"position" needs "journalName"'),
        ({"start": {"gtid": "abc"}}, "not a MariaDB GTID"),
        ({"cat": "insert,upsert"}, "expected a list of insert, update, delete"),
        ({"table": [], "jdbcUrl": None}, "give the server"),
    ],
)
def test_config_problems(change: dict[str, Any], message: str):
    with pytest.raises(JobConfigError, match=message):
        build_job(job(**change))


def test_more_than_one_reader_channel_is_refused():
    spec = job()
    spec["job"]["setting"]["speed"] = {"channel": 2}
    with pytest.raises(JobConfigError, match="set setting.speed.readerChannel to 1"):
        build_job(spec)


def test_server_setting_messages_say_what_to_change():
    good = {
        "log_bin": "1",
        "binlog_format": "ROW",
        "binlog_row_image": "FULL",
        "binlog_row_metadata": "FULL",
    }
    assert settings_problem(good, "h:3306") is None
    message = settings_problem({**good, "binlog_format": "STATEMENT"}, "h:3306")
    assert message is not None and "\n" not in message
    assert "binlog_format is STATEMENT on h:3306" in message
    assert "SET GLOBAL binlog_format=ROW" in message and "my.cnf" in message
    assert "binlog_row_image=FULL" in (
        settings_problem({**good, "binlog_row_image": "MINIMAL"}, "h") or ""
    )
    assert "binary logging is off" in (settings_problem({**good, "log_bin": "0"}, "h") or "")
