"""The control plane's operations, shared by the REST API and the CLI.

State lives in Kafka only, so any worker (or a CLI without any worker) can serve a request:

* ``sluice-configs`` (compacted, key = job name): the job JSON, the desired state
  (``running`` / ``paused`` / ``stopped``), a ``version`` bumped by every change the tasks
  must see (config update, restart, replay), and what was fixed when the job was created —
  its run id, its source parts and the task slots (partitions of the group's tasks topic)
  its coordinator, reader and writer tasks occupy. A tombstone deletes the job.
* ``sluice-status``: ``task/<job>/<task>`` (state, owner, version, progress) from workers,
  ``checkpoint/<job>/<run>`` from the checkpoint coordinator, ``wjob/<job>`` when a bounded
  job finished.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Producer

from coordinator.alignment import FINAL
from coordinator.connectors import build_sink, build_source, check_connectors, exactly_once
from coordinator.errors import ConfigError, SluiceError
from coordinator.job import Job, JobConfigError, build_job
from coordinator.kafka_io import (
    OFFSETS_TOPIC,
    STATUS_TOPIC,
    TopicSpec,
    admin,
    check_reachable,
    ensure_topics,
    latest_json_by_key,
    read_to_end,
    record_producer_config,
)
from coordinator.plan import JobPlan, safe_name
from coordinator.run_identity import RunChanged, check_resumable, identity_record

# A worker job's run goes on after a config update: the advice differs from `sluice run`'s.
WORKER_ADVICE = "delete the job and submit it again to start a new run"

CONFIGS_TOPIC = "sluice-configs"
STATES = ("running", "paused", "stopped")
DEFAULT_SLOTS = 32


class ApiError(SluiceError):
    """A request the control plane refuses: ``status`` is the HTTP status, ``field`` the
    JSON path (or parameter) at fault."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def tasks_topic(group: str) -> str:
    return f"sluice-tasks-{safe_name(group)}"


def ensure_control_topics(bootstrap: str, group: str | None = None, slots: int = 0) -> None:
    """The shared state topics and, with ``group``, its tasks topic: ``slots`` partitions when
    it is created (an existing one keeps its count, which ``slots`` may not exceed)."""
    specs = [TopicSpec(t, 1, compacted=True) for t in (CONFIGS_TOPIC, STATUS_TOPIC, OFFSETS_TOPIC)]
    if group is not None:
        topic = tasks_topic(group)
        exists = topic in admin(bootstrap).list_topics(timeout=10).topics
        specs.append(TopicSpec(topic, (slots or 1) if exists else (slots or DEFAULT_SLOTS)))
    ensure_topics(bootstrap, specs)


# -- reading ----------------------------------------------------------------------------------
def all_configs(bootstrap: str) -> dict[str, dict[str, Any]]:
    return latest_json_by_key(read_to_end(bootstrap, CONFIGS_TOPIC))


def get_config(bootstrap: str, name: str) -> dict[str, Any]:
    rec = all_configs(bootstrap).get(name)
    if rec is None:
        raise ApiError(f"no job named {name!r}", 404, "name")
    return rec


def parse_doc(doc: Any, origin: str = "<request>") -> Job:
    """A job document → :class:`Job`; errors as :class:`ApiError` naming the first field."""
    if isinstance(doc, dict) and "config" in doc and "job" not in doc:
        doc = doc["config"]  # Kafka Connect style: {"name": ..., "config": {...}}
    try:
        return build_job(doc, origin=origin)
    except JobConfigError as e:
        raise ApiError(str(e), 400, e.problems[0].split(": ", 1)[0]) from None


def job_doc(doc: Any) -> Any:
    if isinstance(doc, dict) and "config" in doc and "job" not in doc:
        return doc["config"]
    return doc


def plan_of(job: Job, rec: dict[str, Any], bootstrap: str) -> JobPlan:
    """The plan every worker derives alike from a config record (run and parts were fixed
    when the job was created, so topics, groups and transactional ids agree everywhere)."""
    s = job.setting
    writers = s.speed.writer_channels
    return JobPlan(
        job_name=job.name,
        run_id=rec["run"],
        bootstrap=s.kafka.bootstrap_servers or bootstrap,
        schema_registry_url=s.kafka.schema_registry_url,
        topic_prefix=s.kafka.topic_prefix,
        partitions=s.kafka.partitions or writers,
        replication_factor=s.kafka.replication_factor,
        reader_parts=tuple(rec["parts"]),
        writer_count=writers,
        exactly_once=exactly_once(job),
        checkpoint_interval_s=s.restore.checkpoint_interval / 1000.0,
        max_rows_per_checkpoint=s.restore.max_row_num_for_checkpoint,
        job=job,
    )


def status_records(bootstrap: str) -> dict[str, Any]:
    return latest_json_by_key(read_to_end(bootstrap, STATUS_TOPIC))


def job_status(bootstrap: str, name: str) -> dict[str, Any]:
    """Connect's ``GET /connectors/{name}/status``: the job's desired state, and each task's
    state, owner (worker id), version and last checkpoint."""
    rec = get_config(bootstrap, name)
    status = status_records(bootstrap)
    tasks = []
    for task, slot in sorted(rec["slots"].items(), key=lambda kv: kv[1]):
        s = status.get(f"task/{safe_name(name)}/{task}") or {}
        current = s.get("version") == rec["version"]
        tasks.append(
            {
                "task": task,
                "slot": slot,
                "state": s.get("state", "UNASSIGNED") if current else "UNASSIGNED",
                "worker": s.get("worker"),
                "version": s.get("version"),
                "started_ms": s.get("started_ms"),
                "rows": s.get("rows", 0),
                "checkpoint": _checkpoint_text(s.get("checkpoint", 0)),
                "error": s.get("error"),
            }
        )
    cp = status.get(f"checkpoint/{safe_name(name)}/{rec['run']}") or {}
    finished = status.get(f"wjob/{safe_name(name)}") or {}
    return {
        "name": name,
        "state": rec["state"],
        "version": rec["version"],
        "run": rec["run"],
        "finished": finished.get("version") == rec["version"],
        "checkpoint": {k: cp.get(k) for k in ("checkpoint", "state", "rows_committed")},
        "tasks": tasks,
    }


def _checkpoint_text(k: Any) -> Any:
    return "final" if isinstance(k, int) and k >= FINAL else k


# -- writing ----------------------------------------------------------------------------------
def put_config(bootstrap: str, name: str, rec: dict[str, Any] | None) -> None:
    p = Producer(record_producer_config(bootstrap))
    value = None if rec is None else json.dumps(rec).encode()
    p.produce(CONFIGS_TOPIC, value, name.encode())
    if p.flush(30):
        raise SluiceError(f"could not write job {name} to {CONFIGS_TOPIC} within 30 s")


def _allocate(bootstrap: str, group: str, wanted: list[str]) -> dict[str, int]:
    """Lowest free task slots of the group's tasks topic for ``wanted`` tasks."""
    topic = tasks_topic(group)
    md = admin(bootstrap).list_topics(topic, timeout=10).topics.get(topic)
    total = len(md.partitions) if md is not None and md.error is None else 0
    used = {
        slot
        for rec in all_configs(bootstrap).values()
        if rec.get("group") == group
        for slot in rec["slots"].values()
    }
    free = [s for s in range(total) if s not in used]
    if len(free) < len(wanted):
        raise ApiError(
            f"group {group}: {len(wanted)} task slots needed, {len(free)} free of {total} "
            f"(partitions of {topic}); delete jobs or start workers with more --slots",
            409,
            "job.setting.speed",
        )
    return dict(zip(wanted, free, strict=False))


def create_job(bootstrap: str, group: str, doc: Any) -> dict[str, Any]:
    """Validate, check against the real servers, prepare topics and target, record the job."""
    job = parse_doc(doc)
    check_reachable(bootstrap)
    ensure_control_topics(bootstrap, group)
    if job.name in all_configs(bootstrap):
        raise ApiError(f"job {job.name!r} exists; PUT /jobs/{job.name} updates it", 409, "name")
    source, sink = build_source(job), build_sink(job, bootstrap)
    check_connectors(source, sink)
    run = time.strftime("w%Y%m%d%H%M%S") + f"{int(time.time() * 1000) % 1000:03d}"
    rec: dict[str, Any] = {
        "name": job.name,
        "group": group,
        "config": job_doc(doc),
        "state": "running",
        "version": 1,
        "run": run,
        "parts": list(source.list_parts()),
        **identity_record(job),
    }
    plan = plan_of(job, rec, bootstrap)
    wanted = ["coordinator", *plan.reader_tasks]
    wanted += [f"writer-{i}" for i in range(plan.writer_count)]
    rec["slots"] = _allocate(bootstrap, group, wanted)
    ensure_topics(plan.bootstrap, plan.topics())
    sink.prepare_target()
    rec["ts_ms"] = int(time.time() * 1000)
    put_config(bootstrap, job.name, rec)
    return rec


def update_job(bootstrap: str, group: str, name: str, doc: Any) -> tuple[dict[str, Any], bool]:
    """Connect's ``PUT /connectors/{name}/config``: create, or replace the config (the running
    tasks of this job restart with it; other jobs are not touched). Returns (record, created)."""
    configs = all_configs(bootstrap)
    if name not in configs:
        job = parse_doc(doc)
        if job.name != name:
            raise ApiError(f"job.name is {job.name!r}, the URL says {name!r}", 400, "job.name")
        return create_job(bootstrap, group, doc), True
    rec = configs[name]
    job = parse_doc(doc)
    if job.name != name:
        raise ApiError(f"job.name is {job.name!r}, the URL says {name!r}", 400, "job.name")
    check_run_unchanged(job, rec)
    old = plan_of(parse_doc(rec["config"]), rec, bootstrap)
    new = plan_of(job, rec, bootstrap)
    if (new.writer_count, new.partitions) != (old.writer_count, old.partitions):
        raise ApiError(
            f"job {name}: the number of writer channels / partitions cannot change on a "
            "running job (its tasks and topics are fixed); delete and submit it again",
            409,
            "job.setting.speed",
        )
    rec = {**rec, "config": job_doc(doc), "version": rec["version"] + 1}
    rec["ts_ms"] = int(time.time() * 1000)
    put_config(bootstrap, name, rec)
    return rec, False


def check_run_unchanged(job: Job, rec: dict[str, Any]) -> None:
    """The same check as ``sluice run`` resuming: ``job`` must still describe the run the
    record's tasks resume (its positions, parts and topics); else an ApiError 409 naming the
    field. Records from before identities were kept compare with the config they hold."""
    stored = rec if "identity" in rec else identity_record(parse_doc(rec["config"]))
    try:
        check_resumable(job, rec["run"], stored, WORKER_ADVICE)
    except RunChanged as e:
        raise ApiError(str(e), 409, e.path) from None


def set_state(bootstrap: str, name: str, state: str, *, restart: bool = False) -> dict[str, Any]:
    if state not in STATES:
        raise ApiError(f"state must be one of {', '.join(STATES)}", 400, "state")
    rec = get_config(bootstrap, name)
    if state == "running" and rec.get("offsets_reset"):
        # The readers would start over (a binlog reader from its configured start) into a
        # target that holds the old run's rows: rows deleted at the source meanwhile would
        # stay, an insert sink would fail on duplicates. Only a new run can start over.
        raise ApiError(
            f"job {name}: its source offsets were reset, and run {rec['run']} cannot start "
            "over into a target that already holds its rows; delete the job, empty the "
            "target (or give the writer a preSql that does) and submit the job again",
            409,
            "state",
        )
    rec = {**rec, "state": state, "ts_ms": int(time.time() * 1000)}
    if restart:
        rec["version"] += 1
    put_config(bootstrap, name, rec)
    return rec


def mark_offsets_reset(bootstrap: str, rec: dict[str, Any]) -> None:
    """Record that the job's source positions were reset: resuming its run is refused."""
    put_config(
        bootstrap, rec["name"], {**rec, "offsets_reset": True, "ts_ms": int(time.time() * 1000)}
    )


def delete_job(bootstrap: str, name: str) -> None:
    get_config(bootstrap, name)
    put_config(bootstrap, name, None)


def validate(doc: Any) -> dict[str, Any]:
    """``PUT /validate``: the errors ``sluice validate`` prints, as JSON."""
    try:
        job = build_job(job_doc(doc), origin="<request>")
    except JobConfigError as e:
        return {"valid": False, "field": e.problems[0].split(": ", 1)[0], "errors": e.problems}
    except ConfigError as e:
        return {"valid": False, "field": None, "errors": [str(e)]}
    return {"valid": True, "name": job.name, "warnings": list(job.warnings)}
