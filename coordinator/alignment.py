"""Barrier alignment for one writer task — pure bookkeeping, no I/O, unit-tested alone.

Every reader task writes Barrier k to every partition of the data topic. A writer owns some
partitions. Partition p has *passed* a new checkpoint once every reader's latest barrier on p
is beyond the last committed one; from then on p is held (its later records wait) until every
owned partition has passed, and the writer commits. The cut it commits is the smallest
barrier passed on all partitions, so each partition's committed offset sits right after a
barrier: all records before it are in the sink, none after.

A reader that finished wrote a *final* barrier; it counts as having passed every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

FINAL = 2**62
"""Checkpoint number standing for "the reader has ended"."""


class BarrierAligner:
    def __init__(self, reader_tasks: Iterable[str]) -> None:
        self.readers = tuple(reader_tasks)
        if not self.readers:
            raise ValueError("a job needs at least one reader task")
        self.last_committed = 0
        self._seen: dict[int, dict[str, int]] = {}

    # -- partitions come and go with consumer-group rebalances ------------------------------
    def assign(self, partition: int, finished_readers: Iterable[str] = ()) -> None:
        """Start tracking a partition. ``finished_readers`` wrote their final barrier on it
        before the committed offset we resume from (we will not see that barrier again)."""
        seen = dict.fromkeys(self.readers, 0)
        for r in finished_readers:
            if r in seen:
                seen[r] = FINAL
        self._seen[partition] = seen

    def reset(self) -> None:
        """After a rebalance every owned partition restarts from its committed offset."""
        self._seen.clear()
        self.last_committed = 0

    @property
    def partitions(self) -> list[int]:
        return sorted(self._seen)

    # -- records -------------------------------------------------------------------------
    def on_barrier(self, partition: int, reader: str, checkpoint: int, final: bool) -> None:
        seen = self._seen[partition]
        if reader not in seen:
            raise ValueError(
                f"barrier from unknown reader task {reader!r} on partition {partition}"
            )
        value = FINAL if final else checkpoint
        seen[reader] = max(seen[reader], value)

    def passed(self, partition: int) -> int:
        """Highest checkpoint every reader has passed on this partition."""
        return min(self._seen[partition].values())

    def is_held(self, partition: int) -> bool:
        """True once the partition passed a checkpoint not yet committed: hold its records."""
        return self.passed(partition) > self.last_committed

    def ready(self) -> int | None:
        """The checkpoint to commit now, if every owned partition has passed one."""
        if not self._seen:
            return None
        cut = min(self.passed(p) for p in self._seen)
        return cut if cut > self.last_committed else None

    def committed(self, checkpoint: int) -> None:
        self.last_committed = checkpoint

    def all_final(self) -> bool:
        return bool(self._seen) and all(self.passed(p) >= FINAL for p in self._seen)

    def final_partitions(self) -> list[int]:
        return [p for p in sorted(self._seen) if self.passed(p) >= FINAL]
