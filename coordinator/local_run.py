"""``sluice run JOB.json`` — one job, run by this process: reader and writer tasks in child
processes, the checkpoint coordinator here.

A run has an id. With ``setting.restore.isRestore`` a job whose last run did not finish
resumes that run — same topics, positions, writer group and parts — from its last committed
checkpoint; otherwise every ``sluice run`` starts a fresh run (FlinkX's behaviour).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import queue
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from coordinator.checkpoint import CheckpointCoordinator
from coordinator.connectors import build_sink, build_source, exactly_once
from coordinator.errors import SluiceError, TaskFailed
from coordinator.kafka_io import (
    OFFSETS_TOPIC,
    STATUS_TOPIC,
    TopicSpec,
    check_reachable,
    ensure_topics,
    latest_json_by_key,
    producer_config,
    read_to_end,
)
from coordinator.plan import JobPlan, safe_name
from coordinator.progress import ProgressDisplay, Summary
from coordinator.reporting import QueueReporter, TaskCounters
from schemas.registry import make_registry
from schemas.serde import EventSerde

log = logging.getLogger("sluice.run")


def _task_main(kind: str, plan: JobPlan, index: int, events: Any, stop: Any, level: int) -> None:
    """Entry point of a task process."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reporter = QueueReporter(events)
    task = f"{kind}-{index}"
    try:
        if kind == "reader":
            from coordinator.reader_task import run_reader

            run_reader(plan, index, reporter)
        else:
            from coordinator.writer_task import run_writer

            run_writer(plan, index, reporter, stop)
    except SluiceError as e:
        reporter.failed(task, str(e))
        raise SystemExit(1) from None
    except Exception as e:  # noqa: BLE001 - reported to the runner, then the task ends
        log.error("%s crashed:\n%s", task, traceback.format_exc())
        reporter.failed(task, f"internal error: {type(e).__name__}: {e}")
        raise SystemExit(1) from None


@dataclass
class TaskState:
    process: Any
    counters: TaskCounters = field(default_factory=TaskCounters)
    finished: bool = False


class LocalJobRunner:
    def __init__(self, job: Any, bootstrap: str, *, quiet: bool = False) -> None:
        self.job = job
        self.bootstrap = job.setting.kafka.bootstrap_servers or bootstrap
        self.quiet = quiet
        self.ctx = mp.get_context("spawn")

    # -- planning -------------------------------------------------------------------------
    def _previous_run(self) -> dict[str, Any] | None:
        state = latest_json_by_key(read_to_end(self.bootstrap, STATUS_TOPIC))
        value = state.get(f"job/{safe_name(self.job.name)}")
        return value if isinstance(value, dict) else None

    def _publish_status(self, plan: JobPlan, state: str, **extra: Any) -> None:
        record = {
            "job": plan.job_name,
            "run": plan.run_id,
            "state": state,
            "parts": list(plan.reader_parts),
            "ts_ms": int(time.time() * 1000),
            **extra,
        }
        p = Producer(producer_config(self.bootstrap))
        p.produce(STATUS_TOPIC, json.dumps(record).encode(), plan.run_key.encode())
        p.flush(30)

    def _warn_unenforced(self) -> None:
        """Keys the job model accepts (FlinkX jobs carry them) that this version does not
        act on yet: say so, rather than let a user believe a limit holds."""
        s = self.job.setting
        reader = self.job.content[0].reader.config
        notes = []
        if s.speed.bytes or s.speed.records:
            notes.append("setting.speed.bytes/records: rate limits are not enforced yet")
        if s.error_limit.record or s.error_limit.percentage:
            notes.append(
                "setting.errorLimit: not enforced yet; the first row the sink rejects fails the job"
            )
        if getattr(reader, "polling", False) or getattr(reader, "increColumn", None):
            notes.append(
                f"{self.job.content[0].reader.path}.parameter.polling/increColumn: incremental "
                "polling is not supported yet; the table is read once"
            )
        if s.log.json_format:
            notes.append("setting.log.json: JSON logs are not supported yet")
        for note in notes:
            log.warning("%s", note)

    def plan(self) -> tuple[JobPlan, bool, Any, Any]:
        """Check the job against the real servers and decide the run. Returns
        ``(plan, resumed, source, sink)``. Raises before anything is written."""
        check_reachable(self.bootstrap)
        self._warn_unenforced()
        setting = self.job.setting
        source = build_source(self.job)
        sink = build_sink(self.job)
        source.check()
        sink.check()
        check_input = getattr(sink, "check_input", None)
        if check_input is not None:
            check_input(source.tables())
        ensure_topics(
            self.bootstrap,
            [
                TopicSpec(
                    OFFSETS_TOPIC,
                    1,
                    compacted=True,
                    replication_factor=setting.kafka.replication_factor,
                ),
                TopicSpec(
                    STATUS_TOPIC,
                    1,
                    compacted=True,
                    replication_factor=setting.kafka.replication_factor,
                ),
            ],
        )
        previous = self._previous_run()
        resumed = bool(
            setting.restore.is_restore
            and previous
            and previous.get("state") not in ("FINISHED", None)
        )
        if resumed:
            assert previous is not None
            run_id, parts = previous["run"], tuple(previous["parts"])
        else:
            run_id, parts = (
                time.strftime("r%Y%m%d%H%M%S") + f"{int(time.time() * 1000) % 1000:03d}",
                tuple(source.list_parts()),
            )
        writers = setting.speed.writer_channels
        plan = JobPlan(
            job_name=self.job.name,
            run_id=run_id,
            bootstrap=self.bootstrap,
            schema_registry_url=setting.kafka.schema_registry_url,
            topic_prefix=setting.kafka.topic_prefix,
            partitions=setting.kafka.partitions or writers,
            replication_factor=setting.kafka.replication_factor,
            reader_parts=parts,
            writer_count=writers,
            exactly_once=exactly_once(self.job),
            checkpoint_interval_s=setting.restore.checkpoint_interval / 1000.0,
            max_rows_per_checkpoint=setting.restore.max_row_num_for_checkpoint,
            job=self.job,
        )
        return plan, resumed, source, sink

    # -- running --------------------------------------------------------------------------
    def run(self) -> Summary:
        started = time.monotonic()
        plan, resumed, source, sink = self.plan()
        ensure_topics(self.bootstrap, plan.topics())
        if resumed:
            log.info(
                "resuming run %s of job %s from its last checkpoint", plan.run_id, plan.job_name
            )
        else:
            sink.prepare_target()
        self._publish_status(plan, "RUNNING")
        estimate = source.estimate_rows()
        serde = EventSerde(make_registry(plan.bootstrap, plan.schema_registry_url))
        coordinator = CheckpointCoordinator(plan, serde)
        if resumed:
            coordinator.resume()
        events = self.ctx.Queue()
        stop = self.ctx.Event()
        level = logging.getLogger().getEffectiveLevel()
        tasks: dict[str, TaskState] = {}
        for kind, count in (("writer", plan.writer_count), ("reader", len(plan.reader_parts))):
            for i in range(count):
                proc = self.ctx.Process(
                    target=_task_main,
                    args=(kind, plan, i, events, stop, level),
                    name=f"sluice-{kind}-{i}",
                    daemon=True,
                )
                proc.start()
                tasks[f"{kind}-{i}"] = TaskState(proc)
        display = ProgressDisplay(estimate=estimate) if not self.quiet else None
        status = "FAILED"
        try:
            self._supervise(plan, tasks, events, coordinator, display)
            sink.finish_target()
            status = "FINISHED"
        finally:
            stop.set()
            for state in tasks.values():
                state.process.join(timeout=30)
                if state.process.is_alive():
                    state.process.kill()
                    state.process.join()
            if display:
                display.close()
            coordinator.close()
            self._publish_status(plan, status, checkpoint=coordinator.completed)
        read = [s.counters for t, s in tasks.items() if t.startswith("reader")]
        written = [s.counters for t, s in tasks.items() if t.startswith("writer")]
        return Summary(
            job=plan.job_name,
            run=plan.run_id,
            status=status.lower(),
            numRead=sum(c.rows for c in read),
            numWrite=sum(c.rows for c in written),
            byteRead=sum(c.bytes for c in read),
            byteWrite=sum(c.bytes for c in written),
            errors=sum(c.errors for c in read + written),
            checkpoints=coordinator.completed,
            duration_s=time.monotonic() - started,
        )

    def _supervise(
        self,
        plan: JobPlan,
        tasks: dict[str, TaskState],
        events: Any,
        coordinator: CheckpointCoordinator,
        display: ProgressDisplay | None,
    ) -> None:
        while True:
            try:
                kind, task, payload = events.get(timeout=0.1)
                state = tasks[task]
                if kind == "failed":
                    raise TaskFailed(f"job {plan.job_name}: {task} failed: {payload}")
                state.counters = payload
                if kind == "finished":
                    state.finished = True
                while True:  # drain what else is queued without waiting
                    kind, task, payload = events.get_nowait()
                    if kind == "failed":
                        raise TaskFailed(f"job {plan.job_name}: {task} failed: {payload}")
                    tasks[task].counters = payload
                    if kind == "finished":
                        tasks[task].finished = True
            except queue.Empty:
                pass
            for name, state in tasks.items():
                code = state.process.exitcode
                if code not in (None, 0):
                    time.sleep(0.2)  # let its "failed" message arrive first
                    try:
                        kind, task, payload = events.get(timeout=0.5)
                        if kind == "failed":
                            raise TaskFailed(f"job {plan.job_name}: {task} failed: {payload}")
                    except queue.Empty:
                        pass
                    raise TaskFailed(f"job {plan.job_name}: {name} died (exit code {code})")
            rows_read = sum(s.counters.rows for t, s in tasks.items() if t.startswith("reader"))
            rows_written = sum(s.counters.rows for t, s in tasks.items() if t.startswith("writer"))
            coordinator.poll(rows_read)
            if display:
                display.update(rows_read, rows_written, coordinator.completed)
            readers_done = all(s.finished for t, s in tasks.items() if t.startswith("reader"))
            if readers_done and coordinator.all_final:
                # Writers report their last counters once they committed the final cut.
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not all(
                    s.finished
                    for t, s in tasks.items()
                    if t.startswith("writer") and s.counters.rows
                ):
                    try:
                        kind, task, payload = events.get(timeout=0.1)
                        tasks[task].counters = payload
                        tasks[task].finished = tasks[task].finished or kind == "finished"
                    except queue.Empty:
                        pass
                return
