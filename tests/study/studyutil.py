"""Helpers of the study tests (imported by test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "study"


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
    """`robustscale study serve` in a subprocess, on a free loopback port."""

    def __init__(self, db_url: str, rate_limit: float = 5.0, admin_token: str = "admin-secret"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, ROBUSTSCALE_STUDY_ADMIN_TOKEN=admin_token)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robustscale", "study", "serve", "--db", db_url, "--port",
             str(self.port), "--rate-limit", str(rate_limit)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


