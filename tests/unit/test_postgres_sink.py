"""``postgresqlwriter``'s refusals that need a server in a state the test servers are not in:
a PostgreSQL without prepared transactions (max_prepared_transactions = 0) refuses an
exactly-once job in one line, before anything is written; an at-least-once job runs."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.connectors import build_sink
from coordinator.errors import ConfigError
from coordinator.job import build_job
from schemas.table import TableSchema
from sink_connectors.postgres import writer as pg_writer_module
from testkit.postgres import pg_reader, pg_writer

URL = "postgresql://postgres@127.0.0.1:1"


class FakeConnection:
    """Answers ``SHOW max_prepared_transactions`` with 0; records what else is asked."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def cursor(self) -> Any:
        conn = self

        class Cursor:
            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute(self, sql: str, args: object = None) -> None:
                conn.sql.append(sql)

            def fetchone(self) -> tuple[str]:
                return ("0",)

        return Cursor()

    def close(self) -> None:
        return None


def job(delivery: str) -> Any:
    return build_job(
        {
            "job": {
                "name": "no-2pc",
                "content": [
                    {
                        "reader": pg_reader(URL, "db", "public.src"),
                        "writer": pg_writer(URL, "db", "public.dst"),
                    }
                ],
                "setting": {"delivery": delivery},
            }
        }
    )


def test_no_prepared_transactions_refuses_an_exactly_once_job(monkeypatch: pytest.MonkeyPatch):
    fake = FakeConnection()
    monkeypatch.setattr(pg_writer_module, "connect", lambda *a, **k: fake)
    sink = build_sink(job("exactly-once"))
    with pytest.raises(ConfigError) as refused:
        sink.check()
    message = str(refused.value)
    assert message.startswith("job.content[0].writer.parameter.connection[0].jdbcUrl:")
    assert "max_prepared_transactions = 0" in message and "at-least-once" in message
    assert "\n" not in message
    assert fake.sql == ["SHOW max_prepared_transactions"]  # nothing else was run


def test_an_at_least_once_job_does_not_need_them(monkeypatch: pytest.MonkeyPatch):
    fake = FakeConnection()
    monkeypatch.setattr(pg_writer_module, "connect", lambda *a, **k: fake)
    target = TableSchema("public", "dst", (), ())
    monkeypatch.setattr(pg_writer_module.PostgresSink, "load_target", lambda self, c, n: target)
    sink = build_sink(job("at-least-once"))
    sink.check()
    assert fake.sql == []
