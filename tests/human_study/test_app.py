"""The web app through FastAPI's TestClient on a real SQLite file: rater flow and security."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from studyutil import Server, make_npz

from robustscale.human_study.answers import add_rater, revoke_rater
from robustscale.human_study.app import create_app
from robustscale.human_study.config import Settings
from robustscale.human_study.db import Answer, Image
from robustscale.human_study.images import create_study


@pytest.fixture
def study(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:6], y[:6])
    create_study(sessions, "s", adv, clean, batch_size=3)
    _, token = add_rater(sessions, "s", "alice")
    _, other = add_rater(sessions, "s", "bob")
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'study.db'}", admin_token="pw",
                        rate_limit=1000, rate_burst=1000, rater_cache_seconds=0.5)
    return TestClient(create_app(settings)), token, other, sessions


def page_item(client, token):
    html = client.get(f"/r/{token}").text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
    return html, fields


def post(client, token, fields, choice=0, confidence="high", csrf=None):
    data = {k: fields[k] for k in ("image_id", "phase", "issued", "nonce", "csrf_token")}
    data.update(choice=str(choice), confidence=confidence)
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(f"/r/{token}/answer", data=data)


def test_rater_completes_study_in_order(study):
    client, token, _, sessions = study
    html, fields = page_item(client, token)
    assert "image-rendering" not in html and "/static/study.css" in html
    assert "Batch 1 of 2" in html and "0 / 12 answered" in html
    phases = []
    for k in range(12):
        phases.append(fields["phase"])
        r = post(client, token, fields, choice=k % 10, confidence="low" if k % 2 else "high")
        assert r.status_code == 200, r.text
        item = r.json()
        assert item["done"] == k + 1
        if item["next"] is None:
            break
        fields.update({key: str(item["next"][key]) for key in ("image_id", "phase", "issued", "nonce")})
    # §4.1 order: batch's adversarial images, then their clean versions
    assert phases == ["adversarial"] * 3 + ["clean"] * 3 + ["adversarial"] * 3 + ["clean"] * 3
    assert "All 12 images are classified" in client.get(f"/r/{token}").text
    with sessions() as s:
        answers = list(s.scalars(select(Answer).order_by(Answer.id)))
    assert [a.choice for a in answers] == [k % 10 for k in range(12)]
    assert all(a.seconds is not None and a.seconds >= 0 for a in answers)
    assert [a.high_confidence for a in answers[:2]] == [True, False]


def test_rater_page_leaks_no_labels(study):
    client, token, _, sessions = study
    html, fields = page_item(client, token)
    with sessions() as s:
        im = s.get(Image, int(fields["image_id"]))
    for word in ("label", "prediction", "bob"):
        assert not re.search(rf"\b{word}s?\b", html.lower()), word
    assert f'data-choice="{im.label}"' in html  # the class list itself, not the answer


def test_security_rejections(study):
    client, token, other, sessions = study
    _, fields = page_item(client, token)
    assert client.get("/r/1.wrong").status_code == 403
    assert client.get("/r/garbage").status_code == 403
    assert post(client, token, fields, csrf="forged").status_code == 403
    fresh = TestClient(client.app)  # no CSRF cookie at all
    assert fresh.post(f"/r/{token}/answer", data={**fields, "choice": "1",
                                                  "confidence": "low"}).status_code == 403
    assert post(client, token, fields, choice=10).status_code == 422  # unknown class
    assert post(client, token, fields, confidence="medium").status_code == 422
    assert post(client, token, {**fields, "nonce": "0" * 64}).status_code == 403  # forged item
    # another rater's signed item is not valid for this rater
    _, bob_fields = page_item(client, other)
    assert post(client, token, bob_fields).status_code == 403
    assert post(client, token, fields).status_code == 200
    assert post(client, token, fields).status_code == 409  # replay / duplicate
    # images ahead of the rater's progress (the clean version) are not served
    _, now = page_item(client, token)
    assert client.get(f"/r/{token}/image/{now['image_id']}/clean").status_code == 403
    assert client.get(f"/r/{token}/image/{now['image_id']}/adversarial").status_code == 200
    assert client.get(f"/r/{token}/image/99999/adversarial").status_code == 404
    with sessions() as s:
        assert s.scalar(select(Answer.rater_id)) is not None
        assert len(list(s.scalars(select(Answer)))) == 1


def test_revoked_link_stops_within_seconds(study):
    """The app caches verified links, but only for rater_cache_seconds: a link revoked on the
    command line (another process, same database) stops working on the running app."""
    client, token, _, sessions = study
    assert client.app.state.settings.rater_cache_seconds <= 2
    _, fields = page_item(client, token)
    assert post(client, token, fields).status_code == 200  # cached now
    revoke_rater(sessions, "s", "alice")
    start = time.monotonic()
    while client.get(f"/r/{token}").status_code == 200:
        assert time.monotonic() - start < 5, "revoked link still served after 5 s"
        time.sleep(0.1)
    r = client.get(f"/r/{token}", headers={"accept": "text/html"})
    assert r.status_code == 403 and "expired" in r.text
    assert post(client, token, fields).status_code == 403


def test_rate_limit(tmp_path, study):
    client, token, _, _ = study
    settings = Settings(db_url=client.app.state.settings.db_url, rate_limit=0.01, rate_burst=2)
    slow = TestClient(create_app(settings))
    codes = []
    for _ in range(4):
        _, fields = page_item(slow, token)
        codes.append(post(slow, token, fields).status_code)
    assert codes[:2] == [200, 200] and codes[2:] == [429, 429]


def test_admin_pages(study):
    client, token, _, sessions = study
    _, fields = page_item(client, token)
    post(client, token, fields, choice=3)
    assert client.get("/admin").status_code == 401
    assert client.get("/admin/s/answers.csv").status_code == 401
    login = client.get("/admin/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert client.post("/admin/login", data={"csrf_token": csrf, "password": "nope"}).status_code == 401
    assert client.post("/admin/login", data={"password": "pw"}).status_code == 403  # no CSRF
    r = client.post("/admin/login", data={"csrf_token": csrf, "password": "pw"})
    assert r.status_code == 200 and "Studies" in r.text
    page = client.get("/admin/s").text
    assert "alice" in page and "1 / 12" in page and "Fleiss" in page
    csv_text = client.get("/admin/s/answers.csv").text.splitlines()
    assert len(csv_text) == 2 and ",alice,human," in csv_text[1]
    assert client.get("/admin/s/score.json", headers={"authorization": "Bearer pw"}).json()["images"] == 6
    assert client.get("/admin/nope", headers={"authorization": "Bearer pw"}).status_code == 404


def test_quiz_scores(study):
    client, _, _, _ = study
    page = client.get("/quiz/s").text
    n = int(re.search(r'data-n="(\d+)"', page).group(1))
    assert n == 6  # fewer images than 25: all of them
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.get("/quiz/s/image/0").headers["content-type"] == "image/png"
    r = client.post("/quiz/s", data={"csrf_token": csrf, **{f"answer_{k}": "0" for k in range(n)}})
    assert r.status_code == 200 and 'id="visitor"' in r.text
    assert re.search(r'id="model">0<', r.text)  # every quiz image fooled the model
    assert client.post("/quiz/s", data={"csrf_token": csrf, "answer_0": "0"}).status_code == 422
    assert client.get("/quiz/nope").status_code == 404


def login(client, password="pw"):
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text).group(1)
    return client.post("/admin/login", data={"csrf_token": csrf, "password": password},
                       follow_redirects=False), csrf


def test_admin_sessions_expire_log_out_and_logins_are_throttled(tmp_path, study):
    client, _, _, _ = study
    settings = Settings(db_url=client.app.state.settings.db_url, admin_token="pw",
                        admin_session_seconds=1, login_attempts_per_minute=3)
    c = TestClient(create_app(settings))
    r, csrf = login(c)
    assert r.status_code == 303 and c.get("/admin").status_code == 200
    old_cookie = c.cookies.get("rs_admin", path="/admin")
    time.sleep(1.2)  # the session ends by itself
    assert c.get("/admin").status_code == 401
    assert login(c)[0].status_code == 303 and c.get("/admin").status_code == 200
    cookie = c.cookies.get("rs_admin", path="/admin")
    assert cookie != old_cookie
    r = c.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and c.get("/admin").status_code == 401
    replay = TestClient(c.app, cookies={"rs_admin": cookie})  # a copied cookie is dead too
    assert replay.get("/admin").status_code == 401
    # 3 tries per minute per address; the 4th is refused even with the right password
    assert login(c, "wrong")[0].status_code == 401  # the 3rd try of this minute
    assert login(c)[0].status_code == 429
    assert c.get("/admin").status_code == 401


def test_undo_through_the_app(study):
    client, token, _, _ = study
    _, fields = page_item(client, token)
    headers = {"x-csrf-token": fields["csrf_token"]}
    assert client.post(f"/r/{token}/undo", headers=headers).status_code == 409  # nothing yet
    item = post(client, token, fields, choice=4).json()
    assert item["done"] == 1 and item["next"]["can_undo"] is True
    back = client.post(f"/r/{token}/undo", headers=headers)
    assert back.status_code == 200 and back.json()["done"] == 0
    assert back.json()["next"]["image_id"] == int(fields["image_id"])
    assert back.json()["next"]["can_undo"] is False
    assert client.post(f"/r/{token}/undo").status_code == 403  # no CSRF token


def test_every_attack_gets_4xx_and_every_page_a_csp(study):
    client, token, _, _ = study
    _, fields = page_item(client, token)
    rid, secret = token.split(".")
    csrf = {"x-csrf-token": fields["csrf_token"]}
    good = {k: fields[k] for k in ("image_id", "phase", "issued", "nonce")}
    good.update(choice="1", confidence="high")
    attacks = [
        ("GET", f"/r/{2 ** 70}.{secret}", {}), ("GET", f"/r/\u00b2.{secret}", {}),
        ("GET", f"/r/{rid}\u00b2.{secret}", {}), ("GET", "/r/" + "9" * 5000, {}),
        ("POST", f"/r/{2 ** 70}.{secret}/answer", {"data": good, "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"data": {**good, "image_id": str(2 ** 70)}, "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"data": {**good, "choice": str(2 ** 70)}, "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"data": {**good, "choice": "\u00b2"}, "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"data": {**good, "issued": "nan"}, "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"files": {"choice": ("x", b"1")}, "data": good,
                                        "headers": csrf}),
        ("POST", f"/r/{token}/answer", {"content": b"x" * 100_000, "headers": csrf}),
        ("GET", f"/r/{token}/image/{2 ** 70}/adversarial", {}),
        ("GET", f"/r/{token}/image/{fields['image_id']}/sideways", {}),
        ("GET", f"/quiz/s/image/{2 ** 70}", {}), ("GET", "/quiz/s/image/-1", {}),
        ("GET", "/quiz/" + "x" * 5000, {}),
        ("POST", "/quiz/s", {"files": {"answer_0": ("a.txt", b"1")}, "headers": csrf}),
        ("POST", "/admin/login", {"files": {"password": ("p", b"pw")}, "headers": csrf}),
        ("GET", "/admin/" + "x" * 5000, {"headers": {"authorization": "Bearer pw"}}),
        ("GET", "/admin/s", {"headers": {"authorization": "Bearer \u00e9\u00e9".encode("latin-1")}}),
    ]
    for method, url, kw in attacks:
        r = client.request(method, url, **kw)
        assert 400 <= r.status_code < 500, (method, url[:80], r.status_code, r.text[:200])
        assert "content-security-policy" in r.headers, url
    for url in ("/", "/admin/login", "/quiz/s", f"/r/{token}", "/static/study.css",
                "/static/rater.js", "/nope", "/healthz"):
        r = client.get(url)
        assert "script-src 'self'" in r.headers["content-security-policy"], url
        assert r.headers["x-frame-options"] == "DENY"


def test_huge_body_refused_before_it_is_read(tmp_path, study):
    """A client starting to send 100 MiB gets its answer within 0.2 s: a bad link is refused
    (403) before the body is read even when the cap allows 200 MiB, and any body over the cap
    (413) by its declared length."""
    client, token, _, _ = study
    server = Server(client.app.state.settings.db_url, extra=("--max-body", 200 * 2 ** 20))
    try:
        def send_big(path: str) -> tuple[str, float]:
            size = 100 * 2 ** 20
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         f"application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
                         .encode())
            start = time.monotonic()

            def body():
                chunk = b"a" * 2 ** 20
                try:
                    for _ in range(100):
                        sock.sendall(chunk)
                except OSError:  # the server answered and closed: expected
                    pass

            threading.Thread(target=body, daemon=True).start()
            status = sock.recv(4096).split(b"\r\n")[0].decode()
            elapsed = time.monotonic() - start
            sock.close()
            return status, elapsed

        rid, secret = token.split(".")
        status, elapsed = send_big(f"/r/{rid}.{'A' * len(secret)}/answer")
        assert status == "HTTP/1.1 403 Forbidden" and elapsed < 0.2, (status, elapsed)
        status, elapsed = send_big(f"/r/{2 ** 70}.{secret}/answer")
        assert status == "HTTP/1.1 403 Forbidden" and elapsed < 0.2, (status, elapsed)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"POST /quiz/s HTTP/1.1\r\nHost: x\r\nContent-Length: {300 * 2 ** 20}"
                         "\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    finally:
        server.stop()


def test_odd_admin_cookies_get_4xx(study):
    """`rs_admin=a.².b`: '²'.isdigit() is true and int('²') raised: HTTP 500 before the fix."""
    client, _, _, _ = study
    _, fields = page_item(client, study[1])
    for cookie in ("a.\u00b2.b", "\u00b2", "a.1.b.c", "x" * 5000, "", "a.99999999999999999999.b"):
        # latin-1: the bytes a browser sends for "²", which the server reads back as "²"
        header = {"cookie": f"rs_admin={cookie}; rs_csrf={fields['csrf_token']}".encode("latin-1")}
        assert client.get("/admin", headers=header).status_code == 401, cookie
        r = client.post("/admin/logout", data={"csrf_token": fields["csrf_token"]}, headers=header,
                        follow_redirects=False)
        assert r.status_code == 303, cookie


def test_bearer_guesses_share_the_login_throttle(tmp_path, study):
    """60 wrong Bearer guesses in 1.5 s were all answered 401 before the fix."""
    client, _, _, _ = study
    settings = Settings(db_url=client.app.state.settings.db_url, admin_token="pw",
                        login_attempts_per_minute=3)
    c = TestClient(create_app(settings))
    codes = [c.get("/admin", headers={"authorization": f"Bearer guess{k}"}).status_code
             for k in range(10)]
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}
    # the right token is refused too while the address is throttled, and so is the login form
    assert c.get("/admin", headers={"authorization": "Bearer pw"}).status_code == 429
    assert login(c)[0].status_code == 429


def test_admin_sessions_survive_a_restart(study):
    """Logged out and expired sessions stay dead in a new server process on the same database
    (a logged-out cookie worked again after a restart before the fix); live ones stay live."""
    client, _, _, _ = study
    settings = Settings(db_url=client.app.state.settings.db_url, admin_token="pw")
    first = TestClient(create_app(settings))
    _, csrf = login(first)
    dead = first.cookies.get("rs_admin", path="/admin")
    first.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False)
    second = TestClient(create_app(settings))
    _, _ = login(second)
    live = second.cookies.get("rs_admin", path="/admin")
    restarted = create_app(settings)
    assert TestClient(restarted, cookies={"rs_admin": dead}).get("/admin").status_code == 401
    assert TestClient(restarted, cookies={"rs_admin": live}).get("/admin").status_code == 200
    other_token = create_app(Settings(db_url=settings.db_url, admin_token="new"))
    assert TestClient(other_token, cookies={"rs_admin": live}).get("/admin").status_code == 401


def test_admin_401_page_links_to_login_and_table4_is_complete(study):
    client, _, _, _ = study
    page = client.get("/admin/s", headers={"accept": "text/html"})
    assert page.status_code == 401 and 'href="/admin/login"' in page.text
    login(client)
    page = client.get("/admin/s").text
    assert "Invalid counted as failed attacks" in page
    assert "undefined (no image has 2 answers)" in page  # kappa of nobody's answers: said why
