"""The conformance kit (issue 15 item 5): every registered source and sink, against its real
server, through the same checks. A connector gets all of them by adding its case to
tests/conformance/cases.py.

Sources: every row read exactly once over all parts, with the values its server holds
(the all-types table for MySQL's readers); resumed from *every* position a part reported,
the rest of the part is exactly what followed that position; each bad parameter is one
line naming its JSON path, before anything is written.

Sinks: the all-types table's rows written and read back equal; for two-phase sinks a crash
(SIGKILL: the server connection cut, nothing cleaned up) at each phase of the commit, then a
new incarnation's recover(): the prepared transaction is committed exactly when Kafka
committed, and the target holds the rows once or not at all; bad parameters as for sources.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from coordinator.connectors import build_sink, build_source, check_connectors
from coordinator.errors import ConfigError, ConnectError
from coordinator.job import build_job
from coordinator.plugins import registered
from coordinator.state_store import KafkaStateStores
from schemas import types
from schemas.events import Op, RowEvent, SourcePosition
from schemas.introspect import load_table_schema
from schemas.table import TableSchema
from source_connectors.base import Source, SourcePartReader
from testkit.alltypes import create_all_types
from testkit.mysql import mysql_connect
from testkit.sinks import commit_once
from tests.conformance.cases import (
    SINKS,
    SOURCES,
    Row,
    SinkCase,
    SourceCase,
    event_rows,
    json_copy,
)

pytestmark = pytest.mark.integration

_F32 = struct.Struct("<f")
CAUGHT_UP_S = 0.3
"""An endless part that hands over nothing for this long has given everything it has."""


def test_every_registered_connector_has_a_case() -> None:
    readers = {p.name for p in registered("reader") if p.distribution.startswith("sluice")}
    writers = {p.name for p in registered("writer") if p.distribution.startswith("sluice")}
    assert readers == set(SOURCES), "add a SourceCase to tests/conformance/cases.py"
    assert writers == set(SINKS), "add a SinkCase to tests/conformance/cases.py"


@pytest.fixture(params=sorted(SOURCES))
def source_case(request: pytest.FixtureRequest) -> SourceCase:
    return SOURCES[request.param](request)


@pytest.fixture(params=sorted(SINKS))
def sink_case(request: pytest.FixtureRequest) -> SinkCase:
    return SINKS[request.param](request)


def _key(row: Row) -> str:
    return repr(row)


def _as_float32(v: Any) -> Any:
    return _F32.unpack(_F32.pack(v))[0] if isinstance(v, float) else v


def _canon(v: Any) -> Any:
    """A value NaN included: Decimal('NaN') and float('nan') equal nothing, themselves too."""
    if isinstance(v, list):
        return [_canon(x) for x in v]
    if isinstance(v, Decimal | float) and v != v:
        return ("NaN", type(v).__name__)
    return v


def assert_same_rows(got: list[Row], want: list[Row], table: TableSchema | None = None) -> None:
    """Equal as multisets, values and types; else the first row and column that differ.
    A float32 column's values compare as float32: MySQL prints FLOAT 3.40282e38 for the
    float32 a reader hands over as 3.402820018375656e+38, the same stored value."""
    if table is not None:
        f32 = [i for i, c in enumerate(table.columns) if c.logical.kind == types.FLOAT32]
        if f32:
            fix = lambda row: tuple(_as_float32(v) if i in f32 else v for i, v in enumerate(row))  # noqa: E731
            got, want = [fix(r) for r in got], [fix(r) for r in want]
    by_id = {row[0]: row for row in want}
    for row in got:
        other = by_id.get(row[0])
        assert other is not None, f"row {row[0]!r} read, not in the source"
        for i, (a, b) in enumerate(zip(row, other, strict=True)):
            same = _canon(a) == _canon(b) and type(a) is type(b)
            assert same, f"row {row[0]!r} column {i}: {a!r} != {b!r}"
    assert sorted(map(_key, got)) == sorted(map(_key, want))


# --- sources ---------------------------------------------------------------------------------


def _open(source: Source, part: str, task: str, position: dict[str, str] | None, bootstrap: str):
    reader = source.build_part(part, task, position)
    reader.attach_stores(KafkaStateStores(bootstrap))
    return reader


def _read(
    reader: SourcePartReader,
    endless: bool,
    want: Callable[[], int] | None = None,
    after_first: Callable[[], None] | None = None,
    timeout: float = 60,
) -> tuple[list[RowEvent], list[tuple[int, dict[str, str]]]]:
    """Every event of the part (an endless one: until ``want()`` events, then caught up),
    and after each batch (count so far, the position the part reported). ``after_first``
    runs once, after the first batch (a CDC case makes its changes then)."""
    events: list[RowEvent] = []
    positions: list[tuple[int, dict[str, str]]] = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while True:
        batch = reader.next_batch()
        if batch is None:
            assert not endless, "an endless part ended"
            return events, positions
        if batch:
            events.extend(batch)
            positions.append((len(events), reader.snapshot()))
            idle_since = time.monotonic()
            if after_first is not None:
                after_first()
                after_first = None
        elif (
            endless
            and want is not None
            and len(events) >= want()
            and time.monotonic() - idle_since >= CAUGHT_UP_S
        ):
            return events, positions
        assert time.monotonic() < deadline, f"{len(events)} events in {timeout}s"
        if not batch:
            time.sleep(0.01)


def _canon_rows(rows: list[Row]) -> list[Row]:
    return [tuple(_canon(v) for v in row) for row in rows]


def _first_difference(got: list[Row], want: list[Row]) -> str:
    for n, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y:
                    return f"row {n} (id {a[0]!r}) column {i}: {x!r} != {y!r}"
    return f"{len(got)} rows, not {len(want)}"


def test_a_source_reads_every_row_once_and_resumes_from_every_position(
    source_case: SourceCase, kafka_bootstrap: str
) -> None:
    case = source_case
    source = build_source(build_job(json_copy(case.job)))
    source.check()
    parts = source.list_parts()
    by_part: dict[str, tuple[list[RowEvent], list[tuple[int, dict[str, str]]]]] = {}
    for i, part in enumerate(parts):
        reader = _open(source, part, f"reader-{i}", None, kafka_bootstrap)
        want = (lambda: len(case.expected())) if case.endless else None
        by_part[part] = _read(reader, case.endless, want, case.before_read if i == 0 else None)
        reader.close()
    got = [row for events, _ in by_part.values() for row in event_rows(events)]
    want_rows = case.expected()
    assert len(got) == len(want_rows), f"{len(got)} rows read, the source holds {len(want_rows)}"
    assert_same_rows(got, want_rows, source.tables()[0] if source.tables() else None)
    resumed = 0
    for i, part in enumerate(parts):
        events, positions = by_part[part]
        for k, position in positions:
            reader = _open(source, part, f"reader-{i}", position, kafka_bootstrap)
            left = len(events) - k
            rest, _ = _read(reader, case.endless, lambda left=left: left)
            reader.close()
            got_rows, want_rows = _canon_rows(event_rows(rest)), _canon_rows(event_rows(events[k:]))
            assert got_rows == want_rows, (
                f"part {part} resumed from {position} (after {k} of {len(events)} events): "
                + _first_difference(got_rows, want_rows)
            )
            resumed += 1
    assert resumed >= len(parts)


def test_a_bad_source_parameter_is_one_line_naming_it(source_case: SourceCase) -> None:
    _refusals(source_case.job, "reader", source_case.bad)


def _refusals(job: dict[str, Any], side: str, bad: list[tuple[Any, str]]) -> None:
    assert bad, "a case names at least one bad parameter"
    for mutate, fragment in bad:
        doc = json_copy(job)
        mutate(doc["job"]["content"][0][side]["parameter"])
        with pytest.raises((ConfigError, ConnectError)) as refused:
            built = build_job(doc)
            check_connectors(build_source(built), build_sink(built))
        message = str(refused.value)
        assert fragment in message, message
        assert "\n" not in message and "Traceback" not in message, message


# --- sinks -----------------------------------------------------------------------------------


@pytest.fixture
def all_types(sink_case: SinkCase, request: pytest.FixtureRequest) -> tuple[Any, list[Row]]:
    """The all-types table (edge rows and 50 more) as a source: its schema and its rows —
    MySQL's, unless the sink brings its own family's."""
    from tests.conformance.cases import _mysql_rows

    if sink_case.all_types is not None:
        return sink_case.all_types()
    mysql_url = request.getfixturevalue("mysql_url")
    mysql_database = request.getfixturevalue("mysql_database")
    conn = mysql_connect(mysql_url, mysql_database)
    try:
        create_all_types(conn, mysql_database, "src", 50)
        table = load_table_schema(conn, mysql_database, "src")
    finally:
        conn.close()
    return table, _mysql_rows(mysql_url, mysql_database, "src")


def _sink_job(case: SinkCase, table: Any, name: str) -> Any:
    stream = {"column": [{"name": "id", "type": "id"}], "sliceRecordCount": 1}
    return build_job(
        {
            "job": {
                "name": name,
                "content": [
                    {
                        "reader": {"name": "streamreader", "parameter": stream},
                        "writer": case.writer(table),
                    }
                ],
            }
        }
    )


def _events(table: Any, rows: list[Row]) -> list[RowEvent]:
    return [
        RowEvent(Op.SNAPSHOT, table, None, row, SourcePosition("reader-0", seq=n), 0)
        for n, row in enumerate(rows, 1)
    ]


def test_a_sink_writes_the_all_types_rows_exactly(
    sink_case: SinkCase, all_types: tuple[Any, list[Row]], unique_name: str
) -> None:
    if not sink_case.two_phase:
        pytest.skip(f"{sink_case.name}: no target to read back (see its case)")
    table, rows = all_types
    sink = build_sink(_sink_job(sink_case, table, unique_name))
    sink.check()
    sink.check_input([table])
    writer = sink.build_writer("writer-0")
    xid = f"sl-{unique_name[-8:]}-writer-0-1"
    writer.recover(f"sl-{unique_name[-8:]}-writer-0-", lambda t: False)
    commit_once(writer, xid, _events(table, rows), {"t:0": len(rows)})
    back = sink_case.read_back(table)
    assert_same_rows(back, rows, table)


PHASES = ["before_pre_commit", "after_pre_commit", "after_kafka_commit", "after_sink_commit"]


@pytest.mark.parametrize("phase", PHASES)
def test_a_two_phase_sink_recovers_a_crash_at_every_phase(
    sink_case: SinkCase, phase: str, all_types: tuple[Any, list[Row]], unique_name: str
) -> None:
    if not sink_case.two_phase:
        pytest.skip(f"{sink_case.name}: not a two-phase sink of its own (see its case)")
    table, rows = all_types
    prefix = f"sl-{unique_name[-8:]}-writer-0-"
    xid = prefix + "1"
    sink = build_sink(_sink_job(sink_case, table, unique_name))
    sink.check()
    sink.check_input([table])
    first = sink.build_writer("writer-0")
    try:
        assert first.recover(prefix, lambda t: False) == []
        first.begin(xid)
        assert first.write(_events(table, rows)) == []
        assert first.flush() == []
        if phase != "before_pre_commit":
            first.pre_commit(xid, {"t:0": len(rows)})
        if phase == "after_sink_commit":
            first.commit(xid)
    finally:
        sink_case.kill(first)  # SIGKILL: no abort, no close
    kafka_committed = phase in ("after_kafka_commit", "after_sink_commit")
    second = build_sink(_sink_job(sink_case, table, unique_name)).build_writer("writer-0")
    resolved = second.recover(prefix, lambda t: t == xid and kafka_committed)
    expected = {
        "before_pre_commit": [],  # never prepared: gone with the connection
        "after_pre_commit": [(xid, False)],  # prepared, Kafka did not commit: rolled back
        "after_kafka_commit": [(xid, True)],  # decided: committed now
        "after_sink_commit": [],  # done before the crash
    }[phase]
    assert resolved == expected
    assert second.recover(prefix, lambda t: True) == [], "a second recover finds nothing"
    second.close()
    back = sink_case.read_back(table)
    want = rows if kafka_committed else []
    assert len(back) == len(want), f"{len(back)} rows after a crash {phase}, want {len(want)}"
    assert_same_rows(back, want, table)


def test_a_bad_sink_parameter_is_one_line_naming_it(
    sink_case: SinkCase, all_types: tuple[Any, list[Row]], unique_name: str
) -> None:
    table, _ = all_types
    stream = {"column": [{"name": "id", "type": "id"}], "sliceRecordCount": 1}
    job = {
        "job": {
            "name": unique_name,
            "content": [
                {
                    "reader": {"name": "streamreader", "parameter": stream},
                    "writer": sink_case.writer(table),
                }
            ],
        }
    }
    _refusals(job, "writer", sink_case.bad)
