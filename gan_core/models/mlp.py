"""Fully connected G and D: tutorial 002 / tutorial 001's MNIST MLPs, and the small nets of the 2-D playground."""
from __future__ import annotations

import math

import torch.nn as nn


def mlp_stack(sizes: list[int], act, out_act: nn.Module | None = None) -> list[nn.Module]:
    """Linear layers through `sizes`, a fresh `act()` between them, `out_act` at the end."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    if out_act is not None:
        layers.append(out_act)
    return layers


def mlp(cfg, channels: int, size: int, num_classes: int):
    """Tutorial 002: G z-256-256-784 ReLU/Tanh, D 784-256-256-1 LeakyReLU(0.2); widths and slope from the config."""
    pixels = channels * size * size
    g = nn.Sequential(*mlp_stack([cfg.z_dim + num_classes, *cfg.g_hidden, pixels], nn.ReLU, nn.Tanh()),
                      nn.Unflatten(1, (channels, size, size)))
    d = nn.Sequential(nn.Flatten(), *mlp_stack([pixels + num_classes, *cfg.d_hidden, 1], lambda: nn.LeakyReLU(cfg.leaky_slope)))
    return g, d, "flat"


def mlp2d(cfg, channels: int, size: int, num_classes: int):
    """GAN Lab-style nets for 2-D points: ReLU G, LeakyReLU D; depth and width = the hidden lists."""
    g = nn.Sequential(*mlp_stack([cfg.z_dim, *cfg.g_hidden, 2], nn.ReLU))
    d = nn.Sequential(*mlp_stack([2, *cfg.d_hidden, 1], lambda: nn.LeakyReLU(cfg.leaky_slope)))
    return g, d, "flat"


def count_params(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())
