"""Incremental ``mysqlreader`` without servers: which reader a config gets, how positions
and ``startLocation`` are typed, and the warnings a job gets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from coordinator.connectors import build_source
from coordinator.errors import ConfigError
from coordinator.job import JobConfigError, build_job
from schemas.table import Column
from source_connectors.incremental import location_param, parse_location
from source_connectors.mysql.polling import MysqlIncrementalSource, MysqlPollingSource
from source_connectors.mysql.snapshot import MysqlSnapshotSource


def job_doc(reader: dict[str, Any], setting: dict[str, Any] | None = None) -> dict[str, Any]:
    url = "jdbc:mysql://127.0.0.1:3306/db"
    parameter = {"connection": [{"jdbcUrl": [url], "table": ["t"]}], **reader}
    writer = {"connection": [{"jdbcUrl": url, "table": ["t2"]}]}
    return {
        "job": {
            "content": [
                {
                    "reader": {"name": "mysqlreader", "parameter": parameter},
                    "writer": {"name": "mysqlwriter", "parameter": writer},
                }
            ],
            "setting": setting or {},
        }
    }


@pytest.mark.parametrize(
    ("reader", "cls", "bounded"),
    [
        ({}, MysqlSnapshotSource, True),
        ({"increColumn": "id"}, MysqlIncrementalSource, True),
        ({"increColumn": "id", "useMaxFunc": True}, MysqlIncrementalSource, True),
        ({"increColumn": "id", "polling": True}, MysqlPollingSource, False),
    ],
)
def test_mysqlreader_picks_its_reader_from_the_config(reader, cls, bounded) -> None:
    source = build_source(build_job(job_doc(reader)))
    assert type(source) is cls
    assert source.bounded is bounded
    assert source.supports_resume


def test_polling_safety_window_defaults_to_two_seconds() -> None:
    config = build_job(job_doc({"increColumn": "id", "polling": True})).content[0].reader.config
    assert config.pollingSafetyWindow == 2000  # type: ignore[attr-defined]
    with pytest.raises(JobConfigError, match="pollingSafetyWindow"):
        build_job(job_doc({"increColumn": "id", "pollingSafetyWindow": -1}))


def test_incremental_reads_warn_about_channels_and_restore_column(caplog) -> None:
    job = build_job(
        job_doc(
            {"increColumn": "id", "polling": True, "splitPk": "id"},
            {"speed": {"channel": 3}, "restore": {"restoreColumnName": "other"}},
        )
    )
    text = "\n".join(job.warnings)
    assert "incremental read (increColumn) uses one reader channel" in text
    assert "restoreColumnName 'other' is not used" in text
    assert "no splitPk" not in text
    same = build_job(job_doc({"increColumn": "id"}, {"restore": {"restoreColumnName": "id"}}))
    assert same.warnings == []


INT = Column("id", "bigint", "bigint(20)")
DEC = Column("d", "decimal", "decimal(30,10)")
DATE = Column("day", "date", "date")
TS = Column("ts", "timestamp", "timestamp(6)")


@pytest.mark.parametrize(
    ("column", "text", "value"),
    [
        (INT, " 42 ", 42),
        (DEC, "12345678901234567890.0123456789", Decimal("12345678901234567890.0123456789")),
        (DATE, "2026-11-25", "2026-11-25"),
        (TS, "2026-11-25 10:11:12.5", "2026-11-25 10:11:12.500000"),
        (TS, "2026-11-25", "2026-11-25 00:00:00"),
    ],
)
def test_start_location_is_typed_by_the_column(column, text, value) -> None:
    assert parse_location(column, text, "x.startLocation") == value


@pytest.mark.parametrize(
    ("column", "text", "expected"),
    [
        (INT, "ten", "expected an integer"),
        (DEC, "NaN", "expected a decimal number"),
        (DATE, "25/11/2026", "expected a date 'YYYY-MM-DD'"),
        (TS, "yesterday", "(UTC)"),
    ],
)
def test_bad_start_location_names_the_path_and_format(column, text, expected) -> None:
    with pytest.raises(ConfigError) as err:
        parse_location(column, text, "job.content[0].reader.parameter.startLocation")
    message = str(err.value)
    assert message.startswith(f"job.content[0].reader.parameter.startLocation: {text!r}")
    assert expected in message


def test_positions_round_trip_exactly_as_query_parameters() -> None:
    # DECIMAL compared with a string would go through DOUBLE in MySQL: keep it a Decimal.
    assert location_param(DEC, "0.1000000001") == Decimal("0.1000000001")
    assert location_param(INT, 9007199254740993) == 9007199254740993
    assert location_param(TS, "2026-11-25 10:11:12.000001") == "2026-11-25 10:11:12.000001"
    assert location_param(INT, None) is None


def test_polling_example_parses_without_warnings() -> None:
    from pathlib import Path

    from coordinator.job import load_job

    example = Path(__file__).resolve().parents[2] / "examples" / "mysql_polling.json"
    job = load_job(example)
    assert job.warnings == []
    assert type(build_source(job)) is MysqlPollingSource
