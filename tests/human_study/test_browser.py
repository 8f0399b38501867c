"""Real browser (Debian's chromium via Playwright) against a real `study serve`: a rater does a
10-image batch with the keyboard, reloads mid-batch and resumes; the quiz shows a score."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from studyutil import ARTIFACTS, Server, make_npz

from robustscale.human_study.db import Answer, make_engine, make_sessionmaker
from robustscale.human_study.answers import add_rater
from robustscale.human_study.images import create_study

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def served(tmp_path, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:5], y[:5])
    db = f"sqlite:///{tmp_path / 'b.db'}"
    sessions = make_sessionmaker(make_engine(db))
    create_study(sessions, "demo", adv, clean, batch_size=5)  # 5 adversarial + 5 clean = 10
    _, token = add_rater(sessions, "demo", "alice")
    server = Server(db)
    yield server, token, sessions
    server.stop()


def test_rater_batch_with_keyboard_and_resume(browser, served):
    from playwright.sync_api import expect

    server, token, sessions = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(f"{server.url}/r/{token}")
    overall = page.locator("#overall")
    expect(overall).to_have_text("0 / 10 answered")
    assert page.locator("#image").evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
    assert page.locator("#image").evaluate("e => e.getBoundingClientRect().width") >= 280
    keys = [("3", "h"), ("7", "l"), ("0", "h"), ("9", "l")]
    for k, (digit, conf) in enumerate(keys):
        page.keyboard.press(digit)
        expect(page.locator(f'button.cls[data-choice="{digit}"]')).to_have_class(re.compile("selected"))
        page.keyboard.press(conf)
        expect(overall).to_have_text(f"{k + 1} / 10 answered")
    expect(page.locator("#phase")).to_have_text("adversarial images")
    expect(page.locator("#position")).to_have_text("image 5 of 5")
    page.screenshot(path=str(ARTIFACTS / "rater.png"))
    page.reload()  # close-and-come-back: the page resumes at the 5th image
    expect(overall).to_have_text("4 / 10 answered")
    more = [("1", "h"), ("2", "h"), ("4", "l"), ("5", "h"), ("6", "l"), ("8", "h")]
    for k, (digit, conf) in enumerate(more):
        page.keyboard.press(digit)
        page.keyboard.press(conf)
        if k < len(more) - 1:
            expect(overall).to_have_text(f"{k + 5} / 10 answered")
        if k == 0:
            expect(page.locator("#phase")).to_have_text("clean images")  # after 5 adversarial
    expect(page.locator("#finished")).to_contain_text("All 10 images are classified")
    page.screenshot(path=str(ARTIFACTS / "rater-done.png"))
    with sessions() as s:
        answers = list(s.scalars(select(Answer).order_by(Answer.id)))
    assert [(a.choice, a.high_confidence) for a in answers] == [
        (int(d), c == "h") for d, c in keys + more]
    assert [a.phase for a in answers] == ["adversarial"] * 5 + ["clean"] * 5
    page.close()


def test_quiz_shows_score(browser, served, fmnist_test):
    from playwright.sync_api import expect

    from robustscale.human_study.db import Image, Rater

    server, _, sessions = served
    labels = fmnist_test[1][:5]
    with sessions() as s:  # the study's rater got 3 of the 5 adversarial images right
        rater = s.scalar(select(Rater))
        for im in s.scalars(select(Image).order_by(Image.position)):
            right = im.position < 3
            s.add(Answer(rater_id=rater.id, image_id=im.id, phase="adversarial",
                         choice=im.label if right else (im.label + 1) % 10, high_confidence=True))
        s.commit()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(f"{server.url}/quiz/demo")
    expect(page.locator("#progress")).to_contain_text("image 1 of 5")
    page.screenshot(path=str(ARTIFACTS / "quiz.png"))
    for k in range(5):  # the visitor gets the first four right
        page.keyboard.press(str(labels[k] if k < 4 else (labels[k] + 5) % 10))
    expect(page.locator("#visitor")).to_have_text("4")
    expect(page.locator("#model")).to_have_text("0")
    expect(page.locator("#humans")).to_have_text("3.0")
    page.screenshot(path=str(ARTIFACTS / "quiz-score.png"))
    page.goto(f"{server.url}/admin/demo")
    expect(page.locator("h1")).to_have_text("Error 401")
    page.goto(f"{server.url}/admin/login")
    page.fill("input[name=password]", "admin-secret")
    page.click("button[type=submit]")
    page.goto(f"{server.url}/admin/demo")
    expect(page.locator("#progress")).to_contain_text("5 / 10")  # alice's 5 adversarial answers
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)
    page.close()
