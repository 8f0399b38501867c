"""VLM rater against a real OpenAI-compatible server on 127.0.0.1 (studyutil.ChatServer):
deterministic replies, the first request failing with 500 and the second with 429 to exercise
retries; a server whose replies never parse; a server that never answers."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from studyutil import FASHION_CLASSES, make_npz

from robustscale.errors import RobustscaleError
from robustscale.human_study.db import Answer, Image, Rater, Reply, make_engine, make_sessionmaker
from robustscale.human_study.images import CIFAR10_CLASSES, create_study
from robustscale.human_study.vlm import CIFAR10_PROMPT, parse_reply, prompt_for, vlm_rate


def test_prompt_is_figure_17():
    assert CIFAR10_PROMPT.startswith("I will give you an image that contains one of 10 classes. ")
    assert "automobile (but not truck or pickup truck)" in CIFAR10_PROMPT
    assert CIFAR10_PROMPT.endswith("unlikely that you have identified the correct class.")
    assert prompt_for(list(CIFAR10_CLASSES)) == CIFAR10_PROMPT
    p = prompt_for(list(FASHION_CLASSES))
    assert "[T-shirt/top, Trouser," in p and "and Ankle boot]" in p


def test_parse_reply():
    cifar = list(CIFAR10_CLASSES)
    assert parse_reply("Looks like wheels, not a truck. automobile, higher", cifar) == (1, True)
    assert parse_reply("Hard to say... 'cat, low'.", cifar) == (3, False)
    assert parse_reply("**Deer, High**", cifar) == (4, True)
    assert parse_reply("I cannot tell.", cifar) is None
    assert parse_reply("dog, maybe, low", cifar) is None  # not the required final format
    assert parse_reply("It is a pickup truck, high", cifar) == (9, True)
    assert parse_reply("ankle boot, low", list(FASHION_CLASSES)) == (9, False)


@pytest.fixture
def small_study(tmp_path, fmnist_test):
    def make(n):
        x, y = fmnist_test
        adv, clean = make_npz(tmp_path, x[:n], y[:n])
        db = f"sqlite:///{tmp_path / 'v.db'}"
        sessions = make_sessionmaker(make_engine(db))
        create_study(sessions, "s", adv, clean)
        return db, sessions
    return make


def test_vlm_rate_retries_and_resumes(small_study, chat_server, cli):
    db, sessions = small_study(12)
    srv = chat_server(FASHION_CLASSES)
    env = {"ROBUSTSCALE_VLM_API_KEY": "sk-test"}
    args = ("study", "vlm-rate", "s", "--base-url", srv.base_url, "--model", "gpt-test",
            "--backoff", "0.05", "--db", db, "--json")
    out = cli(*args, env=env)
    assert out.returncode == 0, out
    result = out.json
    assert (result["rated"], result["unparsed"], result["already_rated"]) == (12, 0, 0)
    assert len(srv.requests) == 14  # 12 images + the 500 and the 429 retried
    first = srv.requests[0]
    # Fig. 18's payload
    assert (first["model"], first["max_tokens"], first["temperature"]) == ("gpt-test", 3200, 0)
    assert first["messages"][0]["content"][0]["text"] == prompt_for(list(FASHION_CLASSES))
    assert first["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    with sessions() as s:
        rater = s.scalar(select(Rater).where(Rater.kind == "vlm"))
        rows = s.execute(select(Answer, Image, Reply).join(Image, Answer.image_id == Image.id)
                         .join(Reply, Reply.answer_id == Answer.id)
                         .where(Answer.rater_id == rater.id)).all()
    assert rater.name == "gpt-test" and len(rows) == 12
    for a, im, reply in rows:
        k = len(im.adversarial_png) % 10
        assert (a.choice, a.high_confidence, a.phase) == (k, k % 2 == 0, "adversarial")
        assert reply.text.startswith("The image shows a blurry shape") and \
            reply.text.endswith(f"{FASHION_CLASSES[k]}, {'low' if k % 2 else 'high'}")
    # resumable: a second run sends nothing new
    again = cli(*args, env=env).json
    assert (again["rated"], again["already_rated"]) == (0, 12) and len(srv.requests) == 14
    # flags reach the payload
    srv2 = chat_server(FASHION_CLASSES, fail=())
    cli("study", "vlm-rate", "s", "--base-url", srv2.base_url, "--model", "other", "--max-tokens",
        "50", "--temperature", "0.7", "--db", db, "--json", env=env)
    assert (srv2.requests[0]["max_tokens"], srv2.requests[0]["temperature"]) == (50, 0.7)


def test_vlm_rate_gives_up_and_bad_key(small_study, chat_server):
    _, sessions = small_study(3)
    srv = chat_server(FASHION_CLASSES, fail=[503] * 10)
    with pytest.raises(RobustscaleError, match="HTTP 503 after 2 retries"):
        vlm_rate(sessions, "s", srv.base_url, "m", "sk-test", retries=2, backoff=0.01)
    assert len(srv.requests) == 3
    with pytest.raises(RobustscaleError, match="HTTP 401"):
        vlm_rate(sessions, "s", srv.base_url, "m", "wrong-key", retries=2, backoff=0.01)
    with sessions() as s:  # failed runs leave no (empty) VLM rater behind
        assert s.scalar(select(Answer)) is None and s.scalar(select(Rater)) is None


def test_unparseable_replies_fail_loudly(small_study, chat_server, cli):
    db, sessions = small_study(3)
    srv = chat_server(FASHION_CLASSES, fail=(), reply=lambda classes, png: "I cannot tell.")
    out = cli("study", "vlm-rate", "s", "--base-url", srv.base_url, "--model", "m", "--db", db,
              env={"ROBUSTSCALE_VLM_API_KEY": "sk-test"})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.lstrip().startswith("error: model 'm': none of its 3 replies ends in "
                                 "'<class>, <confidence>'") and "I cannot tell." in out.stderr
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Rater)) == 0
    # some parse: exit 0, a warning names the others
    srv = chat_server(FASHION_CLASSES, fail=(), reply=lambda classes, png: (
        f"{classes[0]}, high" if len(png) % 2 else "no idea"))
    out = cli("study", "vlm-rate", "s", "--base-url", srv.base_url, "--model", "m", "--db", db,
              "--json", env={"ROBUSTSCALE_VLM_API_KEY": "sk-test"})
    assert out.returncode == 0 and out.json["rated"] + out.json["unparsed"] == 3
    assert (out.json["unparsed"] > 0) == ("warning: " in out.stderr)


def test_hanging_endpoint_times_out(small_study, chat_server):
    _, sessions = small_study(2)
    srv = chat_server(FASHION_CLASSES, hang=True)
    start = time.monotonic()
    with pytest.raises(RobustscaleError, match="ReadTimeout after 1 retries"):
        vlm_rate(sessions, "s", srv.base_url, "m", "sk-test", retries=1, backoff=0.01,
                 timeout=0.5)
    # two attempts of 0.5 s each, not 2 x 120 s
    assert time.monotonic() - start < 5 and len(srv.requests) == 2
