"""Long-running workers (``sluice worker --group G``), the Kafka Connect–shaped control plane
they share (job configs in ``sluice-configs``, task state in ``sluice-status``, positions in
``sluice-offsets``), their REST API and the matching CLI commands.

Modules: :mod:`~.jobs` (the control-plane operations: submit, update, pause, replay, ...),
:mod:`~.replay` (offsets and replay), :mod:`~.runtime` (the worker process), :mod:`~.tasks` (task processes), :mod:`~.rest` (HTTP),
:mod:`~.cli` (``sluice worker | submit | job-status | pause | ...``).
"""
