"""The report tests use the run-store fixtures (hand-written run dirs in the trainer's layout)."""

from tests.runs.conftest import make_run, study_runs  # noqa: F401  (fixtures shared with tests/runs)
