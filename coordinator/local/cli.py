"""``sluice local install | up | down | status``: the development stack on this machine.

Flags win over environment variables (SLUICE_STATE_DIR, SLUICE_CACHE_DIR, SLUICE_KAFKA_PORT,
SLUICE_MYSQL_PORT, SLUICE_HDFS_PORT, SLUICE_POSTGRES_PORT), which win over the defaults
(.sluice and .cache in the current directory, ports 9092, 3306, 9870 and 5432). HDFS starts
only with ``up --with-hdfs`` and PostgreSQL only with ``up --with-postgres`` (and is installed
only then, or by ``install --with-postgres``); ``down`` stops either whenever it runs.
"""

from __future__ import annotations

import argparse
import time

from coordinator.local.stack import LocalStack


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser(
        "local",
        help="install, start, check and stop a local Kafka and MariaDB for development",
        description="A single-node Kafka (KRaft, transactions on) and a MariaDB with a ROW "
        "binlog, and on request HDFS and a PostgreSQL with wal_level=logical, all on "
        "127.0.0.1, started from the state directory.",
    )
    sub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser, ports: bool) -> None:
        parser.add_argument(
            "--state-dir", help="data, logs and pid files (env SLUICE_STATE_DIR; ./.sluice)"
        )
        parser.add_argument(
            "--cache-dir", help="downloaded software (env SLUICE_CACHE_DIR; ./.cache)"
        )
        if ports:
            parser.add_argument(
                "--kafka-port",
                type=int,
                help="Kafka client port; the controller uses the next one "
                "(env SLUICE_KAFKA_PORT; default 9092)",
            )
            parser.add_argument(
                "--mysql-port",
                type=int,
                help="MariaDB port (env SLUICE_MYSQL_PORT; default 3306)",
            )
            parser.add_argument(
                "--with-hdfs",
                action="store_true",
                help="also HDFS (NameNode + DataNode, WebHDFS on 127.0.0.1:9870)",
            )
            parser.add_argument(
                "--hdfs-port",
                type=int,
                help="WebHDFS port; the NameNode's RPC port is the next one "
                "(env SLUICE_HDFS_PORT; default 9870)",
            )
            parser.add_argument(
                "--with-postgres",
                action="store_true",
                help="also PostgreSQL 15 (wal_level=logical, prepared transactions on) "
                "on 127.0.0.1:5432",
            )
            parser.add_argument(
                "--postgres-port",
                type=int,
                help="PostgreSQL port (env SLUICE_POSTGRES_PORT; default 5432)",
            )

    p = sub.add_parser(
        "install",
        help="check Java 17+ and Maven, fetch Kafka's and HDFS's jars, install MariaDB",
    )
    common(p, ports=False)
    p.add_argument(
        "--with-postgres",
        action="store_true",
        help="also PostgreSQL 15 from Debian's packages (else `up --with-postgres` does it)",
    )
    p.set_defaults(handler=_install)

    p = sub.add_parser(
        "up",
        help="start Kafka and MariaDB (and HDFS, PostgreSQL) (idempotent) and wait until ready",
    )
    common(p, ports=True)
    p.set_defaults(handler=_up)

    p = sub.add_parser("status", help="health of each server; exit 0 only if all are healthy")
    common(p, ports=True)
    p.set_defaults(handler=_status)

    p = sub.add_parser("down", help="stop the servers `up` started; keep data and logs")
    common(p, ports=False)
    p.set_defaults(handler=_down)


def _stack(args: argparse.Namespace) -> LocalStack:
    return LocalStack.from_env(
        state_dir=args.state_dir,
        kafka_port=getattr(args, "kafka_port", None),
        mysql_port=getattr(args, "mysql_port", None),
        cache_dir=args.cache_dir,
        hdfs_port=getattr(args, "hdfs_port", None),
        with_hdfs=getattr(args, "with_hdfs", False),
        postgres_port=getattr(args, "postgres_port", None),
        with_postgres=getattr(args, "with_postgres", False),
    )


def _install(args: argparse.Namespace) -> int:
    stack = _stack(args)
    started = time.monotonic()
    stack.install(postgres=stack.with_postgres)
    postgres = ", PostgreSQL 15" if stack.with_postgres else ""
    print(
        f"installed: Kafka and HDFS jars in {stack.cache_dir}, MariaDB{postgres}, Java and "
        f"Maven checked ({time.monotonic() - started:.1f} s)"
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    started = time.monotonic()
    endpoints = stack.up()
    for server in stack.servers:
        state = "started" if server.name in stack.started_here else "already running"
        print(f"{server.name:8} {state:16} pid {server.running_pid()}  127.0.0.1:{server.port}")
    print(f"ready in {time.monotonic() - started:.1f} s")
    print(f"Kafka bootstrap: {endpoints.kafka_bootstrap}")
    print(f"MySQL URL:       {endpoints.mysql_url}")
    exports = (
        f"export SLUICE_KAFKA_BOOTSTRAP={endpoints.kafka_bootstrap} "
        f"SLUICE_MYSQL_URL={endpoints.mysql_url}"
    )
    if stack.with_hdfs and endpoints.hdfs_url:
        print(f"WebHDFS URL:     {endpoints.hdfs_url}")
        exports += f" SLUICE_HDFS_URL={endpoints.hdfs_url}"
    if endpoints.postgres_url:  # asked for, or still running from an earlier `up`
        print(f"PostgreSQL URL:  {endpoints.postgres_url}")
        exports += f" SLUICE_POSTGRES_URL={endpoints.postgres_url}"
    print(exports)
    return 0


def _status(args: argparse.Namespace) -> int:
    statuses = _stack(args).status()
    rows = [("SERVER", "PID", "PORT", "HEALTH")]
    rows += [(s.name, str(s.pid or "-"), str(s.port), s.detail) for s in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for name, pid, port, health in rows:
        print(f"{name:{widths[0]}}  {pid:{widths[1]}}  {port:{widths[2]}}  {health}")
    return 0 if all(s.healthy for s in statuses) else 1


def _down(args: argparse.Namespace) -> int:
    stack = _stack(args)
    stopped = stack.down()
    print(
        f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {stack.state_dir}"
    )
    return 0
