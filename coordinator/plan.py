"""A job run's plan: every name and number the tasks of one run agree on.

Built once by whoever starts the run (``sluice run`` or a worker) and handed to each task, so
no task derives a topic, group or transactional id on its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from coordinator.kafka_io import TopicSpec


def safe_name(text: str) -> str:
    """Kafka topic / group friendly: letters, digits, '.', '_', '-'.

    Job and group names are refused unless they already are such names of at most 100
    characters (``coordinator.job.problems.job_name_problem``), so for them this is the
    identity: one name, one set of topics, and the topics of every run before stay the same.
    The rewriting only still applies to records written before names were checked."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:100] or "job"


@dataclass(frozen=True)
class JobPlan:
    job_name: str
    run_id: str
    bootstrap: str
    schema_registry_url: str | None
    topic_prefix: str
    partitions: int
    replication_factor: int
    reader_parts: tuple[str, ...]
    """The source's part specs (opaque to the runner), reader task i reads part i."""
    writer_count: int
    exactly_once: bool
    checkpoint_interval_s: float
    max_rows_per_checkpoint: int | None
    job: Any
    """The validated ``coordinator.job.Job``; tasks build their connectors from it."""

    # -- names ------------------------------------------------------------------------------
    @property
    def _base(self) -> str:
        return f"{self.topic_prefix}.{safe_name(self.job_name)}.{self.run_id}"

    @property
    def data_topic(self) -> str:
        return f"{self._base}.data"

    @property
    def control_topic(self) -> str:
        return f"{self._base}.control"

    @property
    def dirty_topic(self) -> str:
        """Rows the sink rejected, for every run of the job (issue: ``sluice-dirty-<job>``)."""
        return f"sluice-dirty-{safe_name(self.job_name)}"

    @property
    def writer_group(self) -> str:
        return f"{self._base}.writers"

    @property
    def reader_tasks(self) -> tuple[str, ...]:
        return tuple(f"reader-{i}" for i in range(len(self.reader_parts)))

    def writer_partitions(self, index: int) -> list[int]:
        """Data topic partitions owned by writer task ``index`` (round robin)."""
        return [p for p in range(self.partitions) if p % self.writer_count == index]

    def transactional_id(self, task: str) -> str:
        return f"{self._base}.{task}"

    def offsets_key(self, task: str) -> str:
        return f"{safe_name(self.job_name)}/{self.run_id}/{task}"

    @property
    def run_key(self) -> str:
        return f"job/{safe_name(self.job_name)}"

    @property
    def run_txn_namespace(self) -> str:
        """The prefix every sink transaction id of this run starts with (all its writers)."""
        return sink_txn_namespace(self._base)

    def sink_txn_prefix(self, task: str) -> str:
        return f"{sink_txn_namespace(self._base)}{task}-"

    def topics(self) -> list[TopicSpec]:
        rf = self.replication_factor
        return [
            TopicSpec(self.data_topic, self.partitions, replication_factor=rf, large_records=True),
            TopicSpec(self.control_topic, 1, replication_factor=rf),
            # A rejected row travels whole, as JSON: as large as its row event, or larger.
            TopicSpec(self.dirty_topic, 1, replication_factor=rf, large_records=True),
        ]


def sink_txn_namespace(run_base: str) -> str:
    """The prefix of every sink transaction id of one job run (``<prefix>.<job>.<run>``):
    short, because MySQL XA ids are at most 64 bytes, and unique per run."""
    return f"sl-{hashlib.sha1(run_base.encode()).hexdigest()[:10]}-"
