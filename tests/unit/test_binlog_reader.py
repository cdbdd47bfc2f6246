"""The binlog reader's pieces without servers: value repair, exact temporal decoding,
transaction-boundary batching, DDL parsing, table filters, skip lists, config and messages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from coordinator.errors import ConfigError
from coordinator.job import JobConfigError, build_job
from schemas.events import Op, SchemaChange
from schemas.table import Column, TableSchema
from source_connectors.mysql import binlog_values as values
from source_connectors.mysql.binlog_config import BinlogReaderConfig
from source_connectors.mysql.binlog_schema import TableFilter, TrackedTable, ddl_tables
from source_connectors.mysql.binlog_server import settings_problem
from source_connectors.mysql.binlog_snapshot import SkipList
from source_connectors.mysql.binlog_stream import BinlogStream, StreamPosition


def col(name: str, column_type: str, **kw: Any) -> Column:
    data_type = column_type.split("(")[0].split(" ")[0].lower()
    return Column(name, data_type, column_type, **kw)


# --- values ------------------------------------------------------------------------------------


def test_row_converter_gives_pymysql_values():
    table = TableSchema(
        "db",
        "t",
        (
            col("id", "bigint unsigned"),
            col("u8", "tinyint unsigned"),
            col("st", "set('a','b','c')"),
            col("st0", "set('a','b')"),
            col("bits", "bit(10)"),
            col("bn", "binary(4)"),
            col("vb", "varbinary(8)"),
            col("yr", "year"),
            col("ts", "timestamp(3)", datetime_precision=3),
            col("vc", "varchar(10)"),
        ),
    )
    convert = values.row_converter(table)
    row = {
        "id": -1,  # an unsigned BIGINT the library read as signed
        "u8": 255,
        "st": {"c", "a"},
        "st0": None,
        "bits": "1000000001",
        "bn": b"\x01",
        "vb": "",
        "yr": 1900,
        "ts": datetime(1970, 1, 1),
        "vc": "x",
    }
    got = convert(row, {"st0": "empty set"})
    assert got == (
        2**64 - 1,
        255,
        "a,c",
        "",
        b"\x02\x01",
        b"\x01\x00\x00\x00",
        b"",
        0,
        "0000-00-00 00:00:00.000",
        "x",
    )
    # NULL stays NULL, an empty SET only when the library says so
    assert convert(dict.fromkeys(row), {})[3] is None


def test_row_converter_refuses_a_row_of_another_width():
    convert = values.row_converter(TableSchema("db", "t", (col("a", "int"),)))
    with pytest.raises(ValueError, match="2 columns, table has 1"):
        convert({"a": 1, "b": 2}, {})


class FakePacket:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def read_uint24(self) -> int:
        return int.from_bytes(self.read(3), "little")


def decode(fn: Any, data: bytes, fsp: int | None = None) -> Any:
    event = SimpleNamespace(packet=FakePacket(data))
    result = fn(event) if fsp is None else fn(event, SimpleNamespace(fsp=fsp))
    assert event.packet.at == len(data), "read exactly the value's bytes"
    return result


def time2_bytes(value: timedelta, fsp: int) -> bytes:
    """MySQL's my_time_packed_to_binary (sql-common/my_time.c)."""
    micros = abs(value) // timedelta(microseconds=1)
    seconds, frac = divmod(micros, 10**6)
    hms = (seconds // 3600) << 12 | (seconds // 60 % 60) << 6 | seconds % 60
    packed = (hms << 24) + frac
    packed = -packed if value < timedelta(0) else packed
    size = (fsp + 1) // 2
    if size == 3:
        return (packed + 0x800000000000).to_bytes(6, "big")
    intpart = packed >> 24  # arithmetic: floor
    rest = abs(packed) % (1 << 24) * (-1 if packed < 0 else 1)  # C's %: sign of the dividend
    out = (intpart + 0x800000).to_bytes(3, "big")
    if size == 1:
        out += (rest // 10000 if rest >= 0 else -(-rest // 10000)).to_bytes(1, "big", signed=True)
    elif size == 2:
        out += (rest // 100 if rest >= 0 else -(-rest // 100)).to_bytes(2, "big", signed=True)
    return out


@pytest.mark.parametrize("fsp", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    "text",
    ["00:00:00", "838:59:59", "-838:59:59", "-00:00:00.5", "-01:02:03.25", "12:34:56.78"],
)
def test_time2_decodes_negative_fractions_exactly(text: str, fsp: int):
    sign = -1 if text.startswith("-") else 1
    h, m, s = text.lstrip("-").split(":")
    value = sign * timedelta(hours=int(h), minutes=int(m), seconds=float(s))
    value = sign * timedelta(microseconds=round(abs(value) / timedelta(microseconds=10 ** (6 - fsp))) * 10 ** (6 - fsp))  # fmt: skip
    assert decode(values._read_time2, time2_bytes(value, fsp), fsp) == value


def test_time2_smallest_negative_fraction():
    tiny = timedelta(microseconds=-1)
    assert decode(values._read_time2, time2_bytes(tiny, 6), 6) == tiny


def date_bytes(y: int, m: int, d: int) -> bytes:
    return (y << 9 | m << 5 | d).to_bytes(3, "little")


def test_dates_keep_zero_and_partial_values_as_text():
    assert decode(values._read_date, date_bytes(2024, 2, 29)) == date(2024, 2, 29)
    assert decode(values._read_date, date_bytes(0, 0, 0)) == "0000-00-00"
    assert decode(values._read_date, date_bytes(2020, 5, 0)) == "2020-05-00"


def datetime2_bytes(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: bytes) -> bytes:
    raw = (y * 13 + mo) << 22 | d << 17 | h << 12 | mi << 6 | s
    return (raw + 0x8000000000).to_bytes(5, "big") + frac


def test_datetime2_exact_and_zero():
    ok = datetime2_bytes(9999, 12, 31, 23, 59, 59, (999999).to_bytes(3, "big"))
    assert decode(values._read_datetime2, ok, 6) == datetime(9999, 12, 31, 23, 59, 59, 999999)
    zero = datetime2_bytes(0, 0, 0, 0, 0, 0, (0).to_bytes(2, "big"))
    assert decode(values._read_datetime2, zero, 3) == "0000-00-00 00:00:00.000"
    partial = datetime2_bytes(2020, 1, 0, 1, 2, 3, b"")
    assert decode(values._read_datetime2, partial, 0) == "2020-01-00 01:02:03"


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


def rows(cls: type, end: int, *images: Any, table: str = "t") -> Any:
    key = "values" if cls is not UpdateRowsEvent else None
    data = []
    for image in images:
        if key:
            data.append({key: dict(zip(("id", "v"), image, strict=True)), "none_sources": {}})
        else:
            before, after = image
            data.append(
                {
                    "before_values": dict(zip(("id", "v"), before, strict=True)),
                    "before_none_sources": {},
                    "after_values": dict(zip(("id", "v"), after, strict=True)),
                    "after_none_sources": {},
                }
            )
    return event(cls, end, schema="db", table=table, table_id=1, table_map={1: None}, rows=data)


def query(end: int, text: str) -> Any:
    return event(QueryEvent, end, query=text, schema=b"db")


class FakeTracker:
    def __init__(self) -> None:
        self.version = 1
        self.tables: dict[tuple[str, str], TrackedTable] = {}

    def for_event(
        self, db: str, table: str, map_table: Any, at: Any = None, nullable: Any = None
    ) -> TrackedTable:
        return TrackedTable(TABLE, values.row_converter(TABLE))

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
