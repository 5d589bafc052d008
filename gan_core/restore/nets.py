"""The trained restorer's networks (pix2pix / SRGAN style, sized for a CPU).

G: a small U-Net from the damaged image (plus the mask, for inpainting; the low-res image up-sampled, for
super-resolution) to the full image, with what is known put back exactly inside forward(), so its loss and its
output only concern what was missing. D: a conditional PatchGAN judging (damaged, restored) pairs, one logit per
patch (Isola et al. 2017)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .damage import keep_known, match_low_res


def condition(task: str, given: torch.Tensor, mask: torch.Tensor | None, factor: int) -> torch.Tensor:
    """What G and D are conditioned on, at full size: the damaged image and its mask, or the low-res image
    up-sampled by repeating pixels (so its block means are exactly the low-res input)."""
    if task == "inpaint":
        return torch.cat([given * mask, mask], 1)
    return F.interpolate(given, scale_factor=factor, mode="nearest")


class RestorerG(nn.Module):
    """A lean U-Net: one 3×3 conv at full size, strided convs down to ¼ size, a dilated middle that sees the whole
    of a 28×28 digit, transposed convs back up with skips. Most work happens at ¼ size: CPU-friendly."""

    def __init__(self, task: str, channels: int, width: int, factor: int = 4, downsample: str = "area"):
        super().__init__()
        self.task, self.channels, self.factor, self.downsample = task, channels, factor, downsample
        self.num_classes, self.z_dim = 0, 0  # what the rest of the library asks a G (no noise, no classes)
        cin = channels + (1 if task == "inpaint" else 0)
        w = width
        act = nn.LeakyReLU(0.2)
        self.enc1 = nn.Sequential(nn.Conv2d(cin, w, 3, padding=1), act)
        self.enc2 = nn.Sequential(nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), act)
        self.enc3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), act)
        self.middle = nn.Sequential(*[m for d in (1, 2) for m in (nn.Conv2d(4 * w, 4 * w, 3, padding=d, dilation=d),
                                                                   nn.BatchNorm2d(4 * w), nn.ReLU())])
        self.up2 = nn.Sequential(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU())
        self.up1 = nn.Sequential(nn.ConvTranspose2d(4 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU())
        self.out = nn.Sequential(nn.Conv2d(2 * w, channels, 3, padding=1), nn.Tanh())

    def forward(self, cond: torch.Tensor, y=None) -> torch.Tensor:
        """The restored image from the condition (see `condition`); `y` is unused (the GAN engine passes it)."""
        e1 = self.enc1(cond)
        e2 = self.enc2(e1)
        h = self.middle(self.enc3(e2))
        h = self.up1(torch.cat([self.up2(h), e2], 1))
        out = self.out(torch.cat([h, e1], 1))
        if self.task == "inpaint":
            return keep_known(out, cond[:, :-1], cond[:, -1:])
        return match_low_res(out, F.avg_pool2d(cond, self.factor), self.factor) if self.downsample == "area" else out


class PatchD(nn.Module):
    """Conditional PatchGAN: D(image, condition) → a logit per ~10×10 patch, flattened (B·patches,)."""

    def __init__(self, cond_channels: int, channels: int, width: int):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(cond_channels + channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, padding=1))

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([cond, image], 1)).reshape(-1)


def build_restorer(cfg, channels: int, num_classes: int = 0) -> tuple[RestorerG, PatchD]:
    """G and D of a restorer run, seeded like every run's nets."""
    from ..models.common import init_weights
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G = RestorerG(cfg.task, channels, cfg.g_features, cfg.factor, cfg.downsample)
        D = PatchD(channels + (1 if cfg.task == "inpaint" else 0), channels, cfg.d_features)
        init_weights(G, cfg.init)
        init_weights(D, cfg.init)
    return G, D


def restore_with(G: RestorerG, given: torch.Tensor, mask: torch.Tensor | None = None, batch: int = 500) -> torch.Tensor:
    """A trained G over many images, eval mode, in batches."""
    device = next(G.parameters()).device
    G.eval()
    with torch.no_grad():
        return torch.cat([G(condition(G.task, given[i:i + batch].to(device),
                                      None if mask is None else mask[i:i + batch].to(device), G.factor))
                          .float().clamp(-1, 1).cpu() for i in range(0, len(given), batch)])


__all__ = ["RestorerG", "PatchD", "build_restorer", "condition", "restore_with"]
