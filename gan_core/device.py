"""Where and how fast a run computes: the device, its label, the precision it can use, the CPU threads a run
takes and the FLOPs of one forward pass (to size a step's work without timing it)."""
from __future__ import annotations

import os

import torch

from .threads import dashboard_in_process, torch_threads

LIGHT_MFLOPS = 10.0  # G + D forward MFLOPs per image below which a step counts as light (see cpu_threads)


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA if present, else Apple MPS, else CPU. An unavailable explicit choice raises."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: CUDA was requested but no CUDA GPU is available; use `auto` or `cpu`")
    if name == "mps" and not _mps_available():
        raise ValueError("device: MPS was requested but is not available here; use `auto` or `cpu`")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return {"mps": "Apple GPU (MPS)"}.get(device.type, "CPU")


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")() in ("AVX512", "AMX")) or \
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def bf16_is_slow(device: torch.device) -> bool:
    """A CPU with AVX512-BF16 but no AMX tiles: bf16 autocast measured about half fp32's speed there
    (benchmarks/throughput.py), because every cast costs more than the narrower maths saves."""
    return device.type == "cpu" and not getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()


def choose_precision(precision: str, device: torch.device) -> tuple[bool, list[str]]:
    """(use bf16 autocast, notes for the run's events): bf16 only where asked for and supported."""
    if precision != "bf16":
        return False, []
    if not bf16_supported(device):
        return False, [f"bf16 is not supported on this {device.type}; training in fp32 instead"]
    if bf16_is_slow(device):
        return True, ["bf16 on this CPU (no AMX) is usually slower than fp32; it saves memory, not time"]
    return True, []


def cpu_threads(cfg, light: bool | None = None) -> int:
    """Intra-op threads for a CPU run: the config's, else this process's share of the cores (torchrun splits them
    among its local processes), halved for light nets (`light`; default: MLPs) in a process that also serves the
    dashboard. A light step (classic-mlp 1.1, fast-mnist 4.8 MFLOP/image) is many small ops whose OpenMP barriers
    stall whenever another thread takes a core; heavy conv nets are compute-bound and gain from every core anyway.
    Measured on a 2-core CPU, 2 threads vs 1: headless with live evaluation (benchmarks/throughput.py --sections
    threads) classic-mlp 17.8k vs 13.2k images/s, fast-mnist 2.76k vs 1.63k, classic-dcgan 645 vs 334; in the
    dashboard (benchmarks/sessions.py) classic-mlp 5.1k vs 13.5k unwatched and 1.1k vs 8.6k with 5 viewers,
    classic-dcgan 381 vs 278 with 3 viewers."""
    if cfg.threads:
        return cfg.threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    share = max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if light is None:
        light = cfg.arch in ("mlp", "mlp2d")
    return max(1, share // 2) if light and dashboard_in_process() else share


@torch.no_grad()
@torch_threads(1)  # any thread may ask (threads.py)
def forward_mflops(G: torch.nn.Module, D: torch.nn.Module, z_dim: int, device) -> float:
    """MFLOPs of G then D on one image (eval mode, counted on two), to size a step's work without timing it."""
    from torch.utils.flop_counter import FlopCounterMode
    modes = G.training, D.training
    G.eval()
    D.eval()
    try:
        y = torch.zeros(2, dtype=torch.long, device=device) if G.num_classes else None
        with FlopCounterMode(display=False) as counter:
            D(G(torch.zeros(2, z_dim, device=device), y), y)
    finally:
        G.train(modes[0])
        D.train(modes[1])
    return counter.get_total_flops() / 2 / 1e6
