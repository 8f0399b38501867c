"""The report page: report.json's content rendered through templates/report.html (Jinja2)."""

from __future__ import annotations

import math

CAPTIONS = {
    "training_curves": "Training curves of the main source, their envelope (black) and the Approach 1 "
                       "regressions N* ∝ F<sup>a</sup>, D* ∝ F<sup>b</sup> (paper Fig. 3).",
    "isoflop": "Each run's final loss against FLOPs with the Approach 2 law per model size, and isoLoss "
               "contours with the compute-optimal N* (paper Figs. 4 and 5).",
    "law_fit": "The law's predicted loss against each run's observed loss, and the loss → robust accuracy "
               "regression (App. F.2.2).",
    "forecast": "Forecast: compute-optimal robust accuracy from the runs' largest compute (or 10<sup>24</sup>) to 10<sup>30</sup> FLOPs; "
                "dashed: the infinite-compute limit (paper Fig. 1).",
    "tradeoff": "Training a smaller or larger model than N* to the same loss: the compute overhead "
                "(paper Fig. 7), at 10× the largest budget observed.",
}


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def render_html(result: dict) -> str:
    """The index.html text of a report (the dict `write_report` returns)."""
    import jinja2

    from robustscale.laws.planning import describe_bounded, plan_bounds

    env = jinja2.Environment(loader=jinja2.PackageLoader("robustscale.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, bounded=lambda b: describe_bounded(b, _num, ""),
                       count_of=lambda p, key: describe_bounded(plan_bounds(p, key), _num, ""))
    law = result["approach2"]
    level = law.get("level")
    return env.get_template("report.html").render(
        r=result, story=result["story"], law=law, plans=law["plans"], approach1=result["approach1"],
        captions=CAPTIONS, interval_head=f"{100 * level:.0f}% bootstrap interval" if level else "bootstrap interval")
