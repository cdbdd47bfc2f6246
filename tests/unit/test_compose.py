"""docker-compose.yml and the Dockerfile keep the settings exactly-once depends on: a
single-broker Kafka whose transaction log can actually be written, a MariaDB binlog the CDC
reader can read, and workers that reach that Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"kafka", "mariadb", "sluice-worker"} <= services.keys()


def test_kafka_is_kraft_with_transactions_on_one_broker(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    # With the defaults (3 and 2) a single broker never completes a transaction.
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_mariadb_writes_a_full_row_binlog(services: dict[str, Any]) -> None:
    mariadb = services["mariadb"]
    assert mariadb["image"] == "mariadb:10.11"
    args = mariadb["command"]
    for flag in (
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--server-id=1",
    ):
        assert flag in args
    assert any(arg.startswith("--log-bin") for arg in args)
    assert "healthcheck" in mariadb


def test_worker_uses_the_compose_kafka_and_waits_for_healthy_servers(
    services: dict[str, Any],
) -> None:
    worker = services["sluice-worker"]
    assert worker["build"] == "."
    assert worker["command"] == ["worker", "--group", "sluice", "--rest-host", "0.0.0.0"]
    # Listening beyond loopback needs credentials: the compose file demands a token.
    assert worker["environment"]["SLUICE_REST_TOKENS"].startswith("admin:${SLUICE_ADMIN_TOKEN:?")
    assert worker["environment"]["SLUICE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert worker["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "mariadb": {"condition": "service_healthy"},
    }
    assert worker["restart"] == "unless-stopped"


def test_dockerfile_builds_the_package_and_runs_sluice_as_non_root() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert (REPO_ROOT / "pyproject.toml").is_file(), "the build context must hold pyproject.toml"
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "pyproject.toml" not in ignored
    for package in ("coordinator", "source_connectors", "sink_connectors", "schemas"):
        assert package not in ignored
    assert "FROM python:3.11-slim" in dockerfile
    # The C codecs (setup.py) are built in the image, not left out for want of a compiler.
    assert "gcc" in dockerfile.split("FROM python:3.11-slim AS build", 1)[1].split("\nFROM ")[0]
    assert "setup.py" not in ignored and "*.c" not in ignored and "**/*.so" in ignored
    assert 'ENTRYPOINT ["sluice"]' in dockerfile
    assert 'CMD ["worker", "--group", "sluice"]' in dockerfile
    assert "STOPSIGNAL SIGTERM" in dockerfile
    user_lines = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1] not in ("USER root", "USER 0")
