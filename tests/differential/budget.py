"""Settings of the differential tests: a short, derandomized budget in ``make test``; a long,
random one with ``SLUICE_CHAOS_LONG=1`` (``make chaos``)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

LONG = os.environ.get("SLUICE_CHAOS_LONG") == "1"

settings.register_profile(
    "differential-short",
    # A handful of examples, the same ones every run (derandomize, no example database):
    # CI is deterministic. No shrinking: each example is a real `sluice run` of seconds.
    max_examples=int(os.environ.get("SLUICE_DIFF_EXAMPLES", "4")),
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "differential-long",
    max_examples=int(os.environ.get("SLUICE_DIFF_EXAMPLES", "60")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile("differential-long" if LONG else "differential-short")
