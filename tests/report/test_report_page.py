"""The demo's report page in a real browser (Debian's chromium via Playwright): every figure loads,
the page opens with its plain-words paragraph; a screenshot is kept under test-artifacts/report/."""

from __future__ import annotations

import json
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


def test_report_page_renders_with_every_figure(browser, quick_demo):
    out, _ = quick_demo
    report = json.loads((out / "report" / "report.json").read_text())
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((out / "report" / "index.html").as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({src: e.getAttribute('src'), complete: e.complete, w: e.naturalWidth}))")
    assert sorted(i["src"] for i in images) == sorted(f"{name}.png" for name in report["figures"])
    assert len(images) >= 3 and all(i["complete"] and i["w"] > 0 for i in images), images
    first = page.locator("body > p").first
    assert first.get_attribute("class") == "story" and first.inner_text() == report["story"]
    assert page.title() == "robustscale report"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
    assert (ARTIFACTS / "index.png").stat().st_size > 20_000
    page.close()
