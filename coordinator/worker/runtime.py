"""``sluice worker --group G``: a long-running process that runs its share of the group's
tasks.

Each task of each job occupies one partition ("slot") of the tasks topic
``sluice-tasks-<group>``; the worker subscribes to that topic with ``group.id = G``, so
Kafka's group coordinator hands out the slots (cooperative-sticky: a rebalance moves only the
slots that must move). The worker runs the tasks of the slots it owns, as they are wanted by
``sluice-configs``. A worker that dies or hangs past ``session.timeout.ms`` loses its slots;
their new owner starts the tasks, which fence the old ones by ``transactional.id`` and
resume from the last committed checkpoint. SIGTERM: wait for the next checkpoint of the
jobs it runs, stop its tasks, leave the group, exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from coordinator.connectors import build_sink
from coordinator.errors import ConfigError, SluiceError
from coordinator.kafka_io import STATUS_TOPIC, check_reachable, client_config, producer_config
from coordinator.plan import JobPlan, safe_name
from coordinator.worker.jobs import (
    CONFIGS_TOPIC,
    check_run_unchanged,
    ensure_control_topics,
    parse_doc,
    plan_of,
    tasks_topic,
)
from coordinator.worker.tasks import TaskRun

log = logging.getLogger("sluice.worker")

PROGRESS_EVERY_S = 2.0
STOP_TIMEOUT_S = 30.0
# Join errors no retry can cure: the worker's own settings are at fault.
_FATAL_JOIN_ERRORS = {
    KafkaError.INVALID_SESSION_TIMEOUT: "--session-timeout-ms",
    KafkaError.INVALID_GROUP_ID: "--group",
}


class Follower:
    """The latest value per key of a one-partition compacted topic, kept current by polling."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.state: dict[str, Any] = {}
        self._c = Consumer(
            {
                **client_config(bootstrap),
                "group.id": "sluice-follower-unused",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        self._c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    def poll(self, timeout: float = 0.0) -> None:
        while True:
            msgs = self._c.consume(num_messages=5000, timeout=timeout)
            for m in msgs:
                raw_key, value = m.key(), m.value()
                if m.error() is not None or raw_key is None:
                    continue
                key = raw_key.decode()
                if value is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = json.loads(value)
            if len(msgs) < 5000:
                return
            timeout = 0.0

    def close(self) -> None:
        self._c.close()


class Worker:
    def __init__(
        self,
        group: str,
        bootstrap: str,
        *,
        rest_port: int | None = 8083,
        rest_host: str = "127.0.0.1",
        rest_auth: Any = None,
        rest_tls: Any = None,
        slots: int = 0,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.group = group
        self.bootstrap = bootstrap
        self.rest_port = rest_port
        self.rest_host = rest_host
        self.rest_auth = rest_auth
        self.rest_tls = rest_tls
        self.slots = slots
        self.session_timeout_ms = session_timeout_ms
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.level = logging.getLogger().getEffectiveLevel()
        self.owned: set[int] = set()
        self.runs: dict[int, TaskRun] = {}
        self.finished: set[tuple[str, str, int]] = set()
        self.failed: set[tuple[str, str, int]] = set()
        self.backoff: dict[tuple[str, str, int], tuple[float, int]] = {}
        self._plans: dict[tuple[str, int], JobPlan] = {}
        self.stopping = False
        self.started_at = time.time()
        self.joined = False  # an assignment (possibly empty) arrived: the join succeeded
        self.group_error: str | None = None  # the last group error, until the next join

    # -- life -----------------------------------------------------------------------------
    def run(self) -> int:
        check_reachable(self.bootstrap)
        ensure_control_topics(self.bootstrap, self.group, self.slots)
        self.configs = Follower(self.bootstrap, CONFIGS_TOPIC)
        self.status = Follower(self.bootstrap, STATUS_TOPIC)
        self.producer = Producer(producer_config(self.bootstrap))
        if self.rest_port is not None:
            from coordinator.worker.rest import serve

            self.http = serve(self, self.rest_host, self.rest_port, self.rest_auth, self.rest_tls)
            threading.Thread(target=self.http.serve_forever, daemon=True).start()
            scheme = "https" if self.rest_tls is not None else "http"
            guarded = self.rest_auth is not None and self.rest_auth.enabled
            log.info("REST API on %s://%s:%d%s", scheme, self.rest_host,
                     self.http.server_address[1],
                     ", credentials required" if guarded
                     else " only: no REST credentials configured (--rest-auth)")  # fmt: skip
        self.consumer = Consumer(
            {
                **client_config(self.bootstrap),
                "group.id": self.group,
                "client.id": self.worker_id,
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(300, self.session_timeout_ms // 6),
                "partition.assignment.strategy": "cooperative-sticky",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe(
            [tasks_topic(self.group)],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info("worker %s joining group %s", self.worker_id, self.group)
        last_progress = 0.0
        try:
            while not self.stopping:
                self._tick()
                if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    last_progress = time.monotonic()
                    for run in self.runs.values():
                        self._publish(run, "FINISHED" if run.finished else "RUNNING")
            log.info("SIGTERM: waiting for the next checkpoint of %s", sorted(self._jobs()))
            self._await_checkpoint(STOP_TIMEOUT_S)
            self._stop_runs(list(self.runs), "UNASSIGNED")
        finally:
            self.consumer.close()  # leaves the group: the others take the slots at once
            self.producer.flush(10)
            if self.rest_port is not None:
                self.http.shutdown()
        log.info("worker %s left group %s", self.worker_id, self.group)
        return 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stopping:
            raise KeyboardInterrupt
        self.stopping = True

    def _tick(self) -> None:
        msg = self.consumer.poll(0.1)  # keeps us in the group; rebalance callbacks run in here
        error = msg.error() if msg is not None else None
        if error is not None:
            self.on_group_error(error)
        self.configs.poll()
        self.status.poll()
        self._watch()
        self._reconcile()
        self._complete_jobs()
        self.producer.poll(0)

    # -- group membership -----------------------------------------------------------------
    def on_group_error(self, error: KafkaError) -> None:
        """An error the consumer reports (a failed JoinGroup among them): fatal ones stop
        the worker with one line; the others show in ``/health`` until the next join."""
        flag = _FATAL_JOIN_ERRORS.get(error.code())
        if flag is not None:
            value = self.session_timeout_ms if flag == "--session-timeout-ms" else self.group
            raise ConfigError(
                f"{flag} {value}: the broker refuses this worker in group {self.group}: "
                f"{error.str()}"
            )
        if error.str() != self.group_error:
            log.warning("group %s: %s", self.group, error.str())
        self.group_error = error.str()

    def _on_assign(self, _c: Any, partitions: list[TopicPartition]) -> None:
        slots = {tp.partition for tp in partitions}
        if not self.joined:
            log.info("worker %s joined group %s", self.worker_id, self.group)
        self.joined, self.group_error = True, None
        self.owned |= slots
        log.info("assigned slots %s (now %s)", sorted(slots), sorted(self.owned))

    def _on_revoke(self, _c: Any, partitions: list[TopicPartition]) -> None:
        # Stopped before the revocation completes, so the slot's next owner never overlaps.
        slots = {tp.partition for tp in partitions}
        self.owned -= slots
        log.info("revoked slots %s", sorted(slots))
        self._stop_runs([s for s in slots if s in self.runs], None)

    def _on_lost(self, _c: Any, partitions: list[TopicPartition]) -> None:
        # We were thrown out (hung past the session timeout): others may run these tasks
        # already, and have fenced ours. Stop them; their late commits fail.
        slots = {tp.partition for tp in partitions}
        self.owned -= slots
        log.warning("lost slots %s (session timed out); stopping their tasks", sorted(slots))
        self._stop_runs([s for s in slots if s in self.runs], None)

    # -- tasks ----------------------------------------------------------------------------
    def _desired(self) -> dict[int, tuple[str, str, int, dict[str, Any]]]:
        out = {}
        for name, rec in self.configs.state.items():
            if rec.get("group") != self.group or rec.get("state") != "running":
                continue
            done = self.status.state.get(f"wjob/{safe_name(name)}") or {}
            if done.get("version") == rec["version"]:
                continue
            for task, slot in rec["slots"].items():
                if slot in self.owned:
                    out[slot] = (name, task, rec["version"], rec)
        return out

    def _plan(self, name: str, version: int, rec: dict[str, Any]) -> JobPlan:
        key = (name, version)
        if key not in self._plans:
            job = parse_doc(rec["config"], f"job {name}")
            # Tasks resume the record's run: a config that no longer describes it fails them.
            check_run_unchanged(job, rec)
            self._plans[key] = plan_of(job, rec, self.bootstrap)
        return self._plans[key]

    def _reconcile(self) -> None:
        desired = self._desired()
        stale = [
            slot
            for slot, run in self.runs.items()
            if desired.get(slot, ("", "", -1))[:3] != (run.job, run.task, run.version)
        ]
        if stale:
            self._stop_runs(stale, self._stopped_state)
        now = time.monotonic()
        for slot, (name, task, version, rec) in sorted(desired.items()):
            ident = (name, task, version)
            if slot in self.runs or ident in self.finished or ident in self.failed:
                continue
            seen = self.status.state.get(f"task/{safe_name(name)}/{task}") or {}
            if (
                task != "coordinator"
                and seen.get("version") == version
                and seen.get("state") == "FINISHED"
            ):
                self.finished.add(ident)
                continue
            if now < self.backoff.get(ident, (0.0, 0))[0]:
                continue
            try:
                plan = self._plan(name, version, rec)
            except SluiceError as e:
                self.failed.add(ident)
                self._publish_raw(name, task, slot, version, "FAILED", error=str(e))
                continue
            run = TaskRun(name, task, slot, version, plan)
            run.start(self.level)
            self.runs[slot] = run
            log.info("started %s/%s (slot %d, version %d)", name, task, slot, version)
            self._publish(run, "RUNNING")

    def _stopped_state(self, run: TaskRun) -> str | None:
        rec = self.configs.state.get(run.job)
        if rec is None:
            return "DELETED"
        done = self.status.state.get(f"wjob/{safe_name(run.job)}") or {}
        if done.get("version") == run.version:
            return "FINISHED"
        if rec.get("version") != run.version:
            return None  # restarting with a new version: the new run reports itself
        return {"paused": "PAUSED", "stopped": "STOPPED"}.get(rec.get("state", ""))

    def _stop_runs(self, slots: list[int], state: Any) -> None:
        runs = [self.runs.pop(s) for s in slots if s in self.runs]
        for run in runs:
            run.request_stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for run in runs:
            run.join(deadline - time.monotonic())
            log.info("stopped %s/%s (slot %d)", run.job, run.task, run.slot)
            name = state(run) if callable(state) else state
            if name is not None:
                self._publish(run, name)

    def _watch(self) -> None:
        for slot, run in list(self.runs.items()):
            was_finished = run.finished
            run.drain()
            if run.finished and not was_finished:
                self._publish(run, "FINISHED")
            code = run.exitcode
            if code is None:
                continue
            del self.runs[slot]
            ident = (run.job, run.task, run.version)
            if code == 0:
                self.finished.add(ident)
                self._publish(run, "FINISHED")
                continue
            why = run.exit_text()
            if not run.retriable:
                self.failed.add(ident)
                log.error("%s/%s failed: %s", run.job, run.task, why)
                self._publish(run, "FAILED", error=why)
                continue
            _, tries = self.backoff.get(ident, (0.0, 0))
            pause = min(10.0, 0.5 * 2**tries)
            self.backoff[ident] = (time.monotonic() + pause, tries + 1)
            log.warning("%s/%s stopped (%s); restarting in %.1fs", run.job, run.task, why, pause)
            self._publish(run, "RESTARTING", error=why)

    def _complete_jobs(self) -> None:
        """The owner of a bounded job's coordinator declares it finished once every reader
        and writer task finished in this version, after the sink's ``postSql``."""
        for run in list(self.runs.values()):
            if run.task != "coordinator":
                continue
            rec = self.configs.state.get(run.job) or {}
            tasks = [t for t in rec.get("slots", {}) if t != "coordinator"]
            states = [self.status.state.get(f"task/{safe_name(run.job)}/{t}") or {} for t in tasks]
            if not tasks or not all(
                s.get("state") == "FINISHED" and s.get("version") == run.version for s in states
            ):
                continue
            try:
                build_sink(run.plan.job, run.plan.bootstrap).finish_target()
            except SluiceError as e:
                log.error("%s: postSql failed: %s", run.job, e)
            key = f"wjob/{safe_name(run.job)}"
            value = {"job": run.job, "version": run.version, "state": "FINISHED"}
            self.producer.produce(STATUS_TOPIC, json.dumps(value).encode(), key.encode())
            self.producer.flush(10)
            self.status.state[key] = value
            log.info("job %s finished", run.job)

    def _jobs(self) -> set[str]:
        return {run.job for run in self.runs.values()}

    def _await_checkpoint(self, timeout: float) -> None:
        """Until one more checkpoint of every job we run completed (or ``timeout``)."""
        targets = {}
        for run in self.runs.values():
            cp = self.status.state.get(f"checkpoint/{safe_name(run.job)}/{run.plan.run_id}") or {}
            k = int(cp.get("checkpoint") or 0)
            # One in progress at the signal counts: it completes after it.
            targets[run.job, run.plan.run_id, run.version] = (
                k + 1 if cp.get("state") == "COMPLETED" else max(1, k)
            )
        deadline = time.monotonic() + timeout
        while targets and time.monotonic() < deadline:
            self.consumer.poll(0.1)
            self.status.poll()
            self._watch()
            for (job, run_id, version), k in list(targets.items()):
                cp = self.status.state.get(f"checkpoint/{safe_name(job)}/{run_id}") or {}
                done = self.status.state.get(f"wjob/{safe_name(job)}") or {}
                finished = done.get("version") == version  # an older version's end is not ours
                if (cp.get("state") == "COMPLETED" and cp.get("checkpoint", 0) >= k) or finished:
                    del targets[job, run_id, version]
        if targets:
            log.warning("no checkpoint completed within %.0fs for %s", timeout, sorted(targets))

    # -- status ---------------------------------------------------------------------------
    def _publish(self, run: TaskRun, state: str, error: str | None = None) -> None:
        self._publish_raw(
            run.job,
            run.task,
            run.slot,
            run.version,
            state,
            error=error if error is not None else (run.error or None),
            started_ms=run.started_ms,
            rows=run.counters.rows,
            checkpoint=run.counters.checkpoint,
            pid=run.process.pid if run.process is not None else None,
        )

    def _publish_raw(
        self, job: str, task: str, slot: int, version: int, state: str, **extra: Any
    ) -> None:
        value = {
            "job": job,
            "task": task,
            "slot": slot,
            "version": version,
            "state": state,
            "worker": self.worker_id,
            "ts_ms": int(time.time() * 1000),
            **extra,
        }
        key = f"task/{safe_name(job)}/{task}"
        self.producer.produce(STATUS_TOPIC, json.dumps(value).encode(), key.encode())
        self.producer.poll(0)
        self.status.state[key] = value

    def health(self) -> dict[str, Any]:
        if self.stopping:
            status = "STOPPING"
        elif self.group_error is not None and not self.owned:
            status = "DOWN"  # not in the group: it runs nothing, whatever it was told
        else:
            status = "UP" if self.joined else "JOINING"
        return {
            "status": status,
            **({"error": self.group_error} if status == "DOWN" else {}),
            "worker": self.worker_id,
            "group": self.group,
            "slots": sorted(self.owned),
            "tasks": [f"{r.job}/{r.task}" for r in self.runs.values()],
            "uptime_s": round(time.time() - self.started_at, 1),
        }
