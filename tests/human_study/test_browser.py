"""Real browser (Debian's chromium via Playwright) against a real `study serve`, on a 1280 px
desktop and a 390 px phone: a rater works through two batches with the keyboard (keys typed
during a save are kept, a break screen marks each phase change, undo takes back the last answer),
reloads and resumes; on the phone nothing scrolls sideways and every control is a tappable
44 px; the quiz shows a score. Screenshots go to test-artifacts/human_study/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from studyutil import ARTIFACTS, Server, make_npz

from robustscale.human_study.answers import add_rater
from robustscale.human_study.db import Answer, Image, Rater, make_engine, make_sessionmaker
from robustscale.human_study.images import create_study

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, fmnist_test):
    """One server for the module: 6 images in batches of 3 (3 adversarial, 3 clean, twice)."""
    tmp_path = tmp_path_factory.mktemp("browser")
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:6], y[:6])
    db = f"sqlite:///{tmp_path / 'b.db'}"
    sessions = make_sessionmaker(make_engine(db))
    create_study(sessions, "demo", adv, clean, batch_size=3)
    server = Server(db)
    yield server, sessions
    server.stop()


def open_page(browser, context: dict, url: str):
    """A page that records Content-Security-Policy violations and script errors."""
    page = browser.new_context(**context).new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto(url)
    return page


def type_at_once(page, keys: str) -> None:
    """Key presses in one browser task: every key after the first arrives while its save is in
    flight."""
    page.evaluate("keys => { for (const key of keys) document.dispatchEvent("
                  "new KeyboardEvent('keydown', {key, bubbles: true})); }", list(keys))


def answers_of(sessions, name: str) -> list[tuple[int, bool, str]]:
    with sessions() as s:
        rid = s.scalar(select(Rater.id).where(Rater.name == name))
        return [(a.choice, a.high_confidence, a.phase) for a in
                s.scalars(select(Answer).where(Answer.rater_id == rid).order_by(Answer.id))]


def test_rater_desktop_keyboard_queue_breaks_undo_resume(browser, served):
    from playwright.sync_api import expect

    server, sessions = served
    _, token = add_rater(sessions, "demo", "desk")
    page = open_page(browser, DESKTOP, f"{server.url}/r/{token}")
    overall = page.locator("#overall")
    expect(overall).to_have_text("0 / 12 answered")
    assert page.locator("#image").evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
    assert page.locator("#image").evaluate("e => e.getBoundingClientRect().width") == 384
    expect(page.locator("#undo")).to_be_disabled()
    page.keyboard.press("3")
    expect(page.locator('button.cls[data-choice="3"]')).to_have_class(re.compile("selected"))
    page.keyboard.press("h")
    expect(overall).to_have_text("1 / 12 answered")
    expect(page.locator("#undo")).to_be_enabled()
    page.keyboard.press("u")  # undo: back to the first image
    expect(overall).to_have_text("0 / 12 answered")
    type_at_once(page, "3h7l")  # second pair typed while the first is saving: both kept
    expect(overall).to_have_text("2 / 12 answered")
    expect(page.locator("#position")).to_have_text("image 3 of 3")
    page.screenshot(path=str(ARTIFACTS / "rater-1280.png"))
    type_at_once(page, "0h1h")  # the 3rd adversarial image, then a key pair for the next phase
    dialog = page.locator("#interstitial")
    expect(dialog).to_be_visible()
    expect(page.locator("#interstitial-title")).to_have_text("Adversarial images done")
    expect(page.locator("#interstitial-text")).to_contain_text("clean versions of the same 3")
    page.screenshot(path=str(ARTIFACTS / "interstitial-1280.png"))
    assert len(answers_of(sessions, "desk")) == 3  # the "1h" waits behind the break screen
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(overall).to_have_text("4 / 12 answered")  # ... and runs after it
    expect(page.locator("#phase")).to_have_text("clean images")
    page.reload()  # close-and-come-back: resumes at the 5th item
    expect(overall).to_have_text("4 / 12 answered")
    for digit in "25":
        page.keyboard.press(digit)
        page.keyboard.press("l")
    expect(page.locator("#interstitial-title")).to_have_text("Batch 1 done")
    expect(page.locator("#interstitial-text")).to_contain_text("batch 2 of 2")
    page.click("#continue")
    expect(page.locator("#batch")).to_have_text("Batch 2 of 2")
    for k in range(6):
        page.keyboard.press(str(k))
        page.keyboard.press("h")
        if k == 2:
            expect(dialog).to_be_visible()
            page.keyboard.press("Enter")
    expect(page.locator("#finished")).to_contain_text("All 12 images are classified")
    assert answers_of(sessions, "desk") == [
        (3, True, "adversarial"), (7, False, "adversarial"), (0, True, "adversarial"),
        (1, True, "clean"), (2, False, "clean"), (5, False, "clean")] + \
        [(k, True, "adversarial") for k in range(3)] + [(k, True, "clean") for k in range(3, 6)]
    assert page.problems == []  # no CSP violation, no script error
    page.close()


def test_rater_phone_layout_and_taps(browser, served):
    from playwright.sync_api import expect

    server, sessions = served
    _, token = add_rater(sessions, "demo", "phone")
    for width in (390, 360):
        page = open_page(browser, {**PHONE, "viewport": {"width": width, "height": 780}},
                         f"{server.url}/r/{token}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        boxes = page.locator("button").evaluate_all(
            "bs => bs.filter(b => b.offsetParent !== null).map(b => b.getBoundingClientRect())"
            ".map(r => [r.left, r.right, r.width, r.height])")
        assert len(boxes) == 13  # 10 classes, 2 confidences, undo
        for left, right, w, h in boxes:
            assert left >= 0 and right <= width and w >= 44 and h >= 44, (width, left, right, w, h)
        image = page.locator("#image").evaluate("e => e.getBoundingClientRect().width")
        assert 0.8 * (width - 24) <= image <= width
        if width == 390:
            page.locator('button.cls[data-choice="8"]').tap()
            page.locator('button.conf[data-confidence="low"]').tap()
            expect(page.locator("#overall")).to_have_text("1 / 12 answered")
            page.locator('button.cls[data-choice="9"]').tap()  # the bottom-right class button
            page.screenshot(path=str(ARTIFACTS / "rater-390.png"), full_page=True)
            page.locator('button.conf[data-confidence="high"]').tap()
            expect(page.locator("#overall")).to_have_text("2 / 12 answered")
            page.locator("#undo").tap()
            expect(page.locator("#overall")).to_have_text("1 / 12 answered")
        assert page.problems == []
        page.close()
    assert answers_of(sessions, "phone") == [(8, False, "adversarial")]


def test_quiz_shows_score(browser, served, fmnist_test):
    from playwright.sync_api import expect

    server, sessions = served
    labels = fmnist_test[1][:6]
    _, _ = add_rater(sessions, "demo", "quizrater")
    with sessions() as s:  # the study's rater got 3 of the 6 adversarial images right
        rater = s.scalar(select(Rater).where(Rater.name == "quizrater"))
        for im in s.scalars(select(Image).order_by(Image.position)):
            right = im.position < 3
            s.add(Answer(rater_id=rater.id, image_id=im.id, phase="adversarial",
                         position=im.position, high_confidence=True,
                         choice=im.label if right else (im.label + 1) % 10))
        s.commit()
    page = open_page(browser, PHONE, f"{server.url}/quiz/demo")
    expect(page.locator("#progress")).to_contain_text("image 1 of 6")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "quiz-390.png"))
    for k in range(6):  # a slip on the 2nd image ...
        page.keyboard.press(str((labels[k] + 5) % 10 if k in (1, 5) else labels[k]))
    expect(page.locator("#submit")).to_be_enabled()
    page.keyboard.press("ArrowLeft")  # ... is corrected before submitting: back to image 5,
    for _ in range(3):                # then image 2
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#progress")).to_contain_text("image 2 of 6")
    expect(page.locator(f'button.cls[data-choice="{(labels[1] + 5) % 10}"]')).to_have_class(
        re.compile("selected"))  # the answer given before is shown
    page.locator(f'button.cls[data-choice="{labels[1]}"]').tap()
    expect(page.locator("#progress")).to_contain_text("image 3 of 6")
    page.locator("#submit").tap()
    expect(page.locator("#visitor")).to_have_text("5")  # the first five right
    expect(page.locator("#model")).to_have_text("0")
    page.close()
    page = open_page(browser, DESKTOP, f"{server.url}/admin/demo")
    expect(page.locator("h1")).to_have_text("Error 401")
    page.goto(f"{server.url}/admin/login")
    page.fill("input[name=password]", "admin-secret")
    page.click("button[type=submit]")
    page.goto(f"{server.url}/admin/demo")
    expect(page.locator("#progress")).to_contain_text("quizrater")
    page.screenshot(path=str(ARTIFACTS / "admin-1280.png"), full_page=True)
    page.click("text=Log out")
    page.goto(f"{server.url}/admin/demo")
    expect(page.locator("h1")).to_have_text("Error 401")
    page.close()


def in_viewport(page, selector: str) -> bool:
    """The element lies wholly inside the viewport as the page is now (nothing scrolled)."""
    return page.locator(selector).evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.left >= 0 && "
        "r.bottom <= innerHeight && r.right <= innerWidth; }")


@pytest.mark.parametrize("width, height", [(360, 740), (390, 844)])
def test_phone_fits_one_screen_and_each_image_starts_at_the_top(browser, served, width, height):
    """At 360 x 740 and 390 x 844 the image, every class and both confidence buttons are on the
    first screen (the confidence buttons were below the fold before the fix, and the page stayed
    scrolled after an answer)."""
    from playwright.sync_api import expect

    server, sessions = served
    _, token = add_rater(sessions, "demo", f"fold{width}")
    page = open_page(browser, {**PHONE, "viewport": {"width": width, "height": height}},
                     f"{server.url}/r/{token}")
    assert page.evaluate("scrollY") == 0
    for selector in ["#image", 'button.conf[data-confidence="low"]',
                     'button.conf[data-confidence="high"]'] + \
            [f'button.cls[data-choice="{k}"]' for k in range(10)]:
        assert in_viewport(page, selector), (width, selector)
    assert page.locator("#image").evaluate("e => e.getBoundingClientRect().height") >= 200
    page.screenshot(path=str(ARTIFACTS / f"rater-{width}x{height}.png"))
    page.evaluate("window.scrollTo(0, 500)")  # as a thumb might leave it
    page.locator('button.cls[data-choice="2"]').tap()
    page.locator('button.conf[data-confidence="high"]').tap()
    expect(page.locator("#overall")).to_have_text("1 / 12 answered")
    page.wait_for_function("scrollY === 0")  # the next image from its top
    assert in_viewport(page, "#image") and in_viewport(page, 'button.conf[data-confidence="low"]')
    assert page.problems == []
    page.close()


@pytest.fixture(scope="module")
def many_classes(served, tmp_path_factory, fmnist_test):
    """A study of 200 classes (CIFAR-100 and Tiny ImageNet sized lists)."""
    import numpy as np

    server, sessions = served
    folder = tmp_path_factory.mktemp("many")
    names = np.array([f"{word} {k}" for k, word in
                      zip(range(200), ["maple", "tiger", "whale", "rocket", "apple"] * 40)])
    x = fmnist_test[0][:4]
    labels = np.array([7, 42, 150, 199])
    np.savez(folder / "adversarial.npz", images=x, labels=labels, predictions=labels + 0 - 1,
             classes=names)
    np.savez(folder / "clean.npz", images=x, labels=labels, classes=names)
    create_study(sessions, "many", folder, folder, batch_size=4)
    return server, sessions, list(names), labels


@pytest.mark.parametrize("context", [
    {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
    DESKTOP], ids=["360", "1280"])
def test_two_hundred_classes_by_typing_and_by_tapping(browser, many_classes, context):
    from playwright.sync_api import expect

    server, sessions, names, labels = many_classes
    width = context["viewport"]["width"]
    _, token = add_rater(sessions, "many", f"many{width}")
    page = open_page(browser, context, f"{server.url}/r/{token}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in ("#image", "#filter", 'button.conf[data-confidence="high"]'):
        assert in_viewport(page, selector), selector
    # typing: part of the name narrows the list, Enter picks the highlighted class, H sends
    page.locator("#filter").click()
    page.keyboard.type("whale 42")
    expect(page.locator("button.cls:visible")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / f"many-classes-typed-{width}.png"))
    page.keyboard.press("Enter")
    expect(page.locator('button.cls[data-choice="42"]')).to_have_class(re.compile("selected"))
    page.keyboard.press("h")
    expect(page.locator("#overall")).to_have_text("1 / 8 answered")
    expect(page.locator("#filter")).to_have_value("")  # a fresh list for the next image
    # arrows move the highlight among the matches
    page.locator("#filter").click()
    page.keyboard.type("tiger 1")  # tiger 1, tiger 11, tiger 16, ...: "tiger 1" highlighted
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.keyboard.press("l")
    expect(page.locator("#overall")).to_have_text("2 / 8 answered")
    # tapping: one tap on a class in the (scrolled) list, one on a confidence
    target = page.locator('button.cls[data-choice="150"]')
    target.scroll_into_view_if_needed()
    (target.tap if context.get("has_touch") else target.click)()
    assert in_viewport(page, 'button.conf[data-confidence="low"]')
    page.screenshot(path=str(ARTIFACTS / f"many-classes-tapped-{width}.png"))
    conf = page.locator('button.conf[data-confidence="low"]')
    (conf.tap if context.get("has_touch") else conf.click)()
    expect(page.locator("#overall")).to_have_text("3 / 8 answered")
    answers = [c for c, _, _ in answers_of(sessions, f"many{width}")]
    assert answers[0] == 42 and answers[2] == 150
    assert names[answers[1]] == "tiger 11"  # the match after the highlighted one
    assert page.evaluate("scrollY") == 0
    assert page.problems == []
    page.close()
