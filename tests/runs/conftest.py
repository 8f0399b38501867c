"""Fixtures of the run tests: hand-written run folders (see tests/runstore.py)."""

from runstore import study_runs  # noqa: F401
