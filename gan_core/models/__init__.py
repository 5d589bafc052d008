"""Architecture registry: name → a function building (G body, D body, conditioning mode).

A new architecture is one module with its build function and one entry in ARCHS (README: Contributing); the
entry's `settings` names the config fields it reads, so the Train form shows them only for it."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import torch

from .common import Discriminator, Generator, add_spectral_norm, init_weights, use_generator
from .conv import dcgan28, dcgan32, dcgan64, upconv
from .mlp import count_params, mlp, mlp2d


@dataclass(frozen=True)
class ArchInfo:
    name: str
    kind: str  # "image" or "points"
    native_size: int  # 0 = any size (MLPs)
    description: str
    build: Callable
    settings: tuple[str, ...] = ()  # config fields this architecture reads (the Train form shows only these)


MLP_SETTINGS = ("g_hidden", "d_hidden", "leaky_slope")
CONV_SETTINGS = ("g_features", "d_features", "d_norm")
ARCHS: dict[str, ArchInfo] = {
    "mlp": ArchInfo("mlp", "image", 0, "Fully connected G and D (tutorials 001, 002). Any image size.", mlp,
                    MLP_SETTINGS + ("image_size",)),
    "dcgan28": ArchInfo("dcgan28", "image", 28, "InfoGAN-style conv net for 28×28 (tutorial 001).", dcgan28,
                        ("g_features", "d_features")),
    "dcgan32": ArchInfo("dcgan32", "image", 32, "DCGAN for 32×32, transposed convs (tutorial 000).", dcgan32, CONV_SETTINGS),
    "dcgan64": ArchInfo("dcgan64", "image", 64, "The DCGAN paper's 64×64 net (tutorial 004).", dcgan64, CONV_SETTINGS),
    "upconv": ArchInfo("upconv", "image", 28, "Nearest upsampling + 3×3 convs, Keras style (tutorial 003).", upconv,
                       CONV_SETTINGS),
    "mlp2d": ArchInfo("mlp2d", "points", 0, "Small MLPs for 2-D point sets (the playground).", mlp2d, MLP_SETTINGS),
}


_INIT_LOCK = threading.Lock()


def arch_info(name: str) -> ArchInfo:
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHS)}") from None


def image_size_for(cfg) -> int:
    """The side length a run trains at: the arch's native size, else the config's, else 28."""
    return arch_info(cfg.arch).native_size or cfg.image_size or 28


def build_models(cfg, channels: int, num_classes: int, seed: int | None = None) -> tuple[Generator, Discriminator]:
    """G and D for a validated config, initialised from `seed` without touching the global RNG stream."""
    info = arch_info(cfg.arch)
    classes = num_classes if cfg.conditional else 0
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):  # runs start from several threads at once
        torch.manual_seed(cfg.seed if seed is None else seed)
        g_body, d_body, cond_mode = info.build(cfg, channels, image_size_for(cfg), classes)
        init_weights(g_body, cfg.init)
        init_weights(d_body, cfg.init)
        if cfg.spectral_norm:
            add_spectral_norm(d_body)
    return Generator(g_body, cfg.z_dim, classes), Discriminator(d_body, classes, cond_mode)


__all__ = ["ARCHS", "ArchInfo", "arch_info", "build_models", "image_size_for", "count_params", "Generator", "Discriminator",
           "use_generator"]
