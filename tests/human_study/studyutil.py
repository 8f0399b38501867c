"""Helpers of the study tests (imported by test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from robustscale.data.datasets import DATASETS

FASHION_CLASSES = DATASETS["fashion-mnist"].classes
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "human_study"


def make_npz(folder: Path, images: np.ndarray, labels: np.ndarray, n_robust: int = 0) -> tuple:
    """adversarial.npz (noise-perturbed real images, model predictions wrong except the first
    n_robust) and clean.npz, in the layout `robustscale evaluate` writes."""
    rng = np.random.default_rng(0)
    adv = np.clip(images.astype(int) + rng.integers(-25, 26, images.shape), 0, 255).astype(np.uint8)
    preds = (labels + 1) % 10
    preds[:n_robust] = labels[:n_robust]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "adversarial.npz", images=adv, labels=labels, predictions=preds,
             indices=np.arange(len(labels)), classes=np.array(FASHION_CLASSES))
    np.savez(folder / "clean.npz", images=images, labels=labels, indices=np.arange(len(labels)),
             classes=np.array(FASHION_CLASSES))
    return folder / "adversarial.npz", folder / "clean.npz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`robustscale study serve` in a subprocess, on a free loopback port; `extra`: more flags."""

    def __init__(self, db_url: str, rate_limit: float = 5.0, admin_token: str = "admin-secret",
                 extra: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "robustscale", "study", "serve", "--db", db_url,
                     "--port", str(self.port), "--rate-limit", str(rate_limit), *map(str, extra)]
        self.env = dict(os.environ, ROBUSTSCALE_STUDY_ADMIN_TOKEN=admin_token)
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        import httpx

        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("serve did not start")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """kill -9: no shutdown, requests in flight are cut."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def length_reply(classes, png: bytes) -> str:
    """'<class k>, high' where k = (PNG length) % 10 ('low' for odd k), after some reasoning
    that names another class."""
    k = len(png) % 10
    return (f"The image shows a blurry shape; it might be a {classes[(k + 1) % 10]}, but "
            f"I think it is a {classes[k]}, {'low' if k % 2 else 'high'}")


class ChatServer(ThreadingHTTPServer):
    """A loopback OpenAI-compatible endpoint. POST /v1/chat/completions answers
    `reply(classes, png)`; the first requests get the statuses in `fail` (429 with Retry-After);
    `hang=True` accepts requests and never answers."""

    daemon_threads = True  # a hanging handler must not hold up the test's teardown
    block_on_close = False

    def __init__(self, classes, fail=(500, 429), key="sk-test", reply=length_reply, hang=False):
        super().__init__(("127.0.0.1", 0), Handler)
        self.classes, self.fail, self.key, self.reply, self.hang = classes, list(fail), key, reply, hang
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends hanging handlers at shutdown

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
        if srv.hang:
            srv.requests.append(payload)
            srv.release.wait(30)
            return
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
        reply = srv.reply(srv.classes, base64.b64decode(url.split(",", 1)[1]))
        self._send(200, {"id": "x", "object": "chat.completion", "model": payload["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": reply}}]})
