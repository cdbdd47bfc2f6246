"""How a task tells its runner how it is doing: progress counters, failure, end.

Local mode passes these over a multiprocessing queue; a worker would publish them to the
status topic. Tasks only see :class:`TaskReporter`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from coordinator.metrics import LatencyHistogram


@dataclass
class TaskCounters:
    rows: int = 0
    bytes: int = 0
    errors: int = 0
    checkpoint: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    """Gauges (``lag_ms``, ``checkpoint_ms``, ``rows_per_s``), see ``coordinator.metrics``."""
    errors_by_class: dict[str, int] = field(default_factory=dict)
    latency: LatencyHistogram | None = None
    """Writers: end-to-end latency of the rows they committed."""


def add_counters(a: TaskCounters, b: TaskCounters) -> TaskCounters:
    """Counters of two incarnations of a task, added (gauges: ``b``'s)."""
    latency = None
    if a.latency is not None or b.latency is not None:
        latency = LatencyHistogram()
        for h in (a.latency, b.latency):
            if h is not None:
                latency.merge(h)
    classes = dict(a.errors_by_class)
    for cls, n in b.errors_by_class.items():
        classes[cls] = classes.get(cls, 0) + n
    return TaskCounters(
        rows=a.rows + b.rows,
        bytes=a.bytes + b.bytes,
        errors=a.errors + b.errors,
        checkpoint=max(a.checkpoint, b.checkpoint),
        extra=dict(b.extra),
        errors_by_class=classes,
        latency=latency,
    )


class TaskReporter(Protocol):
    def progress(self, task: str, counters: TaskCounters, force: bool = False) -> None: ...
    def failed(self, task: str, message: str, retriable: bool) -> None: ...
    def finished(self, task: str, counters: TaskCounters) -> None: ...


class QueueReporter:
    """Sends ``(kind, task, payload)`` tuples to a multiprocessing queue, progress at most
    every ``interval`` seconds so a fast task does not flood its runner. Counters are copied:
    the queue pickles in a background thread while the task goes on changing them."""

    def __init__(self, queue: Any, interval: float = 0.5) -> None:
        self.queue = queue
        self.interval = interval
        self._last = 0.0

    def progress(self, task: str, counters: TaskCounters, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            self.queue.put(("progress", task, copy.deepcopy(counters)))

    def failed(self, task: str, message: str, retriable: bool) -> None:
        self.queue.put(("failed", task, (message, retriable)))

    def finished(self, task: str, counters: TaskCounters) -> None:
        self.queue.put(("finished", task, copy.deepcopy(counters)))
