"""The attack tests use the session's robustly trained WRN-10-1 (`trained`, tests/conftest.py)."""
