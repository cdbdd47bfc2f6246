"""``setting.speed.bytes`` / ``setting.speed.record``: token buckets per reader channel.

The job's limit is shared evenly by its reader channels (FlinkX and DataX state the limit
for the job), each enforcing its share with its own bucket: no coordination between tasks,
at the cost that a channel which finished early leaves its share unused.

A reader pays for a batch *after* reading it (its size is known only then) and may go into
debt; it waits before reading the next one until the debt is paid. The reader task never
waits inside an open Kafka transaction (see ``ReaderTask``), so a low limit slows the
source down but never holds a transaction open past ``transaction.timeout.ms``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Tokens a full bucket holds, in seconds of rate. Small, so that the achieved rate over a
# few seconds stays within a few % of the limit (a large burst would run ahead of it).
BURST_S = 0.1


class TokenBucket:
    """``rate`` tokens per second, at most ``rate * burst_s`` saved up; may go into debt."""

    def __init__(
        self, rate: float, burst_s: float = BURST_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = self.rate * burst_s
        self.clock = clock
        self.tokens = 0.0  # no burst at the start: a run's rate is the limit from its first row
        self._last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, n: float) -> None:
        self._refill()
        self.tokens -= n

    def pause(self) -> float:
        """Seconds until the debt is paid (0 when there is none)."""
        self._refill()
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class ReadRateLimiter:
    """A reader channel's share of the job's records/s and bytes/s limits (0 = none)."""

    def __init__(
        self,
        records_per_s: float,
        bytes_per_s: float,
        channels: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        share = max(1, channels)
        self.records = TokenBucket(records_per_s / share, clock=clock) if records_per_s else None
        self.bytes = TokenBucket(bytes_per_s / share, clock=clock) if bytes_per_s else None

    @property
    def active(self) -> bool:
        return self.records is not None or self.bytes is not None

    def take(self, rows: int, nbytes: int) -> None:
        if self.records is not None:
            self.records.take(rows)
        if self.bytes is not None:
            self.bytes.take(nbytes)

    def pause(self) -> float:
        return max(
            self.records.pause() if self.records is not None else 0.0,
            self.bytes.pause() if self.bytes is not None else 0.0,
        )
