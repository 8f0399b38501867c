"""PGD: the CW loss, monotonicity in eps, robust <= clean, L-inf and L2 agreement with torchattacks."""

import pytest
import torch

from robustscale.attacks.evaluation import robust_accuracy
from robustscale.attacks.pgd import cw_loss, pgd_attack, project, start_point
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
    """The same objective, start and step as torchattacks' L-inf PGD: the same image for every image."""
    import torchattacks

    model, _, x, y = trained
    ours = pgd_attack(model, x, y, eps=0.1, step_size=0.025, steps=20, loss="ce", random_start=None)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=20, random_start=False)(x, y)
    # both clip to x +- eps, once as x + clamp(x_adv - x) and once as min/max: a float rounding apart
    assert (ours - theirs).abs().amax(dim=(1, 2, 3)).max() <= 1e-6
    with torch.no_grad():
        flags_ours, flags_theirs = model(ours).argmax(1) == y, model(theirs).argmax(1) == y
    assert torch.equal(flags_ours, flags_theirs)
    assert 0.05 < flags_ours.float().mean() < 0.95  # the attack flips some images and not others


L2_EPS = 1.0  # Fashion-MNIST (784 pixels) in the L2 ball: a radius the L-inf-trained model partly survives


@pytest.mark.parametrize("loss", ["ce", "cw"])
def test_l2_pgd_flags_equal_torchattacks(trained, loss):
    """L2 PGD (normalised-gradient step, ball then box projection) against torchattacks' PGDL2 from the
    same start (the clean image), with the same step: per image, the same robust flag on all 200 images.
    For the CW loss torchattacks attacks the margin through `_MarginAsTwoLogits` (its CE on (z_y, z_other)
    has the CW gradient's direction while the image is classified correctly, and the L2 step uses only
    the direction)."""
    import torchattacks

    model, _, x, y = trained
    assert len(x) >= 200
    eps, alpha, steps = L2_EPS, L2_EPS / 4, 20
    ours = pgd_attack(model, x, y, eps=eps, step_size=alpha, steps=steps, loss=loss, random_start=None,
                      norm="l2")
    target = model if loss == "ce" else _MarginAsTwoLogits(model, y).eval()
    labels = y if loss == "ce" else torch.zeros_like(y)
    theirs = torchattacks.PGDL2(target, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, labels)
    assert not model.training
    norms = (ours - x).flatten(1).norm(dim=1)
    assert norms.max() <= eps + 1e-5 and ours.min() >= 0 and ours.max() <= 1
    with torch.no_grad():
        flags_ours, flags_theirs = model(ours).argmax(1) == y, model(theirs).argmax(1) == y
    assert 0.1 < flags_ours.float().mean() < 0.9, flags_ours.float().mean()
    assert torch.equal(flags_ours, flags_theirs), (flags_ours != flags_theirs).nonzero().flatten().tolist()
    if loss == "ce":  # the same iterates up to float rounding
        assert (ours - theirs).abs().max() <= 1e-4


def test_l2_projection_ball_and_box():
    """project(): inside both the L2 ball and [0, 1]; a point already inside stays put; eps = 0 gives x."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    far = x + 3 * torch.randn(x.shape, generator=g)
    p = project(far, x, 0.5, "l2")
    assert ((p - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all() and p.min() >= 0 and p.max() <= 1
    near = (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert torch.equal(project(near, x, 0.5, "l2"), near)
    assert torch.equal(project(far, x, 0.0, "l2"), x)
    # the reference's L2 random start: in the box, on or inside the ball, different per image
    s = start_point(x, 0.5, "l2", "uniform", torch.Generator().manual_seed(1))
    lengths = (s - x).flatten(1).norm(dim=1)
    assert (lengths <= 0.5 + 1e-6).all() and (lengths > 0.4).all() and s.min() >= 0 and s.max() <= 1


def test_l2_accuracy_falls_with_eps(trained):
    model, _, x, y = trained
    accs = [robust_accuracy(model, x[:100], y[:100], eps=eps, steps=10, norm="l2")[1]
            for eps in (0, 0.5, 1.5)]
    assert accs[0] > accs[1] > accs[2], accs


def test_trades_l2_attack_stays_in_the_ball_and_raises_the_kl(trained):
    """TRADES' inner maximisation under L2, from the reference's l2-pgd start (0.001 N(0, 1))."""
    from robustscale.attacks.trades import trades_attack, trades_objective

    model, _, x, y = trained
    x, y = x[:64], y[:64]
    with torch.no_grad():
        clean = model(x)
    xa = trades_attack(model, x, clean, eps=L2_EPS, step_size=L2_EPS / 5, steps=10, start="normal", norm="l2",
                       generator=torch.Generator().manual_seed(0))
    assert ((xa - x).flatten(1).norm(dim=1) <= L2_EPS + 1e-5).all() and xa.min() >= 0 and xa.max() <= 1
    with torch.no_grad():  # beta = 1 and the same clean term: the difference is the KL
        kl_start = trades_objective(clean, model((x + 1e-3 * torch.randn_like(x)).clamp(0, 1)), y, beta=1)
        kl_attack = trades_objective(clean, model(xa), y, beta=1)
    assert kl_attack > kl_start + 0.1, (kl_start, kl_attack)
