"""The report page: report.json's content rendered through templates/report.html (Jinja2)."""

from __future__ import annotations

from robustscale.formatting import num, pct

CAPTIONS = {
    "training_curves": "Training curves of the main source, their envelope (black) and the Approach 1 "
                       "regressions N* ∝ F<sup>a</sup>, D* ∝ F<sup>b</sup> (paper Fig. 3).",
    "isoflop": "Each run's final loss against FLOPs with the Approach 2 law per model size, and isoLoss "
               "contours with the compute-optimal N* (paper Figs. 4 and 5).",
    "law_fit": "The law's predicted loss against each run's observed loss, and, where the runs measured "
               "accuracy, the loss → accuracy regression (App. F.2.2).",
    "forecast": "Forecast: compute-optimal robust accuracy (the loss, for a law without a loss → accuracy "
                "regression) from the runs' largest compute (or 10<sup>24</sup>) to 10<sup>30</sup> FLOPs; "
                "dashed: the infinite-compute limit (paper Fig. 1).",
    "tradeoff": "Training a smaller or larger model than N* to the same loss: the compute overhead "
                "(paper Fig. 7), at 10× the largest budget observed.",
}


def render_html(result: dict) -> str:
    """The index.html text of a report (the dict `write_report` returns)."""
    import jinja2

    from robustscale.laws.planning import describe_bounded, plan_bounds

    env = jinja2.Environment(loader=jinja2.PackageLoader("robustscale.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, pct=pct, bounded=lambda b: describe_bounded(b, num, ""),
                       count_of=lambda p, key: describe_bounded(plan_bounds(p, key), num, ""))
    law = result["approach2"]
    level = law.get("level")
    return env.get_template("report.html").render(
        r=result, story=result["story"], law=law, plans=law["plans"], approach1=result["approach1"],
        captions=CAPTIONS,
        interval_head=f"{100 * level:.0f}% bootstrap interval" if level else "bootstrap interval")
