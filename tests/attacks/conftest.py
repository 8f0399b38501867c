"""A small robust model on real Fashion-MNIST, trained once per session for the attack tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustscale.attacks.pgd import pgd_attack
from robustscale.data.datasets import images_to_tensor
from robustscale.models import create_model, save_model

EPS = 0.1  # Fashion-MNIST's default radius
STEPS, BATCH = 100, 128


@pytest.fixture(scope="session")
def trained(fashion_mnist, tmp_path_factory):
    """(model in eval mode, checkpoint stem, x_test (200 images), y_test) of a WRN-10-1 trained with
    FGSM + random start (Wong et al., 2020): the cheapest adversarial training that leaves a model
    robust enough for the attacks to have something to separate. ~100 steps, < 1 min on 2 cores."""
    xtr, ytr, xte, yte = fashion_mnist
    torch.manual_seed(0)
    model = create_model("wrn-10-1", dataset="fashion-mnist")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.2, total_steps=STEPS)
    x, y = images_to_tensor(xtr[:20000]), torch.from_numpy(ytr[:20000])
    for _ in range(STEPS):
        idx = torch.randint(0, len(x), (BATCH,))
        model.eval()
        xa = pgd_attack(model, x[idx], y[idx], eps=EPS, step_size=1.25 * EPS, steps=1, loss="ce")
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
