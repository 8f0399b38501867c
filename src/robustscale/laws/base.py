"""What every scaling-law estimator shares: fitted-state checks, planning, serialisation."""

from __future__ import annotations

import inspect

import numpy as np

from robustscale.errors import RobustscaleError
from robustscale.laws.accuracy import PAPER_ACCURACY, AccuracyRegression, fit_accuracy
from robustscale.laws.observations import final_points, load_observations, small_run_mask
from robustscale.laws.optimal import FLOPS_PER_PARAM_SAMPLE


class ScalingLaw:
    """Base of Approach1/2/3: sklearn-style (`__init__` stores settings, `fit` sets `*_` attributes).

    Fitted attributes: params_ (dict), objective_, n_obs_, sources_ ({name: fid}), accuracy_
    (AccuracyRegression), bootstrap_ (list of params dicts, or None).
    """

    approach: int = 0

    def get_params(self) -> dict:
        """The constructor settings, as sklearn's get_params."""
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RobustscaleError(f"{type(self).__name__}: not fitted; call fit(observations) or load_law() first")

    def _fit_runs(self, obs):
        """(validated observations, each run's final point after App. F.2.1's optional exclusion)."""
        obs = load_observations(obs)
        runs = final_points(obs)
        if self.exclude_small_runs:
            runs = runs[~small_run_mask(runs)]
        return obs, runs

    def _fit_accuracy(self, obs, source: str | None) -> AccuracyRegression:
        """Own loss->accuracy regression where the observations have accuracy, else the paper's."""
        if "accuracy" in obs.columns and obs["accuracy"].notna().any():
            rows = obs if source is None or not (obs["source"] == source).any() else obs[obs["source"] == source]
            try:
                return fit_accuracy(rows, source=None if rows is obs else source)
            except RobustscaleError:
                pass
        return PAPER_ACCURACY

    # -- predictions every approach offers ------------------------------------------------------
    def predict_accuracy(self, loss):
        """Robust accuracy predicted from loss with the law's regression (App. F.2.2)."""
        self._check_fitted()
        return self.accuracy_.predict(loss)

    def irreducible_loss(self, fid: float = 0.0) -> float | None:
        """E' at this FID (loss at infinite N and D); None where the approach has no such term."""
        return None

    def exponents(self, flops: float, fid: float = 0.0) -> tuple[float, float]:
        """Local exponents a = dlog N*/dlog F, b = dlog D*/dlog F (Table 3), by finite difference."""
        n0, _, _ = self.optimum(flops, fid)
        n1, _, _ = self.optimum(flops * 1.01, fid)
        a = float(np.log(n1 / n0) / np.log(1.01))
        return a, 1.0 - a

    def plan(self, flops: float, fid: float = 0.0) -> dict:
        """Compute-optimal N*, D*, predicted loss and accuracy at a FLOPs budget and FID.

        Returns: dict with n_star, d_star, loss, accuracy, irreducible_loss, accuracy_limit
        (accuracy at infinite compute), flops, fid, a, b.
        """
        self._check_fitted()
        flops, fid = _positive(flops, "flops"), _nonnegative(fid, "fid")
        n, d, loss = self.optimum(flops, fid)
        e = self.irreducible_loss(fid)
        a, b = self.exponents(flops, fid)
        return {
            "n_star": float(n), "d_star": float(d), "loss": float(loss),
            "accuracy": float(self.predict_accuracy(loss)),
            "irreducible_loss": None if e is None else float(e),
            "accuracy_limit": None if e is None else float(self.predict_accuracy(e)),
            "flops": flops, "fid": fid, "a": a, "b": b,
        }

    def tradeoff(self, flops: float, fid: float, omega_n: float) -> dict:
        """§3.3.2: a model ω_N× the optimal size, the data multiple ω_D keeping the loss, the overhead.

        Returns: dict with omega_n, omega_d, overhead (extra FLOPs as a fraction), n, d.
        """
        self._check_fitted()
        flops, fid, omega_n = _positive(flops, "flops"), _nonnegative(fid, "fid"), _positive(omega_n, "omega_n")
        n_star, d_star, loss = self.optimum(flops, fid)
        w_d = float(self._omega_d(omega_n, n_star, d_star, loss, fid))
        if not np.isfinite(w_d):
            raise RobustscaleError(f"omega_n: {omega_n:g} is too small; no dataset size reaches the optimal loss {loss:.4f}")
        return {"omega_n": omega_n, "omega_d": w_d, "overhead": omega_n * w_d - 1.0,
                "n": omega_n * n_star, "d": w_d * d_star, "flops": flops, "fid": fid}

    def _omega_d(self, omega_n, n_star, d_star, loss, fid):
        raise RobustscaleError(f"approach {self.approach}: the trade-off needs a parametric law (approach 2 or 3)")

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The law.json content: approach, params, objective, n_obs, settings, sources, accuracy."""
        self._check_fitted()
        d = {
            "approach": self.approach,
            "params": self.params_,
            "objective": self.objective_,
            "n_obs": self.n_obs_,
            "settings": self.get_params(),
            "sources": self.sources_,
            "accuracy": self.accuracy_.to_dict(),
            "flops_per_param_sample": FLOPS_PER_PARAM_SAMPLE,
        }
        d.update(self._extra_dict())
        if getattr(self, "bootstrap_", None):
            d["bootstrap"] = {"k": len(self.bootstrap_), "samples": self.bootstrap_}
        return d

    def _extra_dict(self) -> dict:
        return {}

    @classmethod
    def from_dict(cls, d: dict) -> "ScalingLaw":
        est = cls(**d.get("settings", {}))
        est.params_ = dict(d["params"])
        est.objective_ = d.get("objective")
        est.n_obs_ = d.get("n_obs")
        est.sources_ = dict(d.get("sources", {}))
        est.accuracy_ = AccuracyRegression.from_dict(d["accuracy"]) if d.get("accuracy") else PAPER_ACCURACY
        est.bootstrap_ = d.get("bootstrap", {}).get("samples")
        est._load_extra(d)
        return est

    def _load_extra(self, d: dict) -> None:
        pass

    def with_params(self, params: dict) -> "ScalingLaw":
        """A copy of this fitted law with other parameter values (used by the bootstrap)."""
        d = self.to_dict()
        d["params"] = params
        d.pop("bootstrap", None)
        return type(self).from_dict(d)


def _positive(x, name: str) -> float:
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise RobustscaleError(f"{name}: expected a positive number, got {x:g}")
    return x


def _nonnegative(x, name: str) -> float:
    x = float(x)
    if not np.isfinite(x) or x < 0:
        raise RobustscaleError(f"{name}: expected a number >= 0, got {x:g}")
    return x
