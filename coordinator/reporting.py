"""How a task tells its runner how it is doing: progress counters, failure, end.

Local mode passes these over a multiprocessing queue; a worker would publish them to the
status topic. Tasks only see :class:`TaskReporter`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class TaskCounters:
    rows: int = 0
    bytes: int = 0
    errors: int = 0
    checkpoint: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class TaskReporter(Protocol):
    def progress(self, task: str, counters: TaskCounters, force: bool = False) -> None: ...
    def failed(self, task: str, message: str, retriable: bool) -> None: ...
    def finished(self, task: str, counters: TaskCounters) -> None: ...


class QueueReporter:
    """Sends ``(kind, task, payload)`` tuples to a multiprocessing queue, progress at most
    every ``interval`` seconds so a fast task does not flood its runner."""

    def __init__(self, queue: Any, interval: float = 0.5) -> None:
        self.queue = queue
        self.interval = interval
        self._last = 0.0

    def progress(self, task: str, counters: TaskCounters, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            self.queue.put(("progress", task, counters))

    def failed(self, task: str, message: str, retriable: bool) -> None:
        self.queue.put(("failed", task, (message, retriable)))

    def finished(self, task: str, counters: TaskCounters) -> None:
        self.queue.put(("finished", task, counters))
