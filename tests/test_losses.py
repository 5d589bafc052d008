"""Losses: each one trains D the right way; penalties have their textbook values; scores are reported as documented."""
import math

import pytest
import torch
import torch.nn as nn

from gan_core.losses import LOSSES, gradient_penalty, r1_penalty

EXPECTED = {"minimax", "bce", "lsgan", "wgan", "wgan-gp", "hinge", "r3gan"}


def test_registry_has_every_documented_loss():
    assert EXPECTED <= set(LOSSES)


def scores(D, x):
    return D(x).reshape(-1)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_d_steps_raise_real_and_lower_fake_scores(name):
    """A few D updates on fixed tensors, applying the loss as the trainer does (penalty λ = 10, clipping c = 0.05).

    Toy problem: real points around (1, 1), fakes their mirror image, and a linear critic that starts
    undecided (tiny weights orthogonal to the data, so every score starts at 0). Plain SGD keeps the
    penalty's pull (along the weights, orthogonal to the data) from masking the loss's sign: a loss with
    real and fake swapped fails this test."""
    loss, clip, gp_lambda = LOSSES[name], 0.05, 10.0
    g = torch.Generator().manual_seed(0)
    real = torch.randn(64, 2, generator=g) * 0.3 + torch.tensor([1.0, 1.0])
    fake = -real
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[0.01, -0.01]]))
        D.bias.zero_()
    opt = torch.optim.SGD(D.parameters(), lr=0.05)
    with torch.no_grad():
        real0, fake0 = scores(D, real).mean(), scores(D, fake).mean()
    for _ in range(10):
        loss_d = loss.d(scores(D, real), scores(D, fake), 1.0)
        if loss.gradient_penalty:
            loss_d = loss_d + gp_lambda * gradient_penalty(lambda x, y: scores(D, x), real, fake, None, g)
        opt.zero_grad()
        loss_d.backward()
        opt.step()
        if loss.clip_weights:
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-clip, clip)
    with torch.no_grad():
        real1, fake1 = scores(D, real).mean(), scores(D, fake).mean()
    assert real1 > real0 + 0.05, f"{name}: D(real) went from {real0:.4f} to {real1:.4f}"
    assert fake1 < fake0 - 0.05, f"{name}: D(fake) went from {fake0:.4f} to {fake1:.4f}"
    if loss.clip_weights:
        assert all(p.abs().max() <= clip for p in D.parameters())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_g_loss_pushes_fake_scores_up(name):
    fake = torch.tensor([-2.0, -0.5, 0.0, 0.5], requires_grad=True)
    loss = LOSSES[name]
    (loss.g(fake, torch.zeros(4)) if loss.relativistic else loss.g(fake)).backward()
    assert (fake.grad <= 0).all() and (fake.grad < 0).any(), f"{name}: dL_G/dD(fake) = {fake.grad.tolist()}"


def test_losses_are_stable_on_extreme_logits():
    big = torch.tensor([80.0, -80.0, 1e4, -1e4])
    for name, loss in LOSSES.items():
        g = loss.g(big, -big) if loss.relativistic else loss.g(big)
        assert torch.isfinite(loss.d(big, -big, 1.0)) and torch.isfinite(g), name


def test_bce_d_loss_value():
    # logit 0 = probability ½ for both: −log ½ − log ½ = 2 log 2
    zero = torch.zeros(4)
    assert math.isclose(float(LOSSES["bce"].d(zero, zero, 1.0)), 2 * math.log(2), rel_tol=1e-6)


def test_label_smoothing_lowers_the_real_target():
    real, fake = torch.full((4,), 0.9), torch.zeros(4)
    # lsgan: ½(0.9 − 0.9)² + 0 = 0 with target 0.9, but ½(0.9 − 1)² with target 1
    assert float(LOSSES["lsgan"].d(real, fake, 0.9)) == pytest.approx(0.0, abs=1e-7)
    assert float(LOSSES["lsgan"].d(real, fake, 1.0)) == pytest.approx(0.005, rel=1e-5)


def linear_critic(w: list[float]):
    lin = nn.Linear(len(w), 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w]))
        lin.bias.fill_(0.3)
    return lambda x, y: lin(x.flatten(1)).reshape(-1)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = w·x + b has ‖∇D‖ = ‖w‖ everywhere: w = (3, 4) → (5 − 1)² = 16, whatever the interpolates."""
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert gradient_penalty(linear_critic([3.0, 4.0]), real, fake).item() == pytest.approx(16.0, rel=1e-6)
    assert gradient_penalty(linear_critic([0.6, 0.8]), real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_on_images_uses_each_sample_norm():
    """A quadratic critic ½‖x‖² has ∇D = x; with real = fake the interpolate is x itself, so the penalty is
    the mean over samples of (‖x_i‖ − 1)²: norms 2 and 3 → (1 + 4) / 2 = 2.5."""
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0] = 2.0
    x[1, 0, 1, 1] = 3.0

    def quadratic(v, y):
        return 0.5 * v.pow(2).flatten(1).sum(1)

    assert gradient_penalty(quadratic, x, x.clone()).item() == pytest.approx(2.5, rel=1e-6)


def test_gradient_penalty_is_differentiable_wrt_the_critic():
    lin = nn.Linear(2, 1)
    gp = gradient_penalty(lambda x, y: lin(x).reshape(-1), torch.randn(4, 2), torch.randn(4, 2))
    gp.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


def test_r1_penalty_known_value():
    """R1 = E‖∇D(x)‖² at real data; for D = w·x with w = (3, 4): 25."""
    real = torch.randn(5, 2, requires_grad=True)
    scores_ = real @ torch.tensor([3.0, 4.0])
    assert r1_penalty(scores_, real).item() == pytest.approx(25.0, rel=1e-6)


def test_scores_for_display():
    s = torch.tensor([-3.0, 0.0, 3.0])
    for name in ("bce", "minimax"):
        p = LOSSES[name].display(s)
        assert LOSSES[name].scores == "probability" and ((p > 0) & (p < 1)).all() and p[1] == 0.5
    for name in ("lsgan", "wgan", "wgan-gp", "hinge"):
        assert LOSSES[name].scores == "critic" and torch.equal(LOSSES[name].display(s), s)


class LinearD(nn.Module):
    """D(x) = w·x with w = (3, 4): ‖∇D‖² = 25 at every point, real or fake."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, 4.0]))

    def forward(self, x, y=None):
        return x @ self.w


@pytest.mark.parametrize("loss, penalty", [("r3gan", 0.5 * 0.1 * (25 + 25)), ("hinge", 0.5 * 0.1 * 25)])
def test_r3gan_pairs_real_with_fake_and_penalises_both(loss, penalty):
    """R3GAN (Huang et al. 2024): L_D = E softplus(D(fake) − D(real)) + γ/2 (R1 + R2), G's loss the mirror pairing.
    Other losses with r1_gamma get R1 only."""
    from gan_core import build_config
    from gan_core.engine.gan import GAN
    from gan_core.models import build_models
    cfg = build_config("2d-default", loss=loss, r1_gamma=0.1).validate()
    G, _ = build_models(cfg, 0, 0)
    gan = GAN(cfg, G, LinearD())
    real, fake = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    loss_d, d_real, d_fake = gan.d_loss(real, fake)
    assert d_real.tolist() == [3.0, 4.0] and d_fake.tolist() == [0.0, 7.0]
    assert loss_d.item() == pytest.approx(gan.loss.d(d_real, d_fake).item() + penalty, rel=1e-6)
    pairing = LOSSES["r3gan"]
    assert pairing.d(d_real, d_fake).item() == pytest.approx((math.log1p(math.exp(-3)) + math.log1p(math.exp(3))) / 2)
    assert pairing.g(d_fake, d_real).item() == pytest.approx(pairing.d(d_fake, d_real).item())
