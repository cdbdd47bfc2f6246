"""What a user watching ``sluice run`` sees: a live progress line on a terminal, periodic log
lines otherwise, and a final summary with FlinkX's counters."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_duration(s: float) -> str:
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


@dataclass
class Summary:
    job: str
    run: str
    status: str
    numRead: int  # noqa: N815 - FlinkX's counter names
    numWrite: int  # noqa: N815
    byteRead: int  # noqa: N815
    byteWrite: int  # noqa: N815
    errors: int
    checkpoints: int
    duration_s: float
    restarts: int = 0
    latency_p50_ms: float | None = None
    """End-to-end latency (source commit → sink commit), see ``coordinator.metrics``."""
    latency_p99_ms: float | None = None

    def text(self) -> str:
        rate = self.numWrite / self.duration_s if self.duration_s > 0 else 0.0
        return "\n".join(
            [
                f"job {self.job} (run {self.run}) {self.status} in {self.duration_s:.1f}s",
                f"  numRead   {self.numRead:>12,}   byteRead  {human_bytes(self.byteRead):>10}",
                f"  numWrite  {self.numWrite:>12,}   byteWrite {human_bytes(self.byteWrite):>10}",
                f"  errors    {self.errors:>12,}   checkpoints {self.checkpoints}"
                + (f"   task restarts {self.restarts}" if self.restarts else ""),
                f"  rows/s    {rate:>12,.0f}"
                + (
                    f"   latency p50 {_ms(self.latency_p50_ms)} p99 {_ms(self.latency_p99_ms)}"
                    if self.latency_p50_ms is not None
                    else ""
                ),
            ]
        )

    def json(self) -> str:
        return json.dumps(asdict(self))


class ProgressDisplay:
    def __init__(
        self, stream: TextIO = sys.stderr, estimate: int | None = None, log_every: float = 5.0
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.estimate = estimate
        self.started = time.monotonic()
        self.log_every = log_every
        self._last = 0.0
        self._drawn = False

    def update(self, read: int, written: int, checkpoint: int) -> None:
        now = time.monotonic()
        if now - self._last < (0.2 if self.tty else self.log_every):
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        rate = written / elapsed
        parts = [
            f"read {read:,}",
            f"written {written:,}",
            f"{rate:,.0f} rows/s",
            f"checkpoint {checkpoint}",
        ]
        if self.estimate:
            pct = min(100.0, 100.0 * written / self.estimate)
            parts.insert(0, f"{pct:5.1f}%")
            if rate > 0:
                eta = max(0.0, (self.estimate - written) / rate)
                parts.append(f"ETA {human_duration(eta)}")
        line = " | ".join(parts)
        if self.tty:
            width = 30
            filled = int(width * min(1.0, written / self.estimate)) if self.estimate else 0
            bar = "#" * filled + "-" * (width - filled) if self.estimate else ""
            self.stream.write(f"\r[{bar}] {line}\x1b[K" if bar else f"\r{line}\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"progress: {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
