"""The web app through FastAPI's TestClient on a real SQLite file: rater flow and security."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from studyutil import make_npz

from robustscale.study.app import create_app
from robustscale.study.config import Settings
from robustscale.study.db import Answer, Image
from robustscale.study.service import add_rater, create_study


@pytest.fixture
def study(tmp_path, sessions, fmnist_test):
    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:6], y[:6])
    create_study(sessions, "s", adv, clean, batch_size=3)
    _, token = add_rater(sessions, "s", "alice")
    _, other = add_rater(sessions, "s", "bob")
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'study.db'}", admin_token="pw",
                        rate_limit=1000, rate_burst=1000)
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
        assert word not in html.lower()
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


def test_expired_token(study):
    client, _, _, sessions = study
    _, expired = add_rater(sessions, "s", "carol", days=-0.01)
    r = client.get(f"/r/{expired}", headers={"accept": "text/html"})
    assert r.status_code == 403 and "expired" in r.text


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
