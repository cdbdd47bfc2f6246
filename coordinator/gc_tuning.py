"""Garbage-collector settings for the task processes, whose loops allocate per row.

CPython's cyclic collector runs a young-generation pass every 700 net allocations, and the
older generations every 10 of those: a snapshot reader or writer allocates several container
objects per row (tuples, events), so it spent a tenth of its time in collections that find
nothing — its per-row objects hold no cycles and are freed by reference counting. Larger
thresholds make the passes rare; freezing moves what start-up created (modules, classes,
plans) out of the collector's way for good.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune_for_streaming() -> None:
    """Call once, when a task process has finished setting up, before its row loop."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
