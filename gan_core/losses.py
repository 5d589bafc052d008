"""Loss registry. Every loss works on D's raw logits / critic scores (numerically stable, as tutorial 001 advises).

A new loss is two small functions and one entry in LOSSES (README: Contributing). `scores` says how D's outputs
are reported: "probability" (sigmoid of the logit, the BCE family) or "critic" (the raw score); `settings` names
the config fields only this loss uses, so the Train form shows them only for it. The GAN (gan.py) applies the
entry's flags: weight clipping, the WGAN-GP penalty, R2 next to R1, a relativistic G loss."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """−log D(x) − log(1 − D(G(z))): the discriminator side of both minimax and non-saturating GANs."""
    return _bce(real, real_target) + _bce(fake, 0.0)


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """The paper's saturating loss: minimise log(1 − D(G(z))) = −softplus(logit). Its gradient vanishes
    when D confidently rejects the fakes, which is why practice switched to the non-saturating form."""
    return -F.softplus(fake).mean()


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating: minimise −log D(G(z)), what all the tutorials do."""
    return _bce(fake, 1.0)


def lsgan_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Mao et al. 2017, eq. 9 as in tutorial 001: ½(D(x) − 1)² + ½D(G(z))²."""
    return 0.5 * (real - real_target).pow(2).mean() + 0.5 * fake.pow(2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1.0).pow(2).mean()


def wgan_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Critic maximises E[D(x)] − E[D(G(z))] (Arjovsky et al. 2017). Label smoothing has no meaning here."""
    return fake.mean() - real.mean()


def wgan_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Geometric GAN / SAGAN: E[relu(1 − D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def rpgan_d(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """R3GAN's relativistic pairing loss (Huang et al. 2024, eq. 2): E[softplus(D(G(z)) − D(x))] over paired
    real and fake samples. D is judged on how much more real each real sample looks than its fake partner."""
    return F.softplus(fake - real).mean()


def rpgan_g(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """G's side of the pairing: E[softplus(D(x) − D(G(z)))]."""
    return F.softplus(real - fake).mean()


@dataclass(frozen=True)
class Loss:
    d: Callable  # (real_scores, fake_scores, real_target) -> scalar
    g: Callable  # (fake_scores) -> scalar
    scores: str  # "probability" or "critic"
    description: str
    settings: tuple[str, ...] = ()  # config fields only this loss uses (the Train form shows them for it alone)
    clip_weights: bool = False  # WGAN's weight clipping after every D step
    gradient_penalty: bool = False  # WGAN-GP's penalty on interpolates
    r2: bool = False  # r1_gamma also penalises D's gradient at fake samples (R2; R3GAN)
    relativistic: bool = False  # g takes (fake_scores, real_scores): G's loss also scores a real batch

    def display(self, scores: torch.Tensor) -> torch.Tensor:
        """What to report as D(real)/D(fake): a probability for the BCE family, the raw score otherwise."""
        return torch.sigmoid(scores) if self.scores == "probability" else scores


LOSSES: dict[str, Loss] = {
    "minimax": Loss(bce_d, minimax_g, "probability", "The original saturating minimax game (Goodfellow et al. 2014)."),
    "bce": Loss(bce_d, bce_g, "probability", "Non-saturating GAN loss: G maximises log D(G(z)). The tutorials' choice."),
    "lsgan": Loss(lsgan_d, lsgan_g, "critic", "Least-squares GAN (Mao et al. 2017): smoother gradients far from the boundary."),
    "wgan": Loss(wgan_d, wgan_g, "critic", "Wasserstein GAN with weight clipping (Arjovsky et al. 2017).",
                 settings=("clip_value",), clip_weights=True),
    "wgan-gp": Loss(wgan_d, wgan_g, "critic", "WGAN with gradient penalty λ·(‖∇D‖ − 1)² (Gulrajani et al. 2017).",
                    settings=("gp_lambda",), gradient_penalty=True),
    "hinge": Loss(hinge_d, wgan_g, "critic", "Hinge loss (Lim & Ye 2017; SAGAN, BigGAN)."),
    "r3gan": Loss(rpgan_d, rpgan_g, "critic", "R3GAN: relativistic pairing loss with R1 + R2 penalties, γ = r1_gamma "
                  "(Huang et al. 2024).", r2=True, relativistic=True),
}


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, y=None, generator=None) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ between real and fake samples (Gulrajani et al. 2017)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(mixed, y)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


def r1_penalty(real_scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E[‖∇D(x)‖²] at real data (Mescheder et al. 2018); `real` must have requires_grad."""
    (grad,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
