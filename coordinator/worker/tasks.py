"""One task of one job, run by a worker as a child process.

Readers and writers run exactly as under ``sluice run`` (``supervisor.task_main``): their
``transactional.id`` is stable per job run and task, so whichever worker starts a task next
fences the previous owner — a dead worker's orphan or a paused zombie — through
``init_transactions``. The job's checkpoint coordinator is a task of its own.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from coordinator.plan import JobPlan
from coordinator.reporting import TaskCounters
from coordinator.supervisor import die_with_parent, exit_text, ignore_stop_signals, task_main

# Spawned, not forked: a task must not inherit the worker's Kafka clients and their threads.
CTX = mp.get_context("spawn")


def _coordinator_main(plan: JobPlan, events: Any, stop: Any, level: int) -> None:
    """Trigger checkpoints and follow their completion until asked to stop."""
    ignore_stop_signals()
    die_with_parent()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from coordinator.checkpoint import CheckpointCoordinator
    from schemas.registry import make_registry
    from schemas.serde import EventSerde

    coordinator = CheckpointCoordinator(
        plan, EventSerde(make_registry(plan.bootstrap, plan.schema_registry_url))
    )
    coordinator.resume()  # numbering continues where the previous owner left it
    counters = TaskCounters()
    last = 0.0
    try:
        while not stop.is_set():
            coordinator.poll(0)
            counters.checkpoint = coordinator.completed
            counters.rows = coordinator.rows_committed
            now = time.monotonic()
            if now - last >= 1.0:
                events.put(("progress", "coordinator", counters))
                last = now
            time.sleep(0.05)
    finally:
        coordinator.close()


@dataclass
class TaskRun:
    """A running (or stopped) task process of this worker."""

    job: str
    task: str
    slot: int
    version: int
    plan: JobPlan
    process: Any = None
    stop: Any = None
    events: Any = None
    counters: TaskCounters = field(default_factory=TaskCounters)
    started_ms: int = 0
    finished: bool = False
    error: str = ""
    retriable: bool = True

    def start(self, level: int) -> None:
        self.stop, self.events = CTX.Event(), CTX.Queue()
        if self.task == "coordinator":
            target: Any = _coordinator_main
            args: tuple[Any, ...] = (self.plan, self.events, self.stop, level)
        else:
            kind, index = self.task.rsplit("-", 1)
            target, args = (
                task_main,
                (kind, self.plan, int(index), self.events, self.stop, level, {}),
            )
        self.process = CTX.Process(
            target=target, args=args, name=f"sluice-{self.job}-{self.task}", daemon=True
        )
        self.process.start()
        self.started_ms = int(time.time() * 1000)

    def drain(self) -> None:
        while True:
            try:
                kind, _task, payload = self.events.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if kind == "failed":
                self.error, self.retriable = payload
            else:
                self.counters = payload
                if kind == "finished":
                    self.finished = True

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode if self.process is not None else None

    def exit_text(self) -> str:
        code = self.exitcode
        return self.error or (exit_text(code) if code is not None else "")

    def request_stop(self) -> None:
        if self.stop is not None:
            self.stop.set()

    def join(self, timeout: float) -> None:
        if self.process is None:
            return
        self.process.join(timeout=max(0.05, timeout))
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.drain()
