"""Shared test fixtures: real Fashion-MNIST (Debian's dataset-fashion-mnist), CUDA skipping, the
`cli` runner, and what is expensive to make, made once per session: a robustly trained model
(`trained`), a quick demo study (`quick_demo`) and a headless browser (`browser`)."""

from __future__ import annotations

import pytest

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fashion_mnist():
    """(train_images, train_labels, test_images, test_labels) as uint8 NHWC / int64 arrays."""
    from robustscale.data.datasets import load_dataset

    xtr, ytr = load_dataset("fashion-mnist", "train")
    xte, yte = load_dataset("fashion-mnist", "test")
    return xtr, ytr, xte, yte


class CliResult:
    """What one `robustscale ...` run returned; `.json` parses its stdout."""

    def __init__(self, proc):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    @property
    def json(self):
        import json

        return json.loads(self.stdout)

    def __repr__(self):
        return f"CliResult(rc={self.returncode}, stderr={self.stderr[-2000:]!r})"


def run_cli(*args, env=None, timeout=None, no_torch=False, cwd=None, launcher=(), check=False):
    """Run the real CLI in a subprocess (`python [LAUNCHER] -m robustscale ARGS`).

    `env` adds to the environment; `no_torch=True` runs it with torch made unimportable, to prove
    a command needs no torch; `launcher` goes before `-m robustscale` (e.g. `-m torch.distributed.run
    --nproc-per-node 2`); `check=True` fails the test on a non-zero exit, showing stderr.
    """
    import os
    import subprocess
    import sys

    if no_torch:
        code = ("import sys; sys.modules['torch'] = None; sys.argv = ['robustscale', *sys.argv[1:]]; "
                "from robustscale.cli import main; main()")
        cmd = [sys.executable, "-c", code, *map(str, args)]
    else:
        cmd = [sys.executable, *map(str, launcher), "-m", "robustscale", *map(str, args)]
    full_env = {**os.environ, **(env or {})}
    result = CliResult(subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                                      timeout=timeout, cwd=cwd))
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def cli():
    """`cli("fit", path, "--json")` runs the real command line; see `run_cli`."""
    return run_cli


@pytest.fixture(scope="session")
def trained(fashion_mnist, tmp_path_factory):
    """(model in eval mode, checkpoint stem, x_test (200 images), y_test) of a WRN-10-1 trained with
    FGSM + random start (Wong et al., 2020): the cheapest adversarial training that leaves a model
    robust enough for attacks to have something to separate. 100 steps, < 1 min on 2 cores."""
    import torch
    import torch.nn.functional as F

    from robustscale.attacks.pgd import pgd_attack
    from robustscale.data.datasets import images_to_tensor
    from robustscale.models import create_model, save_model

    eps, steps, batch = 0.1, 100, 128  # Fashion-MNIST's default radius
    xtr, ytr, xte, yte = fashion_mnist
    torch.manual_seed(0)
    model = create_model("wrn-10-1", dataset="fashion-mnist")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.2, total_steps=steps)
    x, y = images_to_tensor(xtr[:20000]), torch.from_numpy(ytr[:20000])
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,))
        model.eval()
        xa = pgd_attack(model, x[idx], y[idx], eps=eps, step_size=1.25 * eps, steps=1, loss="ce")
        model.train()
        loss = F.cross_entropy(model(xa), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    stem = tmp_path_factory.mktemp("model") / "model"
    save_model(model, stem)
    return model, stem, images_to_tensor(xte[:200]), torch.from_numpy(yte[:200])


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """(out folder, CliResult) of one `robustscale demo --quick --json` run under umask 022: six tiny
    real training runs, the observations, the law and the report, shared by every test that reads
    a real study."""
    import os

    out = tmp_path_factory.mktemp("demo") / "demo-out"
    old = os.umask(0o022)
    try:
        result = run_cli("demo", "--quick", "--out", out, "--json", timeout=900)
    finally:
        os.umask(old)
    assert result.returncode == 0, result
    return out, result


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, through Playwright (skips where either is missing)."""
    from pathlib import Path

    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()
