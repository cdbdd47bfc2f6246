"""A deadline for Kafka calls that can block past their own timeout.

librdkafka's ``send_offsets_to_transaction`` can block forever when the group coordinator
goes away mid-call — it does not check its timeout (confluentinc/librdkafka#5456, #5511,
open as of librdkafka 2.14). A blocked C call cannot be interrupted from Python, so when the
deadline passes the task process exits; its supervisor starts a new incarnation, which fences
the stuck one's transaction and resolves the sink by the usual recovery. Nothing is lost:
the decision was never made, or it was made and recovery sees it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("sluice.watchdog")

EXIT_STUCK = 75  # EX_TEMPFAIL: the supervisor restarts the task


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    def expire() -> None:
        log.error("%s blocked for over %.0fs; exiting so the task restarts", what, seconds)
        logging.shutdown()
        os._exit(EXIT_STUCK)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
