"""Worker control plane without servers: every worker derives the same plan from a config
record (so transactional ids — the fencing — agree), and replay's offsets are checked."""

from __future__ import annotations

import pytest

from coordinator.worker.jobs import ApiError, parse_doc, plan_of
from coordinator.worker.replay import _parse_offsets
from tests.unit.test_rest import GOOD

REC = {"run": "w1", "parts": ["p0", "p1"], "version": 3}


def test_every_worker_derives_the_same_plan_and_transactional_ids() -> None:
    a = plan_of(parse_doc(GOOD), REC, "k:9092")
    # Fencing rests on these names: a task restarted on another worker (or by another
    # Sluice version) must open the same transactional id, and no other task may share it.
    assert a.transactional_id("writer-1") == "sluice.job.w1.writer-1"
    assert a.writer_group == "sluice.job.w1.writers"
    assert a.data_topic == "sluice.job.w1.data"
    ids = {a.transactional_id(t) for t in (*a.reader_tasks, "writer-0", "writer-1")}
    assert len(ids) == len(a.reader_tasks) + 2
    next_run = plan_of(parse_doc(GOOD), {**REC, "run": "w2"}, "k:9092")
    assert next_run.transactional_id("writer-1") != a.transactional_id("writer-1")
    assert a.reader_tasks == ("reader-0", "reader-1")
    assert a.writer_count == 2 and a.partitions == 2


def test_replay_offsets_are_parsed_and_checked() -> None:
    plan = plan_of(parse_doc(GOOD), REC, "k:9092")
    topic = plan.data_topic
    assert _parse_offsets(plan, f"{topic}:0:5, {topic}:1:7") == {0: 5, 1: 7}
    for bad in ("nonsense", f"{topic}:2:5", "other:0:1", f"{topic}:0:-1", ""):
        with pytest.raises(ApiError) as info:
            _parse_offsets(plan, bad)
        assert info.value.field == "to_offsets"
        assert info.value.status == 400
