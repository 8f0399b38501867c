"""Scaling-law sweeps: a sweep file -> a grid of training runs (`spec`) -> run locally or on Slurm
(`executors`)."""

from robustscale.sweep.executors import SlurmRun, SweepResult, run_one, run_sweep
from robustscale.sweep.spec import SweepRun, SweepSpec, load_sweep, plan

__all__ = ["SlurmRun", "SweepResult", "SweepRun", "SweepSpec", "load_sweep", "plan", "run_one", "run_sweep"]
