"""``sluice run``, ``sluice validate`` and ``sluice demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="run a FlinkX job JSON to completion (local mode)")
    run.add_argument("job", help="path of the job JSON (FlinkX format, // comments allowed)")
    _kafka_flag(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on http://HOST:N/metrics while the job runs (0: any port)",
    )
    run.add_argument("--metrics-host", default="0.0.0.0", help="address --metrics-port listens on")
    run.set_defaults(handler=cmd_run)

    validate = sub.add_parser("validate", help="check a job JSON without running it")
    validate.add_argument("job")
    validate.set_defaults(handler=cmd_validate)

    dirty = sub.add_parser("dirty", help="list the rows a job's sink rejected (dirty data)")
    dirty.add_argument("job", help="job name (job.name, or the job file's name without .json)")
    dirty.add_argument("--run", help="only this run")
    _kafka_flag(dirty)
    dirty.set_defaults(handler=cmd_dirty)

    from coordinator.status_cli import add_commands as add_status

    add_status(sub)

    demo = sub.add_parser("demo", help="copy a demo table MySQL → Kafka → MySQL on the local stack")
    _kafka_flag(demo)
    demo.add_argument("--rows", type=int, default=100_000)
    demo.add_argument(
        "--mysql-url", default=os.environ.get("SLUICE_MYSQL_URL", "mysql://root@127.0.0.1:3306")
    )
    demo.set_defaults(handler=cmd_demo)


def _kafka_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap-servers",
        default=None,
        help=f"Kafka bootstrap (default: $SLUICE_KAFKA_BOOTSTRAP or {DEFAULT_BOOTSTRAP})",
    )


def bootstrap_of(args: argparse.Namespace) -> str:
    return str(
        args.bootstrap_servers or os.environ.get("SLUICE_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP
    )


def _apply_log_setting(job: Any) -> None:
    from coordinator.logs import configure_logging

    # -v (the root logger at DEBUG already) wins over the job's level
    configure_logging(job, verbose=logging.getLogger().getEffectiveLevel() <= logging.DEBUG)


def cmd_run(args: argparse.Namespace) -> int:
    from coordinator.errors import SluiceError
    from coordinator.job import load_job
    from coordinator.local_run import LocalJobRunner
    from coordinator.logs import Redactor, job_secrets

    if args.metrics_port is not None:
        from coordinator.http_listen import check_port

        check_port(args.metrics_port, "--metrics-port")
    job = load_job(args.job)
    _apply_log_setting(job)
    runner = LocalJobRunner(
        job,
        bootstrap_of(args),
        quiet=args.quiet,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    try:
        summary = runner.run()
    except SluiceError as e:
        # A task's error text may quote a driver's message: no password leaves this process.
        e.args = (Redactor(job_secrets(job))(str(e)),)
        raise
    print(summary.text())
    if args.summary_json:
        Path(args.summary_json).write_text(summary.json() + "\n")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from coordinator.job import load_job

    job = load_job(args.job)
    json.dump(job.redacted(), sys.stdout, indent=2, default=str)
    print()
    for w in job.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{args.job}: valid", file=sys.stderr)
    return 0


def cmd_dirty(args: argparse.Namespace) -> int:
    """One JSON object per rejected row: table, reason, source position and the row."""
    from coordinator.errors import ConfigError
    from coordinator.job.problems import job_name_problem
    from coordinator.kafka_io import admin, check_reachable, read_to_end
    from coordinator.plan import safe_name

    problem = job_name_problem(args.job)
    if problem:
        raise ConfigError(f"JOB: {problem}; no job can have this name")
    bootstrap = bootstrap_of(args)
    check_reachable(bootstrap)
    # Every run creates the topic (plan.topics()), even with no rejected row: without it the
    # job never ran here, which "0 rejected rows" would hide (a typo in JOB, say).
    topic = f"sluice-dirty-{safe_name(args.job)}"
    if topic not in admin(bootstrap).list_topics(timeout=10).topics:
        raise ConfigError(
            f"no job {args.job!r} has run on Kafka {bootstrap} (no topic {topic}); "
            "JOB is job.name, or the job file's name without .json"
        )
    count = 0
    for _key, value, _p, _o in read_to_end(bootstrap, topic):
        if value is None:
            continue
        record = json.loads(value)
        if args.run and record.get("run") != args.run:
            continue
        print(json.dumps(record, ensure_ascii=False))
        count += 1
    print(f"{count} rejected rows", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from coordinator.demo import run_demo

    return run_demo(bootstrap_of(args), args.mysql_url, args.rows)
