"""A running job's metrics, kept current by its runner: the snapshot ``/metrics`` serves
(``--metrics-port``) and the one published to ``sluice-status`` for ``sluice status``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from confluent_kafka import Producer

from coordinator.kafka_io import STATUS_TOPIC, producer_config
from coordinator.metrics import job_snapshot
from coordinator.metrics_http import MetricsServer
from coordinator.plan import JobPlan, safe_name

log = logging.getLogger("sluice.metrics")

REFRESH_S = 1.0
PUBLISH_S = 5.0


def metrics_key(job: str, run: str) -> str:
    """Key of a run's metrics record in ``sluice-status`` (compacted: the latest wins)."""
    return f"metrics/{safe_name(job)}/{run}"


class RunMetrics:
    def __init__(
        self,
        plan: JobPlan,
        supervisor: Any,
        coordinator: Any,
        *,
        estimate_rows: int | None,
        server: MetricsServer | None = None,
    ) -> None:
        self.plan = plan
        self.supervisor = supervisor
        self.coordinator = coordinator
        self.estimate_rows = estimate_rows
        self.started = time.monotonic()
        self._producer = Producer(producer_config(plan.bootstrap))
        self._refreshed = 0.0
        self._published = time.monotonic()
        self.latest = self._take("RUNNING")
        if server is not None:  # it listens already (its owner closes it): serve this run
            server.snapshots = lambda: [self.latest]

    def _take(self, state: str) -> dict[str, Any]:
        durations = self.coordinator.durations
        return job_snapshot(
            self.plan.job_name,
            self.plan.run_id,
            self.supervisor.task_views(),
            elapsed_s=time.monotonic() - self.started,
            checkpoints=self.coordinator.completed,
            checkpoint_ms=durations[-1] * 1000 if durations else None,
            estimate_rows=self.estimate_rows,
            state=state,
            committed_rows=self.coordinator.rows_committed,
        )

    def tick(self) -> None:
        """Called from the runner's loop: refresh now and then, publish less often."""
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            self._refreshed = now
            self.latest = self._take("RUNNING")  # one reference swap: scrapes see whole ones
        if now - self._published >= PUBLISH_S:
            self._published = now
            self._publish(self.latest)

    def _publish(self, snapshot: dict[str, Any]) -> None:
        key = metrics_key(self.plan.job_name, self.plan.run_id)
        self._producer.produce(STATUS_TOPIC, json.dumps(snapshot).encode(), key.encode())
        self._producer.poll(0)

    def close(self, state: str) -> dict[str, Any]:
        """The final snapshot (after the tasks stopped), published."""
        self.latest = self._take(state)
        try:
            self._publish(self.latest)
            self._producer.flush(30)
        except Exception as e:  # noqa: BLE001 - metrics must not turn a result into a failure
            log.warning("could not publish the final metrics: %s", e)
        return self.latest
