"""PGD: the CW loss, monotonicity in eps, robust <= clean, and agreement with torchattacks."""

import pytest
import torch

from robustscale.attacks.evaluation import robust_accuracy
from robustscale.attacks.pgd import cw_loss, pgd_attack
from robustscale.attacks.trades import trades_objective


def test_cw_loss_by_hand():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 0])
    # correct with margin 0.5 -> -0.5; misclassified -> clamped to 0
    assert cw_loss(logits, y).tolist() == [-0.5, 0.0]


def test_trades_objective_reductions():
    torch.manual_seed(0)
    clean, adv, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    per_image = trades_objective(clean, adv, y, reduction="none")
    assert per_image.shape == (8,)
    assert trades_objective(clean, adv, y).item() == pytest.approx(per_image.mean().item(), rel=1e-6)
    assert trades_objective(clean, clean, y).item() == pytest.approx(
        torch.nn.functional.cross_entropy(clean, y).item(), rel=1e-6)  # KL(p || p) = 0


def test_perturbation_stays_in_ball_and_image_range(trained):
    model, _, x, y = trained
    xa = pgd_attack(model, x[:32], y[:32], eps=0.1, step_size=0.025, steps=5)
    assert (xa - x[:32]).abs().max() <= 0.1 + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1


def test_accuracy_falls_monotonically_with_eps(trained):
    model, _, x, y = trained
    accs = []
    for eps in (0.0, 0.03, 0.06, 0.1, 0.2):
        clean, robust = robust_accuracy(model, x, y, eps=eps, steps=10)
        assert robust <= clean
        accs.append(robust)
    # eps = 0 is the clean accuracy; the model learned something (100 FGSM steps; BatchNorm momentum 0.01)
    assert accs[0] == clean > 0.5
    assert all(b <= a for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < accs[2] < accs[0], accs
    assert accs[3] > 0.2, accs  # adversarial training left it robust at its training radius


class _MarginAsTwoLogits(torch.nn.Module):
    """Logits (z_y, max_{j != y} z_j) for fixed labels y: cross-entropy on them against class 0 is
    softplus(-margin), whose input-gradient sign equals that of the CW loss while the image is
    classified correctly. So torchattacks' own PGD (cross-entropy only) runs PGD on the CW margin."""

    def __init__(self, model, y):
        super().__init__()
        self.model, self.y = model, y

    def forward(self, x):
        z = self.model(x)
        z_y = z.gather(1, self.y[:, None])
        z_other = z.masked_fill(torch.nn.functional.one_hot(self.y, z.shape[1]).bool(), -1e9).amax(1, True)
        return torch.cat([z_y, z_other], 1)


@pytest.mark.parametrize("random_start", [False, True])
def test_cw_pgd_agrees_with_torchattacks(trained, random_start):
    import torchattacks

    model, _, x, y = trained
    eps, alpha, steps = 0.1, 0.025, 20
    ours = pgd_attack(model, x, y, eps=eps, step_size=alpha, steps=steps, loss="cw",
                      random_start="uniform" if random_start else None,
                      generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    # eval() on the wrapper: torchattacks restores the wrapped module's mode after the attack, and a
    # fresh module is in training mode, which would put the shared model's BatchNorm in training mode
    wrapper = _MarginAsTwoLogits(model, y).eval()
    theirs = torchattacks.PGD(wrapper, eps=eps, alpha=alpha, steps=steps,
                              random_start=random_start)(x, torch.zeros_like(y))
    with torch.no_grad():
        acc_ours = (model(ours).argmax(1) == y).float().mean().item()
        acc_theirs = (model(theirs).argmax(1) == y).float().mean().item()
    assert not model.training
    assert 0.1 < acc_ours < 0.9
    assert abs(acc_ours - acc_theirs) <= 0.005 + 1e-9, (acc_ours, acc_theirs)


def test_ce_pgd_agrees_with_torchattacks(trained):
    import torchattacks

    model, _, x, y = trained
    ours = pgd_attack(model, x, y, eps=0.1, step_size=0.025, steps=20, loss="ce", random_start=None)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=20, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6) or (ours != theirs).float().mean() < 1e-3
