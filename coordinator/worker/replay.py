"""Offsets of a job (Connect's ``/connectors/{name}/offsets``) and replay.

Two kinds of positions: the readers' source positions (``sluice-offsets``, written inside
the readers' Kafka transactions) and the writer group's committed offsets on the job's data
topic (written inside the writers' Kafka transactions, with their checkpoint acks).

**Replay** moves the writer group of a *stopped* job back (to the offsets the writers
acked at checkpoint K, to a timestamp, or to explicit offsets); the readers keep their
positions. Restarting the job applies the data topic again from there. The MySQL sink's
``_sluice_offsets`` table is a record written inside each XA transaction, not a filter
(writers start from the group's committed offsets only), so nothing else needs resetting.
The rule that keeps the target exact: re-applied events must be idempotent, so replay asks
the sink (``Sink.not_idempotent``): ``mysqlwriter`` with ``writeMode`` ``replace`` or
``update`` is; an ``insert`` writer, or a sink that appends (HDFS, Kafka), would apply rows
twice and is refused unless forced.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from coordinator.connectors import build_sink
from coordinator.control import committed_acks
from coordinator.kafka_io import OFFSETS_TOPIC, client_config, record_producer_config
from coordinator.plan import JobPlan, safe_name
from coordinator.positions import load_positions
from coordinator.worker.jobs import (
    ApiError,
    get_config,
    mark_offsets_reset,
    parse_doc,
    plan_of,
    put_config,
    status_records,
)
from schemas.registry import make_registry
from schemas.serde import EventSerde


def _plan(bootstrap: str, name: str) -> tuple[dict[str, Any], JobPlan]:
    rec = get_config(bootstrap, name)
    return rec, plan_of(parse_doc(rec["config"]), rec, bootstrap)


def get_offsets(bootstrap: str, name: str) -> dict[str, Any]:
    rec, plan = _plan(bootstrap, name)
    positions = load_positions(bootstrap, plan.offsets_key(""))
    client = AdminClient(client_config(plan.bootstrap))
    req = ConsumerGroupTopicPartitions(
        plan.writer_group, [TopicPartition(plan.data_topic, p) for p in range(plan.partitions)]
    )
    writers = {}
    for fut in client.list_consumer_group_offsets([req]).values():
        for tp in fut.result().topic_partitions:
            writers[f"{tp.topic}:{tp.partition}"] = tp.offset
    return {
        "name": name,
        "run": rec["run"],
        "sources": {
            task: {"position": p.position, "checkpoint": p.checkpoint, "seq": p.seq, "done": p.done}
            for task, p in sorted(positions.items())
        },
        "writer_group": plan.writer_group,
        "writers": writers,
    }


def _require_stopped(bootstrap: str, rec: dict[str, Any], what: str) -> None:
    name = rec["name"]
    if rec["state"] != "stopped":
        raise ApiError(f"job {name} is {rec['state']}: stop it before {what}", 409, "state")
    prefix = f"task/{safe_name(name)}/"
    now_ms = time.time() * 1000
    for key, s in status_records(bootstrap).items():
        # Owners refresh a running task's record every 2 s; an older one is a dead worker's.
        fresh = now_ms - s.get("ts_ms", 0) < 10_000
        if key.startswith(prefix) and s.get("state") == "RUNNING" and fresh:
            raise ApiError(
                f"job {name}: task {s.get('task')} still runs on worker {s.get('worker')}; "
                "wait until `sluice job-status` shows no RUNNING task",
                409,
                "state",
            )


def patch_offsets(bootstrap: str, name: str, body: Any) -> dict[str, Any]:
    """``{"sources": {"reader-0": {"position": {...}}}}`` sets reader positions (stopped job)."""
    rec, plan = _plan(bootstrap, name)
    _require_stopped(bootstrap, rec, "changing its offsets")
    sources = body.get("sources") if isinstance(body, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise ApiError("body needs a non-empty object `sources`", 400, "sources")
    p = Producer(record_producer_config(bootstrap))
    for task, value in sources.items():
        if task not in plan.reader_tasks:
            raise ApiError(f"sources.{task}: no such reader task", 400, f"sources.{task}")
        if not isinstance(value, dict) or not isinstance(value.get("position"), dict):
            raise ApiError(f"sources.{task}.position: expected an object", 400, f"sources.{task}")
        record = {"position": value["position"], "checkpoint": 0, "seq": 0, "done": False}
        p.produce(OFFSETS_TOPIC, json.dumps(record).encode(), plan.offsets_key(task).encode())
    p.flush(30)
    return get_offsets(bootstrap, name)


def reset_offsets(bootstrap: str, name: str) -> dict[str, Any]:
    """``DELETE /jobs/{name}/offsets``: readers start again from the configured start."""
    rec, plan = _plan(bootstrap, name)
    _require_stopped(bootstrap, rec, "resetting its offsets")
    p = Producer(record_producer_config(bootstrap))
    for task in plan.reader_tasks:
        p.produce(OFFSETS_TOPIC, None, plan.offsets_key(task).encode())
    p.flush(30)
    mark_offsets_reset(bootstrap, rec)
    return {"name": name, "message": "source offsets reset"}


def checkpoint_offsets(plan: JobPlan, k: int) -> dict[int, int]:
    """Per partition, where the writers were when checkpoint ``k`` committed: the highest
    offset any committed ack at a checkpoint <= k names (an ack's -1 = "no record read")."""
    if k == 0:  # the start of the data topic: what retention left of it
        return {p: low for p, (low, _high) in _log_range(plan).items()}
    serde = EventSerde(make_registry(plan.bootstrap, plan.schema_registry_url))
    acks = committed_acks(plan, serde)
    if not any(a.checkpoint == k for a in acks):
        done = sorted({a.checkpoint for a in acks})
        raise ApiError(
            f"job {plan.job_name}: no committed checkpoint {k} (committed: {done[:3]}…{done[-3:]})"
            if len(done) > 6
            else f"job {plan.job_name}: no committed checkpoint {k} (committed: {done})",
            400,
            "to_checkpoint",
        )
    out = dict.fromkeys(range(plan.partitions), 0)
    for ack in acks:
        if ack.checkpoint > k:
            continue
        for tp, off in ack.offsets.items():
            p = int(tp.rsplit(":", 1)[1])
            out[p] = max(out[p], off)
    return out


def _parse_offsets(plan: JobPlan, text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            topic, p, o = item.rsplit(":", 2)
            part, off = int(p), int(o)
        except ValueError:
            raise ApiError(
                f"to_offsets: {item!r} is not topic:partition:offset", 400, "to_offsets"
            ) from None
        if topic != plan.data_topic or not 0 <= part < plan.partitions or off < 0:
            raise ApiError(
                f"to_offsets: {item!r}: the job's data topic is {plan.data_topic} with "
                f"partitions 0..{plan.partitions - 1}",
                400,
                "to_offsets",
            )
        out[part] = off
    if not out:
        raise ApiError("to_offsets: no offsets given", 400, "to_offsets")
    return out


def replay(
    bootstrap: str,
    name: str,
    *,
    to_checkpoint: int | None = None,
    to_timestamp: int | None = None,
    to_offsets: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    if sum(x is not None for x in (to_checkpoint, to_timestamp, to_offsets)) != 1:
        raise ApiError("give exactly one of to_checkpoint, to_timestamp, to_offsets", 400, "to")
    if to_timestamp is not None:
        _check_timestamp(to_timestamp)
    rec, plan = _plan(bootstrap, name)
    refusal = build_sink(plan.job, bootstrap).not_idempotent()  # the sink knows, not the runner
    if refusal is not None and not force:
        path, why = refusal
        raise ApiError(
            f"job {name}: {path}: replay applies rows again, but {why} (force to replay anyway)",
            400,
            path,
        )
    _require_stopped(bootstrap, rec, "replaying it")
    if to_checkpoint is not None:
        offsets = checkpoint_offsets(plan, to_checkpoint)
    elif to_timestamp is not None:
        offsets = _offsets_for_time(plan, to_timestamp)
    else:
        assert to_offsets is not None
        offsets = _parse_offsets(plan, to_offsets)
    _check_in_log(plan, offsets, "to_checkpoint" if to_checkpoint is not None else "to_offsets")
    client = AdminClient(client_config(plan.bootstrap))
    req = ConsumerGroupTopicPartitions(
        plan.writer_group, [TopicPartition(plan.data_topic, p, o) for p, o in offsets.items()]
    )
    try:
        for fut in client.alter_consumer_group_offsets([req]).values():
            fut.result()
    except KafkaException as e:
        raise ApiError(f"moving {plan.writer_group}: {e.args[0].str()}", 409, "state") from None
    # A new version: "finished" and task states of before the replay no longer count.
    rec = {**rec, "version": rec["version"] + 1, "ts_ms": int(time.time() * 1000)}
    put_config(bootstrap, name, rec)
    return {"name": name, "writer_group": plan.writer_group, "offsets": offsets}


def _check_timestamp(ts_ms: int) -> None:
    now_ms = int(time.time() * 1000)
    if ts_ms < 0:
        raise ApiError(
            f"to_timestamp (--to-timestamp) {ts_ms}: expected epoch milliseconds >= 0",
            400,
            "to_timestamp",
        )
    if ts_ms > now_ms:
        raise ApiError(
            f"to_timestamp (--to-timestamp) {ts_ms}: in the future (now is {now_ms}); "
            "expected epoch milliseconds of a time the job ran",
            400,
            "to_timestamp",
        )


def _log_range(plan: JobPlan) -> dict[int, tuple[int, int]]:
    """Per partition of the data topic: (log start offset, end offset)."""
    from confluent_kafka import Consumer

    c = Consumer(client_config(plan.bootstrap, **{"group.id": f"{plan.writer_group}.replay"}))
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(plan.data_topic, p), timeout=30, cached=False)
            for p in range(plan.partitions)
        }
    finally:
        c.close()


def _check_in_log(plan: JobPlan, offsets: dict[int, int], field: str) -> None:
    """Refuse offsets the topic does not hold: a committed offset past the end or before the
    log start is out of range, and the writers would reset to the beginning and apply
    everything again. The end itself is allowed (nothing to apply again)."""
    ranges = _log_range(plan)
    for p, off in sorted(offsets.items()):
        low, high = ranges[p]
        if not low <= off <= high:
            why = "past the end" if off > high else "before the log start (deleted by retention)"
            raise ApiError(
                f"{field}: offset {off} of partition {p} of {plan.data_topic} is {why}; "
                f"the partition holds {low}..{high} ({high} = its end)",
                400,
                field,
            )


def _offsets_for_time(plan: JobPlan, ts_ms: int) -> dict[int, int]:
    from confluent_kafka import Consumer

    c = Consumer(client_config(plan.bootstrap, **{"group.id": f"{plan.writer_group}.replay"}))
    try:
        tps = [TopicPartition(plan.data_topic, p, ts_ms) for p in range(plan.partitions)]
        out = {}
        for tp in c.offsets_for_times(tps, timeout=30):
            if tp.offset < 0:  # nothing at or after the time: the end
                tp.offset = c.get_watermark_offsets(tp, timeout=30)[1]
            out[tp.partition] = tp.offset
        return out
    finally:
        c.close()
