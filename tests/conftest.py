"""Shared fixtures.

Servers come from, in this order:

1. ``SLUICE_KAFKA_BOOTSTRAP`` / ``SLUICE_MYSQL_URL`` when set (servers someone runs already);
2. testcontainers, when a Docker engine answers (checked with a 2 s timeout);
3. the local launcher (``sluice local up``, state in ``.sluice`` under the repo). Servers a
   test session had to start are stopped when the last session using them ends (sessions of
   other developers on this machine may share them); a stack that someone started with
   ``sluice local up`` is left running.

HDFS (the ``hdfs_url`` fixture) comes from ``SLUICE_HDFS_URL`` (a WebHDFS URL), else from the
local launcher, started only when a test asks for it and under the same rules; so does
PostgreSQL (``postgres_url``, ``postgres_database``) from ``SLUICE_POSTGRES_URL``.

The endpoints found are exported into ``os.environ``, so subprocesses a test starts
(``sluice run``) use the same servers. The fixtures are lazy: a unit test that does not ask for
them never starts anything.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from coordinator.local.stack import LocalStack
from testkit.servers import Servers

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    env_kafka = os.environ.get("SLUICE_KAFKA_BOOTSTRAP")
    env_mysql = os.environ.get("SLUICE_MYSQL_URL")
    if env_kafka and env_mysql:
        yield Servers(env_kafka, env_mysql, "env")
        return
    with contextlib.ExitStack() as cleanup:
        if _docker_engine_answers():
            found = _start_containers(cleanup)
        else:
            found = _start_local_stack(cleanup)
        found = replace(
            found,
            kafka_bootstrap=env_kafka or found.kafka_bootstrap,
            mysql_url=env_mysql or found.mysql_url,
        )
        saved = {k: os.environ.get(k) for k in ("SLUICE_KAFKA_BOOTSTRAP", "SLUICE_MYSQL_URL")}
        cleanup.callback(_restore_env, saved)
        os.environ["SLUICE_KAFKA_BOOTSTRAP"] = found.kafka_bootstrap
        os.environ["SLUICE_MYSQL_URL"] = found.mysql_url
        yield found


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # no SDK, no socket, no engine: all mean "no Docker here"
        return False
    return True


def _start_local_stack(cleanup: contextlib.ExitStack) -> Servers:
    stack = LocalStack.from_env(root=REPO_ROOT)
    # Servers started here stop when the last test session using them ends; a stack someone
    # started with `sluice local up` is left running.
    cleanup.enter_context(stack.use())
    endpoints = stack.up(for_tests=True)
    return Servers(endpoints.kafka_bootstrap, endpoints.mysql_url, "local", stack)


def _start_containers(cleanup: contextlib.ExitStack) -> Servers:
    """Kafka (KRaft) and MariaDB containers with the settings the local stack has."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mysql import MySqlContainer

    kafka: Any = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    kafka.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
    kafka.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    kafka.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    cleanup.enter_context(kafka)
    mariadb: Any = MySqlContainer("mariadb:10.11", username="root", password="sluice")
    mariadb.with_command(
        "--log-bin=binlog --binlog-format=ROW --binlog-row-image=FULL "
        "--binlog-row-metadata=FULL --server-id=1 --character-set-server=utf8mb4"
    )
    cleanup.enter_context(mariadb)
    host, port = mariadb.get_container_host_ip(), mariadb.get_exposed_port(3306)
    return Servers(kafka.get_bootstrap_server(), f"mysql://root:sluice@{host}:{port}", "docker")


@pytest.fixture(scope="session")
def hdfs_url() -> Iterator[str]:
    """WebHDFS URL (``http://127.0.0.1:9870``) of an HDFS the tests may write to."""
    env_hdfs = os.environ.get("SLUICE_HDFS_URL")
    if env_hdfs:
        yield env_hdfs
        return
    with contextlib.ExitStack() as cleanup:
        stack = LocalStack.from_env(root=REPO_ROOT, with_hdfs=True)
        # Like the servers fixture: stopped by the last test session that leaves, unless a
        # person started it (`sluice local up --with-hdfs`). Only HDFS is started here.
        cleanup.enter_context(stack.use())
        endpoints = stack.up(for_tests=True, only=["hdfs"])
        assert endpoints.hdfs_url is not None
        cleanup.callback(_restore_env, {"SLUICE_HDFS_URL": None})
        os.environ["SLUICE_HDFS_URL"] = endpoints.hdfs_url
        yield endpoints.hdfs_url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:5432/postgres``: a PostgreSQL superuser's URL, with
    wal_level=logical and prepared transactions on."""
    env_postgres = os.environ.get("SLUICE_POSTGRES_URL")
    if env_postgres:
        yield env_postgres
        return
    with contextlib.ExitStack() as cleanup:
        stack = LocalStack.from_env(root=REPO_ROOT, with_postgres=True)
        # Like hdfs_url: stopped by the last test session that leaves, unless a person
        # started it (`sluice local up --with-postgres`). Only PostgreSQL is started here.
        cleanup.enter_context(stack.use())
        endpoints = stack.up(for_tests=True, only=["postgres"])
        assert endpoints.postgres_url is not None
        cleanup.callback(_restore_env, {"SLUICE_POSTGRES_URL": None})
        os.environ["SLUICE_POSTGRES_URL"] = endpoints.postgres_url
        yield endpoints.postgres_url


@pytest.fixture(scope="session")
def kafka_bootstrap(servers: Servers) -> str:
    return servers.kafka_bootstrap


@pytest.fixture(scope="session")
def mysql_url(servers: Servers) -> str:
    """mysql://user:password@host:port"""
    return servers.mysql_url


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Any:
    """A confluent_kafka AdminClient on the test Kafka."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: for topics, databases, job names."""
    base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:30]
    return f"t_{base}_{uuid.uuid4().hex[:8]}".lower()


@pytest.fixture
def mysql_database(mysql_url: str, unique_name: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    import pymysql

    from testkit.mysql import mysql_connect

    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{unique_name}` CHARACTER SET utf8mb4")
    try:
        yield unique_name
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{unique_name}`")
        except pymysql.MySQLError:
            pass
        conn.close()


POSTGRES_NAME_MAX = 63  # bytes in a PostgreSQL identifier (NAMEDATALEN - 1)


@pytest.fixture
def postgres_database(postgres_url: str, unique_name: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (UTF8 on the launcher's server), owned
    by the URL's user; dropped afterwards with the replication slots a test left in it."""
    import psycopg
    from psycopg import sql

    name = unique_name
    if len(name.encode()) > POSTGRES_NAME_MAX:  # unique_name is 41 at most; keep it unique
        name = f"{name[: POSTGRES_NAME_MAX - 9]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            # DROP DATABASE refuses while a logical slot lives in it, even WITH (FORCE).
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active",
                (name,),
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def target_db(mysql_url: str, mysql_database: str) -> Iterator[str]:
    """A second fresh database (``<mysql_database>_dst``), for targets with the same names
    as their sources; dropped afterwards."""
    from testkit.mysql import mysql_connect

    name = f"{mysql_database}_dst"
    conn = mysql_connect(mysql_url)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
