"""How much memory a config's models will take, known before a single weight exists.

A config can be valid field by field and still ask for more than the machine has (an MLP of eight 8192-wide
layers at 256×256×3 is 4.2 G parameters: ~70 GiB with Adam). The models are built on PyTorch's "meta"
device, which records shapes and allocates nothing, and one batch goes through them there to count
activations. Refused configs never reach the real build.
"""
from __future__ import annotations

import os

import torch

from ..config import ConfigError

ADAM_STATE = 2  # exp_avg and exp_avg_sq per parameter
ACTIVATION_COPIES = 3  # forward outputs kept for backward, their gradients, and the working copies of a step


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 16 * 2**30


def budget_bytes(device: str = "auto") -> tuple[int, str]:
    """(bytes a run may plan to use, where that number comes from): most of a GPU's memory when the run
    will train on one, else half the machine's memory (the server, the data and other runs need the rest)."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        return int(total * 0.9), f"90% of the GPU's {total / 2**30:.1f} GiB"
    total = _memory_bytes()
    return total // 2, f"half of this machine's {total / 2**30:.1f} GiB of memory"


def estimate(cfg, with_activations: bool = True) -> dict:
    """Parameters of G and D, activation values of one training batch, and the bytes a training step needs
    (fp32 weights, gradients, optimiser state, EMA copy, activations), from shapes alone. The activation count
    runs one batch on the meta device (its first use in a process imports ~1-5 s of PyTorch internals)."""
    from ..data import dataset_info
    from ..models import arch_info
    from ..models.common import Discriminator, Generator
    info, data = arch_info(cfg.arch), dataset_info(cfg.dataset)
    channels = cfg.channels or data.channels
    classes = data.num_classes if cfg.conditional else 0
    with torch.device("meta"):
        g_body, d_body, cond_mode = info.build(cfg, channels, _size(cfg), classes)
        G, D = Generator(g_body, cfg.z_dim, classes), Discriminator(d_body, classes, cond_mode)
        activations = _activations(info, cfg, channels) if with_activations else 0
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    states = (2 + (ADAM_STATE if cfg.optimizer == "adam" else 1))  # weights, grads, optimiser state
    values = (g_params + d_params) * states + (g_params if cfg.ema else 0) + activations * ACTIVATION_COPIES
    return {"g_params": g_params, "d_params": d_params, "activations": activations, "bytes": values * 4}


def _activations(info, cfg, channels: int) -> int:
    """Values one batch creates in a forward pass of G then D (counted on the meta device, unconditional)."""
    from ..models.common import Discriminator, Generator
    g_body, d_body, cond_mode = info.build(cfg, channels, _size(cfg), 0)
    G, D = Generator(g_body, cfg.z_dim, 0), Discriminator(d_body, 0, cond_mode)
    total = [0]

    def count(module, inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output.numel()

    for net in (G, D):
        for m in net.modules():
            if not any(m.children()):
                m.register_forward_hook(count)
    try:
        D(G(torch.empty(cfg.batch_size, cfg.z_dim)))
    except RuntimeError:  # a shape the arch cannot take is the real build's to report
        return 0
    return total[0]


def _size(cfg) -> int:
    from ..models import image_size_for
    return image_size_for(cfg)


def model_budget_problem(cfg) -> str | None:
    """One line when the config's models would not fit (with the estimate and the budget), else None."""
    limit, why = budget_bytes(cfg.device)
    need = estimate(cfg, with_activations=False)  # weights alone already too big: refused in milliseconds
    if need["bytes"] <= limit:
        need = estimate(cfg)
    if need["bytes"] <= limit:
        return None
    acts = f", plus {need['activations'] / 1e6:,.1f} M activation values per batch" if need["activations"] else ""
    return (f"these networks need about {need['bytes'] / 2**30:.1f} GiB to train (G {need['g_params'] / 1e6:,.1f} M "
            f"and D {need['d_params'] / 1e6:,.1f} M parameters with gradients and optimiser state{acts}), over the "
            f"{limit / 2**30:.1f} GiB budget ({why}); use narrower or fewer layers, a smaller image size or a smaller batch")


def check_model_budget(cfg) -> None:
    """ConfigError (on the field that sizes the nets) when the config's models would not fit."""
    problem = model_budget_problem(cfg)
    if problem:
        field = "g_hidden" if cfg.arch.startswith("mlp") else "g_features"
        raise ConfigError({field: problem})
