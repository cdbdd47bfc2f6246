"""Where the Kafka and MariaDB of a test session or benchmark run are: ``Servers``, the
value of the ``servers`` fixture in tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.local.stack import LocalStack


@dataclass(frozen=True)
class Servers:
    """The Kafka and MariaDB the session's tests use (the ``servers`` fixture)."""

    kafka_bootstrap: str
    mysql_url: str
    source: str
    """Where they came from: "env", "docker" or "local"."""
    local_stack: LocalStack | None = None
