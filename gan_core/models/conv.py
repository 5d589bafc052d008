"""Convolutional G and D from the tutorials, as flat nn.Sequential bodies. `f` is the width multiplier
(g_features / d_features); at f = 64 each net is exactly its tutorial's."""
from __future__ import annotations

import torch.nn as nn

from .common import Dropout, norm2d


def dcgan28(cfg, channels: int, size: int, num_classes: int):
    """Tutorial 001's InfoGAN net. G: FC 1024 → FC 7·7·128 → convT 64 → convT C (ReLU + BatchNorm after each);
    D: two 5×5 convs with max-pool, FC 1024, FC 1 (LeakyReLU 0.01). The tutorial forgets the ReLU after the
    second FC; the InfoGAN paper it copies has it, and so do we. D pools before its LeakyReLU: the activation is
    increasing, so max-then-activate is the tutorial's activate-then-max exactly, on a quarter of the values."""
    fg, fd = cfg.g_features, cfg.d_features
    g = nn.Sequential(
        nn.Linear(cfg.z_dim + num_classes, 16 * fg), nn.ReLU(), nn.BatchNorm1d(16 * fg),
        nn.Linear(16 * fg, 7 * 7 * 2 * fg), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 2 * fg),
        nn.Unflatten(1, (2 * fg, 7, 7)),
        nn.ConvTranspose2d(2 * fg, fg, 4, 2, 1), nn.ReLU(), nn.BatchNorm2d(fg),
        nn.ConvTranspose2d(fg, channels, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(channels + num_classes, fd // 2, 5), nn.MaxPool2d(2, 2), nn.LeakyReLU(0.01),
        nn.Conv2d(fd // 2, fd, 5), nn.MaxPool2d(2, 2), nn.LeakyReLU(0.01),
        nn.Flatten(),
        nn.Linear(4 * 4 * fd, 16 * fd), nn.LeakyReLU(0.01),
        nn.Linear(16 * fd, 1),
    )
    return g, d, "channels"


def dcgan32(cfg, channels: int, size: int, num_classes: int):
    """Tutorial 000: transposed convs z → 256 → 128 → 64 → C from 1×1 to 32×32; D its mirror, LeakyReLU 0.2."""
    fg, fd, norm = cfg.g_features, cfg.d_features, cfg.d_norm
    g = nn.Sequential(
        nn.Unflatten(1, (cfg.z_dim + num_classes, 1, 1)),
        nn.ConvTranspose2d(cfg.z_dim + num_classes, 4 * fg, 4, 1, 0), nn.BatchNorm2d(4 * fg), nn.ReLU(True),
        nn.ConvTranspose2d(4 * fg, 2 * fg, 4, 2, 1), nn.BatchNorm2d(2 * fg), nn.ReLU(True),
        nn.ConvTranspose2d(2 * fg, fg, 4, 2, 1), nn.BatchNorm2d(fg), nn.ReLU(True),
        nn.ConvTranspose2d(fg, channels, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(channels + num_classes, fd, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(fd, 2 * fd, 4, 2, 1), norm2d(norm, 2 * fd), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * fd, 4 * fd, 4, 2, 1), norm2d(norm, 4 * fd), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * fd, 1, 4, 1, 0),
    )
    return g, d, "channels"


def dcgan64(cfg, channels: int, size: int, num_classes: int):
    """Tutorial 004: the DCGAN paper's 64×64 net, features × (16, 8, 4, 2) in G and × (1, 2, 4, 8) in D."""
    fg, fd, norm = cfg.g_features, cfg.d_features, cfg.d_norm

    def up(a, b, stride=2, pad=1):
        return [nn.ConvTranspose2d(a, b, 4, stride, pad, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

    def down(a, b):
        return [nn.Conv2d(a, b, 4, 2, 1, bias=False), norm2d(norm, b), nn.LeakyReLU(0.2)]

    g = nn.Sequential(
        nn.Unflatten(1, (cfg.z_dim + num_classes, 1, 1)),
        *up(cfg.z_dim + num_classes, 16 * fg, 1, 0), *up(16 * fg, 8 * fg), *up(8 * fg, 4 * fg), *up(4 * fg, 2 * fg),
        nn.ConvTranspose2d(2 * fg, channels, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(channels + num_classes, fd, 4, 2, 1), nn.LeakyReLU(0.2),
        *down(fd, 2 * fd), *down(2 * fd, 4 * fd), *down(4 * fd, 8 * fd),
        nn.Conv2d(8 * fd, 1, 4, 2, 0),
    )
    return g, d, "channels"


def upconv(cfg, channels: int, size: int, num_classes: int):
    """Tutorial 003 (Keras): dense → 7×7×128, nearest upsampling + 3×3 convs; D with dropout 0.25 and BatchNorm
    momentum 0.8 (Keras' 0.8 keeps 80% of the old average = PyTorch momentum 0.2). The tutorial ends G with
    ReLU, which cannot produce the negative half of the [-1, 1] data range; we end with Tanh."""
    fg, fd, norm = cfg.g_features, cfg.d_features, cfg.d_norm
    g = nn.Sequential(
        nn.Linear(cfg.z_dim + num_classes, 2 * fg * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (2 * fg, 7, 7)),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(2 * fg, 2 * fg, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(2 * fg, momentum=0.2, eps=1e-3),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(2 * fg, fg, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(fg, momentum=0.2, eps=1e-3),
        nn.Conv2d(fg, channels, 3, padding=1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(channels + num_classes, fd // 2, 3, 2, 1), nn.LeakyReLU(0.2), Dropout(0.25),
        nn.Conv2d(fd // 2, fd, 3, 2, 1), nn.ZeroPad2d((0, 1, 0, 1)),
        norm2d(norm, fd, 0.2, 1e-3), nn.LeakyReLU(0.2), Dropout(0.25),
        nn.Conv2d(fd, 2 * fd, 3, 2, 1), norm2d(norm, 2 * fd, 0.2, 1e-3), nn.LeakyReLU(0.2), Dropout(0.25),
        nn.Conv2d(2 * fd, 4 * fd, 3, 1, 1), norm2d(norm, 4 * fd, 0.2, 1e-3), nn.LeakyReLU(0.2), Dropout(0.25),
        nn.Flatten(), nn.Linear(4 * fd * 4 * 4, 1),
    )
    return g, d, "channels"
