"""What every scaling-law estimator shares: declared parameters, fitted-state checks, planning,
serialisation. `ParametricLaw` adds what only a loss formula L(N, D, FID) can do (Eq 6 trade-off)."""

from __future__ import annotations

import inspect
from numbers import Integral, Real

import numpy as np

from robustscale.errors import RobustscaleError
from robustscale.laws.accuracy import ACCURACY_MAPS, AccuracyRegression, fit_accuracy
from robustscale.laws.guard import flops_findings
from robustscale.laws.observations import (
    SMALL_RUN_RULE,
    final_points,
    load_observations,
    observed_flops_per_param_sample,
    small_run_mask,
    sources,
)
from robustscale.laws.optimal import FLOPS_PER_PARAM_SAMPLE

# -- declared parameter constraints (scikit-learn's `_parameter_constraints` is the model) ----------


class Interval:
    """A number in [lo, hi] (None = unbounded); `open_lo` excludes lo."""

    def __init__(self, kind: type, lo: float | None, hi: float | None, open_lo: bool = False):
        self.kind, self.lo, self.hi, self.open_lo = kind, lo, hi, open_lo

    def accepts(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, self.kind) or not np.isfinite(v):
            return False
        above = self.lo is None or (v > self.lo if self.open_lo else v >= self.lo)
        return above and (self.hi is None or v <= self.hi)

    def __str__(self) -> str:
        name = "an integer" if self.kind is Integral else "a number"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.open_lo or self.lo is None else "["
        return f"{name} in {left}{lo}, {hi}{']' if self.hi is not None else ')'}"


def _accepts(rule, v) -> bool:
    if isinstance(rule, tuple):  # one of these strings
        return v in rule
    if rule is None:
        return v is None
    if rule is bool:
        return isinstance(v, bool)
    if rule is str:
        return isinstance(v, str)
    if rule == "str list":
        return isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v)
    return rule.accepts(v)


def _describe(rule) -> str:
    if isinstance(rule, tuple):
        return "one of " + ", ".join(repr(v) for v in rule)
    if isinstance(rule, Interval):
        return str(rule)
    return {None: "None", bool: "a bool", str: "a string", "str list": "a list of source names"}[rule]


class ScalingLaw:
    """Base of Approach1/2/3: sklearn-style (`__init__` stores keyword-only settings, `fit` checks
    them against `_parameter_constraints` and sets `*_` attributes).

    Fitted attributes: params_ (dict), objective_, n_obs_, sources_ ({name: fid}), accuracy_
    (AccuracyRegression, or None where the runs measured no accuracy and none was asked for),
    accuracy_map_ ('runs', a name of ACCURACY_MAPS, or None), excluded_runs_ (the runs App. F.2.1's
    rule left out: run, source, params, samples, fid, reason), flops_per_param_sample_, diagnostics_
    (list of findings), identified_ ({param: bool}), anchored_ (None or {prior, reason, strength}),
    bootstrap_ (list of params dicts, or None).
    """

    approach: int = 0
    _parameter_constraints: dict[str, list] = {}

    def get_params(self) -> dict:
        """The constructor settings, as sklearn's get_params."""
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def set_params(self, **params) -> "ScalingLaw":
        """Change settings, as sklearn's set_params (checked when `fit` next starts)."""
        known = self.get_params()
        for k, v in params.items():
            if k not in known:
                raise RobustscaleError(f"{k}: not a parameter of {type(self).__name__} (parameters: "
                                       f"{', '.join(known)})")
            setattr(self, k, v)
        return self

    def _validate_params(self) -> None:
        """Raise RobustscaleError naming the first setting outside its declared constraints."""
        for name, value in self.get_params().items():
            rules = self._parameter_constraints[name]
            if not any(_accepts(r, value) for r in rules):
                allowed = " or ".join(_describe(r) for r in rules)
                raise RobustscaleError(f"{name}: expected {allowed}, got {value!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RobustscaleError(f"{type(self).__name__}: not fitted; call fit(observations) or load_law() "
                                   "first")

    def _fit_runs(self, obs):
        """(validated observations, each run's final point after App. F.2.1's optional exclusion)."""
        self._validate_params()
        obs = load_observations(obs)
        runs = final_points(obs)
        small = small_run_mask(runs) if self.exclude_small_runs else np.zeros(len(runs), bool)
        self.excluded_runs_ = [{"run": r.run, "source": r.source, "params": float(r.params),
                                "samples": float(r.samples), "fid": float(r.fid), "reason": SMALL_RUN_RULE}
                               for r in runs[small].itertuples()]
        return obs, runs[~small]

    def _fit_common(self, obs, accuracy_source: str | None) -> list[dict]:
        """The fitted attributes every approach sets the same way; returns the FLOPs-constant finding."""
        self.sources_ = sources(obs)
        self.accuracy_, self.accuracy_map_ = self._fit_accuracy(obs, accuracy_source)
        observed = observed_flops_per_param_sample(obs)
        given = getattr(self, "flops_per_param_sample", None)
        if given is not None:
            self.flops_per_param_sample_ = float(given)
        else:
            self.flops_per_param_sample_ = observed if observed is not None else FLOPS_PER_PARAM_SAMPLE
        self.observed_flops_per_param_sample_ = observed
        self.max_flops_ = float(obs["flops"].max())
        # the smallest counts tried: below them the runs say nothing about N*, D* (planning.bounded)
        self.min_params_, self.min_samples_ = float(obs["params"].min()), float(obs["samples"].min())
        self.bootstrap_ = None
        return flops_findings(observed) if given is None else []

    def _fit_accuracy(self, obs, source: str | None) -> tuple[AccuracyRegression | None, str | None]:
        """(loss->accuracy regression, where it comes from): the one asked for by name, else the
        runs' own where they measured accuracy, else none (never a borrowed one unasked)."""
        if self.accuracy_map != "runs":
            return ACCURACY_MAPS[self.accuracy_map], self.accuracy_map
        if "accuracy" in obs.columns and obs["accuracy"].notna().any():
            own = obs["source"] == source
            rows = obs if source is None or not own.any() else obs[own]
            try:
                return fit_accuracy(rows, source=None if rows is obs else source), "runs"
            except RobustscaleError:  # fewer than 2 runs with accuracy: nothing to regress
                pass
        return None, None

    # -- predictions every approach offers ------------------------------------------------------
    def predict_accuracy(self, loss):
        """Robust accuracy predicted from loss with the law's regression (App. F.2.2)."""
        self._check_fitted()
        if self.accuracy_ is None:
            raise RobustscaleError("accuracy_map: the law has no loss -> accuracy regression (its runs "
                                   "measured no accuracy); fit with accuracy_map='paper-dg' to borrow "
                                   "the paper's")
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
        (accuracy at infinite compute), flops, fid, a, b; accuracy and accuracy_limit are None for
        a law without a loss -> accuracy regression.
        """
        self._check_fitted()
        flops, fid = _positive(flops, "flops"), _nonnegative(fid, "fid")
        with np.errstate(all="ignore"):
            n, d, loss = self.optimum(flops, fid)
            e = self.irreducible_loss(fid)
            a, b = self.exponents(flops, fid)
        measured = self.accuracy_ is not None
        return {
            "n_star": float(n), "d_star": float(d), "loss": float(loss),
            "accuracy": float(self.predict_accuracy(loss)) if measured else None,
            "irreducible_loss": None if e is None else float(e),
            "accuracy_limit": float(self.predict_accuracy(e)) if measured and e is not None else None,
            "flops": flops, "fid": fid, "a": a, "b": b,
        }

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The law.json content: approach, params, objective, n_obs, settings, sources, accuracy (None
        without a regression), accuracy_map, excluded_runs, flops_per_param_sample, diagnostics,
        identified, anchored (and bootstrap samples)."""
        self._check_fitted()
        d = {
            "approach": self.approach,
            "params": self.params_,
            "objective": self.objective_,
            "n_obs": self.n_obs_,
            "settings": self.get_params(),
            "sources": self.sources_,
            "accuracy": None if self.accuracy_ is None else self.accuracy_.to_dict(),
            # where the loss -> accuracy regression comes from: "runs" (these observations), a
            # borrowed map asked for by name ("paper-dg"), or None (no accuracy is predicted)
            "accuracy_map": self.accuracy_map_,
            "excluded_runs": list(getattr(self, "excluded_runs_", [])),
            "flops_per_param_sample": self.flops_per_param_sample_,
            "max_flops": getattr(self, "max_flops_", None),
            "min_params": getattr(self, "min_params_", None),
            "min_samples": getattr(self, "min_samples_", None),
            "diagnostics": list(getattr(self, "diagnostics_", [])),
            "identified": dict(getattr(self, "identified_", {})),
            "anchored": getattr(self, "anchored_", None),
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
        est.accuracy_ = AccuracyRegression.from_dict(d["accuracy"]) if d.get("accuracy") else None
        est.accuracy_map_ = d.get("accuracy_map")
        est.excluded_runs_ = list(d.get("excluded_runs") or [])
        est.flops_per_param_sample_ = float(d.get("flops_per_param_sample") or FLOPS_PER_PARAM_SAMPLE)
        est.max_flops_ = d.get("max_flops")
        est.min_params_, est.min_samples_ = d.get("min_params"), d.get("min_samples")
        est.diagnostics_ = list(d.get("diagnostics") or [])
        est.identified_ = dict(d.get("identified") or {})
        est.anchored_ = d.get("anchored")
        est.bootstrap_ = (d.get("bootstrap") or {}).get("samples")
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


class ParametricLaw(ScalingLaw):
    """A law with a loss formula L(N, D, FID) (Approaches 2, 3): adds the Eq 6 trade-off."""

    def tradeoff(self, flops: float, fid: float, omega_n: float) -> dict:
        """§3.3.2: a model ω_N× the optimal size, the data multiple ω_D keeping the loss, the overhead.

        Returns: dict with omega_n, omega_d, overhead (extra FLOPs as a fraction), n, d, flops, fid.
        """
        self._check_fitted()
        flops, fid = _positive(flops, "flops"), _nonnegative(fid, "fid")
        omega_n = _positive(omega_n, "omega_n")
        with np.errstate(all="ignore"):
            n_star, d_star, loss = self.optimum(flops, fid)
            w_d = float(self._omega_d(omega_n, n_star, d_star, loss, fid))
        if not np.isfinite(w_d):
            raise RobustscaleError(f"omega_n: {omega_n:g} is too small; no dataset size reaches the optimal "
                                   f"loss {loss:.4f}")
        return {"omega_n": omega_n, "omega_d": w_d, "overhead": omega_n * w_d - 1.0,
                "n": omega_n * n_star, "d": w_d * d_star, "flops": flops, "fid": fid}


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


# Shared constraint rows: every approach declares these the same way.
COMMON_CONSTRAINTS = {
    "huber_delta": [Interval(Real, 0, None, open_lo=True)],
    "exclude_small_runs": [bool],
    "accuracy_map": [("runs", *ACCURACY_MAPS)],
    "flops_per_param_sample": [None, Interval(Real, 0, None, open_lo=True)],
}
