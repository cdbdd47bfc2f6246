"""Differential tests (issue 14): generated tables and jobs, run against the real servers,
checked by one invariant (see ``oracle.py``)."""
