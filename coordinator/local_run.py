"""``sluice run JOB.json`` — one job, run by this process: reader and writer tasks in child
processes, the checkpoint coordinator here.

A run has an id. With ``setting.restore.isRestore`` a job whose last run did not finish
resumes that run — same topics, positions, writer group and parts — from its last committed
checkpoint; otherwise every ``sluice run`` starts a fresh run (FlinkX's behaviour).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException, Producer

from coordinator import faults
from coordinator.checkpoint import CheckpointCoordinator
from coordinator.connectors import build_sink, build_source, check_connectors, exactly_once
from coordinator.control import committed_acks
from coordinator.errors import SluiceError, TaskFailed
from coordinator.kafka_io import (
    OFFSETS_TOPIC,
    STATUS_TOPIC,
    TopicSpec,
    check_reachable,
    ensure_topics,
    latest_json_by_key,
    read_to_end,
    record_producer_config,
)
from coordinator.metrics_http import MetricsServer
from coordinator.plan import JobPlan, safe_name
from coordinator.positions import load_positions
from coordinator.progress import ProgressDisplay, Summary
from coordinator.run_identity import check_resumable, identity_record
from coordinator.run_metrics import RunMetrics
from coordinator.supervisor import TaskSupervisor
from schemas.registry import make_registry
from schemas.serde import EventSerde

log = logging.getLogger("sluice.run")


class LocalJobRunner:
    def __init__(
        self,
        job: Any,
        bootstrap: str,
        *,
        quiet: bool = False,
        metrics_port: int | None = None,
        metrics_host: str = "0.0.0.0",
    ) -> None:
        self.job = job
        self.bootstrap = job.setting.kafka.bootstrap_servers or bootstrap
        self.quiet = quiet
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.metrics: RunMetrics | None = None
        self._status_producer: Producer | None = None

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
            # What the run is, so that resuming it with an edited job can be refused.
            **identity_record(self.job),
            **extra,
        }
        p = self._status()
        p.produce(STATUS_TOPIC, json.dumps(record).encode(), plan.run_key.encode())
        p.flush(30)

    def _status(self) -> Producer:
        if self._status_producer is None:
            self._status_producer = Producer(record_producer_config(self.bootstrap))
        return self._status_producer

    def plan(self) -> tuple[JobPlan, bool, Any, Any]:
        """Check the job against the real servers and decide the run. Returns
        ``(plan, resumed, source, sink)``. Raises before anything is written."""
        check_reachable(self.bootstrap)
        setting = self.job.setting
        source = build_source(self.job)
        sink = build_sink(self.job, self.bootstrap)
        check_connectors(source, sink)
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
            check_resumable(self.job, run_id, previous)
        else:
            self._settle_abandoned_run(previous, sink)
            run_id, parts = (
                time.strftime("r%Y%m%d%H%M%S") + f"{int(time.time() * 1000) % 1000:03d}",
                tuple(source.list_parts()),
            )
        return self._plan_for(run_id, parts), resumed, source, sink

    def _plan_for(self, run_id: str, parts: tuple[str, ...]) -> JobPlan:
        setting = self.job.setting
        writers = setting.speed.writer_channels
        return JobPlan(
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

    def settle_abandoned_run(self) -> None:
        """Finish what the job's last run left prepared in the sink, before a fresh run (or
        the demo) touches the target: a run killed between a writer's pre-commit and its
        commit, and not resumed, would otherwise hold its rows' locks forever."""
        self._settle_abandoned_run(self._previous_run(), build_sink(self.job, self.bootstrap))

    def _settle_abandoned_run(self, previous: dict[str, Any] | None, sink: Any) -> None:
        if not previous or previous.get("state") == "FINISHED" or "run" not in previous:
            return
        plan = self._plan_for(str(previous["run"]), tuple(previous.get("parts") or ()))
        try:
            serde = EventSerde(make_registry(self.bootstrap, plan.schema_registry_url))
            decided = {a.txn for a in committed_acks(plan, serde)}
            writer = sink.build_writer("settle")
            try:
                settled = writer.recover(plan.run_txn_namespace, lambda t: t in decided)
            finally:
                writer.close()
        except (SluiceError, KafkaException) as e:
            log.warning("could not settle run %s of job %s: %s", plan.run_id, plan.job_name, e)
            return
        for txn, committed in settled:
            log.info(
                "run %s of job %s: %s %s, which it left prepared",
                plan.run_id,
                plan.job_name,
                "committed" if committed else "rolled back",
                txn,
            )

    # -- running ---------------------------------------------------------------------------
    def run(self) -> Summary:
        # Listen first: a metrics port in use fails the run before anything is written.
        server = (
            MetricsServer(lambda: [], self.metrics_port, self.metrics_host).start()
            if self.metrics_port is not None
            else None
        )
        try:
            return self._run(server)
        finally:
            if server is not None:
                server.close()

    def _run(self, server: MetricsServer | None) -> Summary:
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
        estimate = source.estimate_rows() if source.bounded else None
        serde = EventSerde(make_registry(plan.bootstrap, plan.schema_registry_url))
        coordinator = CheckpointCoordinator(plan, serde)
        if resumed:
            coordinator.resume()
        supervisor = TaskSupervisor(
            plan,
            self.job.setting.restore.max_restarts,
            faults.parse(os.environ.get(faults.ENV, "")),
        )
        metrics = self.metrics = RunMetrics(
            plan, supervisor, coordinator, estimate_rows=estimate, server=server
        )
        supervisor.start_all()
        display = ProgressDisplay(estimate=estimate) if not self.quiet else None
        status = "FAILED"
        over_limit: ErrorLimitExceeded | None = None
        with _StopRequests() as stop_requested:
            try:
                finished = self._supervise(plan, supervisor, coordinator, display, stop_requested)
                if finished:
                    sink.finish_target()
                status = "FINISHED" if finished else "STOPPED"
            except ErrorLimitExceeded as e:
                over_limit = e
            finally:
                supervisor.stop("reader")
                supervisor.stop("writer")
                if display:
                    display.close()
                final_metrics = metrics.close(status)
                coordinator.close()
                self._publish_status(plan, status, checkpoint=coordinator.completed)
        if over_limit is not None:
            raise over_limit.recounted(sum(a.errors for a in committed_acks(plan, serde)))
        positions = load_positions(plan.bootstrap, plan.offsets_key(""))
        return Summary(
            job=plan.job_name,
            run=plan.run_id,
            status=status.lower(),
            # Exact, from what Kafka committed: events the readers committed, rows the
            # writers' committed checkpoints applied (restarts re-read, but never count twice).
            numRead=sum(p.seq for p in positions.values()),
            numWrite=coordinator.rows_committed,
            byteRead=supervisor.bytes("reader"),
            byteWrite=supervisor.bytes("writer"),
            errors=coordinator.errors_committed,
            checkpoints=coordinator.completed,
            duration_s=time.monotonic() - started,
            restarts=supervisor.restarts_total,
            latency_p50_ms=final_metrics["totals"]["latency_p50_ms"],
            latency_p99_ms=final_metrics["totals"]["latency_p99_ms"],
        )

    def _supervise(
        self,
        plan: JobPlan,
        supervisor: TaskSupervisor,
        coordinator: CheckpointCoordinator,
        display: ProgressDisplay | None,
        stop_requested: _StopRequests,
    ) -> bool:
        """Until the job is done (True) or a stop request was honoured (False)."""
        final_checkpoint: int | None = None
        while True:
            supervisor.poll(0.1)
            rows_read = supervisor.rows("reader")
            coordinator.poll(rows_read)
            if self.metrics is not None:
                self.metrics.tick()
            if display:
                display.update(rows_read, supervisor.rows("writer"), coordinator.completed)
            readers_done = supervisor.all_finished("reader")
            self._check_error_limit(plan, coordinator.errors_committed, rows_read, readers_done)
            # Kafka holding every final ack is not enough: a writer that died between its
            # Kafka commit and its sink commit finishes only once its restart has committed
            # the sink (recovery), so the job waits for every writer to say it finished.
            if readers_done and coordinator.all_final and supervisor.all_finished("writer"):
                return True
            if stop_requested.requested and final_checkpoint is None:
                # Stop with a checkpoint: everything before it lands in the sink; what the
                # readers commit after it is applied by the next run (isRestore).
                final_checkpoint = coordinator.trigger_now()
                log.info("stopping: waiting for checkpoint %d", final_checkpoint)
            if final_checkpoint is not None and coordinator.completed >= final_checkpoint:
                return False

    def _check_error_limit(
        self, plan: JobPlan, errors: int, rows_read: int, reading_done: bool
    ) -> None:
        """FlinkX/DataX ``errorLimit``: ``record`` rejected rows at most (unset: none), and at
        most ``percentage`` % of the rows read (checked once reading is done, when the ratio
        means something)."""
        if not errors:
            return
        limit = self.job.setting.error_limit
        see = f"rejected rows are in topic {plan.dirty_topic}: `sluice dirty {plan.job_name}`"
        allowed = limit.record if limit.record is not None else (None if limit.percentage else 0)
        if allowed is not None and errors > allowed:
            raise ErrorLimitExceeded(
                lambda n: (
                    f"job {plan.job_name}: {n} rows rejected by the sink, more than "
                    f"setting.errorLimit.record ({allowed}); {see}"
                ),
                errors,
            )
        if limit.percentage is not None and reading_done and rows_read:
            share = 100.0 * errors / rows_read
            if share > limit.percentage:
                raise ErrorLimitExceeded(
                    lambda n: (
                        f"job {plan.job_name}: {100.0 * n / rows_read:.2f}% of rows "
                        f"rejected by the sink, more than setting.errorLimit.percentage "
                        f"({limit.percentage}%); {see}"
                    ),
                    errors,
                )


class ErrorLimitExceeded(TaskFailed):
    """``errorLimit`` tripped on the rejections committed so far. Other writers may commit
    theirs while the run stops, so the line the user reads is made once every task has
    stopped (:meth:`recounted`), with the number ``sluice dirty`` and ``status`` show."""

    def __init__(self, message: Callable[[int], str], errors: int) -> None:
        super().__init__(message(errors))
        self.message = message
        self.errors = errors

    def recounted(self, errors: int) -> ErrorLimitExceeded:
        return ErrorLimitExceeded(self.message, max(errors, self.errors))


class _StopRequests:
    """SIGINT/SIGTERM ask the run to stop at the next checkpoint; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("%s received: stopping after the next checkpoint", signal.Signals(signum).name)

    def __enter__(self) -> _StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
