"""VLM rater against a real OpenAI-compatible server on 127.0.0.1 (written here): deterministic
replies, the first request failing with 500 and the second with 429 to exercise retries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from studyutil import FASHION_CLASSES, make_npz

from robustscale.errors import RobustscaleError
from robustscale.study.db import Answer, Image, Rater, make_engine, make_sessionmaker
from robustscale.study.vlm import CIFAR10_PROMPT, parse_reply, prompt_for, vlm_rate


class ChatServer(ThreadingHTTPServer):
    """POST /v1/chat/completions: answers '<class k>, high' where k = (PNG length) % 10,
    'low' for odd k; the first request gets 500, the second 429 with Retry-After."""

    def __init__(self, classes, fail=(500, 429), key="sk-test"):
        super().__init__(("127.0.0.1", 0), Handler)
        self.classes, self.fail, self.key = classes, list(fail), key
        self.requests = []
        self.lock = threading.Lock()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        srv = self.server
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        if self.headers.get("Authorization") != f"Bearer {srv.key}":
            return self._send(401, {"error": {"message": "bad key"}})
        with srv.lock:
            srv.requests.append(payload)
            fail = srv.fail.pop(0) if srv.fail else None
        if fail:
            return self._send(fail, {"error": "try later"}, [("Retry-After", "0")] if fail == 429 else [])
        text_part, image_part = payload["messages"][0]["content"]
        url = image_part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        png = base64.b64decode(url.split(",", 1)[1])
        k = len(png) % 10
        reply = (f"The image shows a blurry shape; it might be a {srv.classes[(k + 1) % 10]}, but "
                 f"I think it is a {srv.classes[k]}, {'low' if k % 2 else 'high'}")
        self._send(200, {"id": "x", "object": "chat.completion", "model": payload["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": reply}}]})


@pytest.fixture
def chat_server():
    def start(classes, **kw):
        srv = ChatServer(classes, **kw)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    servers = []
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_prompt_is_figure_17():
    assert CIFAR10_PROMPT.startswith("I will give you an image that contains one of 10 classes. ")
    assert "automobile (but not truck or pickup truck)" in CIFAR10_PROMPT
    assert CIFAR10_PROMPT.endswith("unlikely that you have identified the correct class.")
    assert prompt_for(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                       "ship", "truck"]) == CIFAR10_PROMPT
    p = prompt_for(list(FASHION_CLASSES))
    assert "[T-shirt/top, Trouser," in p and "and Ankle boot]" in p


def test_parse_reply():
    cifar = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert parse_reply("Looks like wheels, not a truck. automobile, higher", cifar) == (1, True)
    assert parse_reply("Hard to say... 'cat, low'.", cifar) == (3, False)
    assert parse_reply("**Deer, High**", cifar) == (4, True)
    assert parse_reply("I cannot tell.", cifar) is None
    assert parse_reply("dog, maybe, low", cifar) is None  # not the required final format
    assert parse_reply("It is a pickup truck, high", cifar) == (9, True)
    assert parse_reply("ankle boot, low", list(FASHION_CLASSES)) == (9, False)


def test_vlm_rate_retries_and_resumes(tmp_path, fmnist_test, chat_server):
    from robustscale.study.service import create_study

    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:12], y[:12])
    db = f"sqlite:///{tmp_path / 'v.db'}"
    sessions = make_sessionmaker(make_engine(db))
    create_study(sessions, "s", adv, clean)
    srv = chat_server(FASHION_CLASSES)
    env = {"ROBUSTSCALE_VLM_API_KEY": "sk-test", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "robustscale", "study", "vlm-rate", "s", "--base-url",
           srv.base_url, "--model", "gpt-test", "--backoff", "0.05", "--db", db, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["rated"], result["unparsed"], result["already_rated"]) == (12, 0, 0)
    assert len(srv.requests) == 14  # 12 images + the 500 and the 429 retried
    first = srv.requests[0]
    assert first["model"] == "gpt-test"
    assert first["messages"][0]["content"][0]["text"] == prompt_for(list(FASHION_CLASSES))
    with sessions() as s:
        rater = s.scalar(select(Rater).where(Rater.kind == "vlm"))
        rows = s.execute(select(Answer, Image).join(Image).where(Answer.rater_id == rater.id)).all()
    assert rater.name == "gpt-test" and len(rows) == 12
    for a, im in rows:
        k = len(im.adversarial_png) % 10
        assert (a.choice, a.high_confidence, a.phase) == (k, k % 2 == 0, "adversarial")
    # resumable: a second run sends nothing new
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      check=True).stdout)
    assert (again["rated"], again["already_rated"]) == (0, 12) and len(srv.requests) == 14
    # the VLM is the study's fourth rater in the score
    score = json.loads(subprocess.run([sys.executable, "-m", "robustscale", "study", "score", "s",
                                       "--db", db, "--json"], capture_output=True, text=True,
                                      check=True).stdout)
    assert score["vlm"]["rater"] == "gpt-test"


def test_vlm_rate_gives_up_and_bad_key(tmp_path, fmnist_test, chat_server):
    from robustscale.study.service import create_study

    x, y = fmnist_test
    adv, clean = make_npz(tmp_path, x[:3], y[:3])
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'v.db'}"))
    create_study(sessions, "s", adv, clean)
    srv = chat_server(FASHION_CLASSES, fail=[503] * 10)
    with pytest.raises(RobustscaleError, match="HTTP 503 after 2 retries"):
        vlm_rate(sessions, "s", srv.base_url, "m", "sk-test", retries=2, backoff=0.01)
    assert len(srv.requests) == 3
    with pytest.raises(RobustscaleError, match="HTTP 401"):
        vlm_rate(sessions, "s", srv.base_url, "m", "wrong-key", retries=2, backoff=0.01)
    with sessions() as s:
        assert s.scalar(select(Answer)) is None
