"""Token buckets of ``setting.speed`` (no servers: a fake clock)."""

from __future__ import annotations

import pytest

from coordinator.ratelimit import ReadRateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(limiter: ReadRateLimiter, clock: FakeClock, batches: int, rows: int, nbytes: int):
    """A reader's loop: wait while in debt, then read and pay for a batch."""
    times = []
    for _ in range(batches):
        clock.now += limiter.pause()
        assert limiter.pause() == pytest.approx(0.0, abs=1e-9)
        times.append(clock.now)
        limiter.take(rows, nbytes)
    return times


@pytest.mark.parametrize("batch", [1, 100, 1000])
def test_records_rate_is_the_limit(batch):
    clock = FakeClock()
    limiter = ReadRateLimiter(2000, 0, channels=1, clock=clock)
    times = _run(limiter, clock, 20_000 // batch, batch, 10)
    achieved = (len(times) - 1) * batch / (times[-1] - times[0])
    assert achieved == pytest.approx(2000, rel=0.02)


def test_bytes_and_channels_share_the_job_limit():
    clock = FakeClock()
    # 3 channels share 30,000 B/s: each gets 10,000 B/s; 500 B per batch → 20 batches/s.
    limiter = ReadRateLimiter(0, 30_000, channels=3, clock=clock)
    times = _run(limiter, clock, 200, 5, 500)
    assert (len(times) - 1) * 500 / (times[-1] - times[0]) == pytest.approx(10_000, rel=0.02)


def test_the_stricter_limit_wins_and_zero_means_none():
    clock = FakeClock()
    limiter = ReadRateLimiter(100, 1_000_000, channels=1, clock=clock)
    times = _run(limiter, clock, 101, 10, 10)
    assert 100 * 10 / (times[-1] - times[0]) == pytest.approx(100, rel=0.02)
    assert not ReadRateLimiter(0, 0, channels=2).active


def test_idle_time_saves_only_a_small_burst():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock)
    clock.now += 3600  # idle for an hour
    bucket.take(1000)
    assert bucket.pause() == pytest.approx(0.9)  # only 0.1 s of tokens were saved
