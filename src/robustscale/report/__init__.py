"""Reports: the paper's figures (Figs. 1, 3, 4, 5, 7) for a user's runs, as PNGs and an index.html.

`write_report(source, out)` reads a runs directory or an observations table, fits the law once
(`report.build`), and writes (page rendered by `report.html` from templates/report.html):
  training_curves.png  Fig. 3: training curves, their envelope, N*(F) and D*(F)
  isoflop.png          Figs. 4/5: runs vs the law per model size, isoLoss contours
  law_fit.png          the law's predicted loss against each run's, loss -> accuracy
  forecast.png         Fig. 1: compute-optimal robust accuracy from the runs' compute to 1e30 FLOPs
  tradeoff.png         Fig. 7: model size vs compute overhead
  law.json, approach1.json, observations.csv, report.json, index.html
"""

from robustscale.report.build import BOOTSTRAP_K, FIGURES, load_source, story, write_report
from robustscale.report.html import render_html

__all__ = ["BOOTSTRAP_K", "FIGURES", "load_source", "render_html", "story", "write_report"]
