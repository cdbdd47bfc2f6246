"""``sluice worker`` and the control-plane commands: ``submit``, ``job-status``, ``pause``,
``resume``, ``stop``, ``restart``, ``delete``, ``offsets``, ``replay``.

The commands work on the Kafka topics directly (like the REST API does), so they need no
running worker; the workers pick the change up from ``sluice-configs``. ``job-status`` is
not ``status``: ``sluice status JOB`` shows a job run's metrics (issue 8).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from coordinator.run_cli import bootstrap_of


def _group_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--group",
        default=os.environ.get("SLUICE_GROUP", "sluice"),
        help="worker group (default: $SLUICE_GROUP or sluice)",
    )


def _kafka(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap-servers", default=None, help="Kafka bootstrap")


def add_commands(sub: Any) -> None:
    w = sub.add_parser("worker", help="run a long-running worker of a group (REST API, tasks)")
    _group_flag(w)
    _kafka(w)
    w.add_argument("--rest-port", type=int, default=8083, help="REST port (0: any free port)")
    w.add_argument(
        "--rest-host",
        default=None,
        help="REST address (default: 0.0.0.0 with credentials, else 127.0.0.1 only)",
    )
    w.add_argument(
        "--rest-auth",
        default=None,
        help="file of REST credentials, 'ROLE SCHEME SECRET' lines (default: SLUICE_REST_AUTH)",
    )
    w.add_argument("--rest-tls-cert", default=None, help="serve HTTPS with this certificate")
    w.add_argument("--rest-tls-key", default=None, help="... and this private key")
    w.add_argument("--slots", type=int, default=0, help="task slots when creating the group")
    w.add_argument("--session-timeout-ms", type=int, default=10_000)
    w.set_defaults(handler=cmd_worker)

    s = sub.add_parser("submit", help="submit a job JSON to a worker group")
    s.add_argument("job", help="path of the job JSON")
    _group_flag(s)
    _kafka(s)
    s.set_defaults(handler=cmd_submit)

    st = sub.add_parser("job-status", help="a submitted job's state and its tasks")
    st.add_argument("job")
    _kafka(st)
    st.set_defaults(handler=lambda a: _print(_jobs().job_status(bootstrap_of(a), a.job)))

    for action, state, restart in (
        ("pause", "paused", False),
        ("resume", "running", False),
        ("stop", "stopped", False),
        ("restart", "running", True),
    ):
        p = sub.add_parser(action, help=f"{action} a submitted job")
        p.add_argument("job")
        _kafka(p)
        p.set_defaults(handler=_state_cmd(state, restart))

    d = sub.add_parser("delete", help="delete a submitted job")
    d.add_argument("job")
    _kafka(d)
    d.set_defaults(handler=lambda a: _jobs().delete_job(bootstrap_of(a), a.job))

    o = sub.add_parser("offsets", help="show (or --reset) a submitted job's offsets")
    o.add_argument("job")
    o.add_argument("--reset", action="store_true", help="reset the source positions (stopped)")
    _kafka(o)
    o.set_defaults(handler=cmd_offsets)

    r = sub.add_parser("replay", help="move a stopped job's writers back; resume applies again")
    r.add_argument("job")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--to-checkpoint", type=int, metavar="K")
    g.add_argument("--to-timestamp", type=int, metavar="MS", help="epoch milliseconds")
    g.add_argument("--to-offsets", metavar="T:P:O,...")
    r.add_argument("--force", action="store_true", help="replay even with writeMode insert")
    _kafka(r)
    r.set_defaults(handler=cmd_replay)


def _jobs() -> Any:
    from coordinator.worker import jobs

    return jobs


def _print(obj: Any) -> int:
    json.dump(obj, sys.stdout, indent=2, default=str)
    print()
    return 0


def _state_cmd(state: str, restart: bool) -> Any:
    def run(args: argparse.Namespace) -> int:
        rec = _jobs().set_state(bootstrap_of(args), args.job, state, restart=restart)
        print(f"{args.job}: {rec['state']} (version {rec['version']})")
        return 0

    return run


# librdkafka's own bounds of session.timeout.ms; the broker's are narrower.
_CLIENT_SESSION_TIMEOUT_MS = (1, 3_600_000)


def check_group(group: str) -> str:
    """The worker group names the tasks topic ``sluice-tasks-<G>``: the job name rule."""
    from coordinator.errors import ConfigError
    from coordinator.job.problems import job_name_problem

    problem = job_name_problem(group)
    if problem:
        raise ConfigError(f"--group: {problem}")
    return group


def session_timeout_range(bootstrap: str) -> tuple[int, int] | None:
    """The broker's ``group.min/max.session.timeout.ms``, or None if it does not say (an
    ACL may forbid DescribeConfigs; the worker then learns it from the join itself)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    from coordinator.kafka_io import admin

    client = admin(bootstrap)
    try:
        brokers = client.list_topics(timeout=10).brokers
        resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
        config = client.describe_configs([resource], request_timeout=10)[resource].result(15)
        return (
            int(config["group.min.session.timeout.ms"].value),
            int(config["group.max.session.timeout.ms"].value),
        )
    except (KafkaException, KeyError, ValueError, TypeError):
        return None


def check_session_timeout(bootstrap: str, ms: int) -> int:
    """Refuse a ``--session-timeout-ms`` the broker would refuse at every JoinGroup (the
    worker would run, say "joined", and never get a slot)."""
    from coordinator.errors import ConfigError

    low, high = session_timeout_range(bootstrap) or _CLIENT_SESSION_TIMEOUT_MS
    if not low <= ms <= high:
        where = (
            f"the broker at {bootstrap} allows {low}..{high} "
            "(its group.min.session.timeout.ms .. group.max.session.timeout.ms)"
            if (low, high) != _CLIENT_SESSION_TIMEOUT_MS
            else f"expected {low}..{high}"
        )
        raise ConfigError(f"--session-timeout-ms {ms}: out of range; {where}")
    return ms


def cmd_worker(args: argparse.Namespace) -> int:
    from coordinator.http_listen import check_port
    from coordinator.kafka_io import check_reachable
    from coordinator.worker import rest_auth
    from coordinator.worker.runtime import Worker

    check_group(args.group)
    check_port(args.rest_port, "--rest-port")
    auth = rest_auth.load(args.rest_auth)
    host = rest_auth.listen_host(args.rest_host, auth)
    tls = rest_auth.tls_context(args.rest_tls_cert, args.rest_tls_key)
    bootstrap = bootstrap_of(args)
    check_reachable(bootstrap)
    check_session_timeout(bootstrap, args.session_timeout_ms)
    return Worker(
        args.group,
        bootstrap,
        rest_port=args.rest_port,
        rest_host=host,
        rest_auth=auth,
        rest_tls=tls,
        slots=args.slots,
        session_timeout_ms=args.session_timeout_ms,
    ).run()


def cmd_submit(args: argparse.Namespace) -> int:
    from coordinator.job.jsonc import parse_jsonc

    check_group(args.group)
    try:
        with open(args.job, encoding="utf-8") as f:
            doc = parse_jsonc(f.read(), args.job)
    except OSError as e:
        from coordinator.errors import ConfigError

        raise ConfigError(f"{args.job}: cannot read the job file: {e.strerror or e}") from None
    rec = _jobs().create_job(bootstrap_of(args), args.group, doc)
    print(f"{rec['name']}: submitted to group {rec['group']} (run {rec['run']})")
    return 0


def cmd_offsets(args: argparse.Namespace) -> int:
    from coordinator.worker import replay

    b = bootstrap_of(args)
    return _print(
        replay.reset_offsets(b, args.job) if args.reset else replay.get_offsets(b, args.job)
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from coordinator.worker import replay

    return _print(
        replay.replay(
            bootstrap_of(args),
            args.job,
            to_checkpoint=args.to_checkpoint,
            to_timestamp=args.to_timestamp,
            to_offsets=args.to_offsets,
            force=args.force,
        )
    )
