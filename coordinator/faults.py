"""Fault injection for crash tests: a task kills itself with SIGKILL at a named point.

``SLUICE_FAULTS`` holds comma-separated ``task:point:n`` entries — e.g.
``writer-0:after_prepare:2`` kills writer-0 right after its 2nd sink pre-commit. The runner
hands each task its faults on its *first* start only, so a restarted task runs clean and the
test sees recovery. Points:

* reader: ``mid_txn`` (rows produced, transaction open), ``after_commit``
* writer: ``mid_write`` (rows applied, nothing prepared), ``after_prepare`` (XA prepared,
  Kafka not committed), ``before_kafka_commit`` (inside the Kafka transaction: ack, offsets
  and a Kafka sink's records produced, not committed), ``after_kafka_commit`` (Kafka
  committed, XA not committed), ``commit_unconfirmed`` (Kafka committed, but the commit call
  raises a timeout as after a broker bounce: the outcome looks unknown to the task),
  ``after_sink_commit`` (both committed, the next sink transaction not begun)

The ``n`` counts occurrences of the point in that process. Without ``SLUICE_FAULTS`` every
check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SLUICE_FAULTS"


def parse(spec: str) -> dict[str, dict[str, int]]:
    """``"writer-0:after_prepare:2,reader-1:mid_txn:5"`` → ``{task: {point: n}}``."""
    out: dict[str, dict[str, int]] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        task, point, n = entry.split(":")
        out.setdefault(task, {})[point] = int(n)
    return out


class Faults:
    def __init__(self, points: dict[str, int] | None = None) -> None:
        self.points = points or {}
        self.seen: Counter[str] = Counter()

    def hit(self, point: str) -> None:
        if point not in self.points:
            return
        self.seen[point] += 1
        if self.seen[point] == self.points[point]:
            os.kill(os.getpid(), signal.SIGKILL)

    def due(self, point: str) -> bool:
        """Like :meth:`hit`, for faults the caller raises instead of dying: True on the
        occurrence to fault."""
        if point not in self.points:
            return False
        self.seen[point] += 1
        return self.seen[point] == self.points[point]


NO_FAULTS = Faults()
