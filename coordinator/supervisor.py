"""Task processes of one job run: start them, watch them, restart the ones that crash.

A task that dies (SIGKILL, OOM) or stops on a transient error (lost connection, broker
down) is started again, up to ``setting.restore.maxRestarts`` times, with a growing pause.
The new incarnation fences the old one (same ``transactional.id``), resolves what it left
prepared, and resumes from the committed position or offsets, so a restart loses nothing
and applies nothing twice. Errors in the user's input or data are not retried.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import queue
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pymysql

from coordinator.errors import ConfigError, SluiceError, TaskFailed, TransientError
from coordinator.faults import Faults
from coordinator.logs import Redactor, configure_logging, job_secrets
from coordinator.metrics import TaskView
from coordinator.mysql_client import sql_failure
from coordinator.plan import JobPlan
from coordinator.reporting import QueueReporter, TaskCounters, add_counters
from coordinator.watchdog import EXIT_STUCK

log = logging.getLogger("sluice.supervisor")


def ignore_stop_signals() -> None:
    """Ctrl-C, and `kill -TERM -<pgid>` or a service manager stopping the whole group, reach
    every task too: the runner alone decides how tasks stop (after a checkpoint), and a task
    that died of the signal would be restarted as if it had crashed."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def task_main(
    kind: str,
    plan: JobPlan,
    index: int,
    events: Any,
    stop: Any,
    level: int,
    fault_points: dict[str, int],
) -> None:
    """Entry point of a task process."""
    ignore_stop_signals()
    die_with_parent()
    task = f"{kind}-{index}"
    configure_logging(plan.job, level=level, task=task)  # the runner's format, file, redaction
    reporter = QueueReporter(events)
    faults = Faults(fault_points)
    try:
        if kind == "reader":
            from coordinator.reader_task import run_reader

            run_reader(plan, index, reporter, stop, faults)
        else:
            from coordinator.writer_task import run_writer

            run_writer(plan, index, reporter, stop, faults)
    except (ConfigError, TaskFailed) as e:
        reporter.failed(task, str(e), retriable=False)
        raise SystemExit(1) from None
    except pymysql.MySQLError as e:
        # A statement no connector wrapped: classified by its MySQL error code the one way
        # every MySQL error is (coordinator.mysql_client.sql_failure), so a syntax error or a
        # bad session statement stops the job instead of being retried.
        failure = sql_failure(e, task)
        reporter.failed(task, str(failure), retriable=isinstance(failure, TransientError))
        raise SystemExit(1) from None
    except SluiceError as e:  # connection trouble and the like: worth another try
        reporter.failed(task, str(e), retriable=True)
        raise SystemExit(1) from None
    except Exception as e:  # noqa: BLE001 - reported to the runner, then the task ends
        log.error("%s stopped:\n%s", task, traceback.format_exc())
        reporter.failed(task, f"{type(e).__name__}: {e}", retriable=True)
        raise SystemExit(1) from None


def die_with_parent() -> None:
    """A task must not outlive a runner that was killed: Linux kills it with the parent
    (PR_SET_PDEATHSIG). Elsewhere a restarted run fences orphans through transactional ids."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


PR_SET_PDEATHSIG = 1


@dataclass
class TaskState:
    kind: str
    index: int
    process: Any = None
    counters: TaskCounters = field(default_factory=TaskCounters)
    finished: bool = False
    restarts: int = 0
    restart_at: float | None = None
    last_error: str = ""
    failures: dict[str, int] = field(default_factory=dict)
    earlier: TaskCounters = field(default_factory=TaskCounters)
    """What the task's previous incarnations reported (a new one counts from zero)."""


class TaskSupervisor:
    def __init__(self, plan: JobPlan, max_restarts: int, faults: dict[str, dict[str, int]]) -> None:
        self.plan = plan
        self.max_restarts = max_restarts
        self.faults = faults
        self.ctx = mp.get_context("spawn")
        self.events = self.ctx.Queue()
        self.stop_events = {"reader": self.ctx.Event(), "writer": self.ctx.Event()}
        self.level = logging.getLogger().getEffectiveLevel()
        self.tasks: dict[str, TaskState] = {}
        for i in range(plan.writer_count):
            self.tasks[f"writer-{i}"] = TaskState("writer", i)
        for i in range(len(plan.reader_parts)):
            self.tasks[f"reader-{i}"] = TaskState("reader", i)
        self.restarts_total = 0
        self.redact = Redactor(job_secrets(plan.job))

    def start_all(self) -> None:
        for name, state in self.tasks.items():
            self._start(name, state, self.faults.get(name, {}))

    def _start(self, name: str, state: TaskState, fault_points: dict[str, int]) -> None:
        state.process = self.ctx.Process(
            target=task_main,
            args=(
                state.kind,
                self.plan,
                state.index,
                self.events,
                self.stop_events[state.kind],
                self.level,
                fault_points,
            ),
            name=f"sluice-{name}",
            daemon=True,
        )
        state.process.start()
        state.restart_at = None

    # -- watching -------------------------------------------------------------------------
    def poll(self, timeout: float = 0.1) -> None:
        """Take in task events and restart or fail tasks that stopped. Raises TaskFailed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, task, payload = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self._on_event(kind, self.tasks[task], task, payload)
        now = time.monotonic()
        for name, state in self.tasks.items():
            code = state.process.exitcode if state.process is not None else None
            if state.restart_at is not None:
                if now >= state.restart_at:
                    self._start(name, state, {})
                continue
            if code is None or code == 0 or state.finished:
                continue
            self._drain_for(name)
            self._restart_or_fail(name, state, state.last_error or exit_text(code))

    def _on_event(self, kind: str, state: TaskState, task: str, payload: Any) -> None:
        if kind == "failed":
            message, retriable = payload
            message = self.redact(message)  # a driver's error text may quote anything
            state.last_error = message
            if not retriable:
                raise TaskFailed(f"job {self.plan.job_name}: {task} failed: {message}")
            return
        state.counters = payload
        if kind == "finished":
            state.finished = True

    def _drain_for(self, name: str) -> None:
        """A dead task's last words may still be in the queue: read them first."""
        time.sleep(0.1)
        while True:
            try:
                kind, task, payload = self.events.get_nowait()
            except queue.Empty:
                return
            self._on_event(kind, self.tasks[task], task, payload)

    def _restart_or_fail(self, name: str, state: TaskState, why: str) -> None:
        if state.restarts >= self.max_restarts:
            raise TaskFailed(
                f"job {self.plan.job_name}: {name} failed {state.restarts + 1} times; last: {why}"
                + ("" if self.max_restarts else " (setting.restore.maxRestarts is 0)")
            )
        state.restarts += 1
        self.restarts_total += 1
        cls = "transient" if state.last_error else "crash"  # a failed event, or just an exit
        state.failures[cls] = state.failures.get(cls, 0) + 1
        state.earlier = add_counters(state.earlier, state.counters)
        state.counters = TaskCounters()
        pause = min(10.0, 0.5 * 2 ** (state.restarts - 1))
        log.warning(
            "%s stopped (%s); restarting in %.1fs (%d/%d)",
            name,
            why,
            pause,
            state.restarts,
            self.max_restarts,
        )
        state.last_error = ""
        state.process = None
        state.restart_at = time.monotonic() + pause

    # -- queries and stopping -------------------------------------------------------------
    def rows(self, kind: str) -> int:
        return sum(s.counters.rows for s in self.tasks.values() if s.kind == kind)

    def bytes(self, kind: str) -> int:
        return sum(s.counters.bytes for s in self.tasks.values() if s.kind == kind)

    def task_views(self) -> list[TaskView]:
        """Each task's latest counters, for a metrics snapshot."""
        views = []
        for name, s in sorted(self.tasks.items()):
            total = add_counters(s.earlier, s.counters)
            views.append(
                TaskView(
                    task=name,
                    kind=s.kind,
                    rows=total.rows,
                    bytes=total.bytes,
                    errors=total.errors,
                    restarts=s.restarts,
                    errors_by_class=total.errors_by_class,
                    gauges=dict(s.counters.extra),  # gauges: the current incarnation's
                    latency=total.latency,
                    failures=dict(s.failures),
                )
            )
        return views

    def all_finished(self, kind: str) -> bool:
        return all(s.finished for s in self.tasks.values() if s.kind == kind)

    def stop(self, kind: str, timeout: float = 60.0) -> None:
        """Ask every task of ``kind`` to stop, and wait for them."""
        self.stop_events[kind].set()
        deadline = time.monotonic() + timeout
        for state in self.tasks.values():
            if state.kind != kind or state.process is None:
                continue
            state.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if state.process.is_alive():
                log.warning("%s-%d did not stop in time; killing it", kind, state.index)
                state.process.kill()
                state.process.join()
        self._drain_quietly()

    def _drain_quietly(self) -> None:
        while True:
            try:
                kind, task, payload = self.events.get_nowait()
            except queue.Empty:
                return
            if kind != "failed":
                self.tasks[task].counters = payload


def exit_text(code: int) -> str:
    if code == EXIT_STUCK:
        return "a Kafka call blocked past its deadline"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
