"""Where and how fast a run computes: the device, its label, the precision it trains in and why, and the most CPU
threads a run may take.

Precision `auto` (the default) takes bf16 autocast only where the hardware runs it natively: a CUDA GPU with bf16,
or a CPU with AMX tiles. Elsewhere bf16 costs a cast per op and saves little: on CPUs with AVX-512 but no AMX it
measured about half fp32's speed (benchmarks/throughput.py --sections levers), so auto stays on fp32 there."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .threads import core_share


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


def amx_tiles() -> bool:
    """Intel AMX tiles visible to this process (Sapphire Rapids and later; some VMs hide them)."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def cuda_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs at all here (natively or emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return amx_tiles() or torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") or \
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


@dataclass(frozen=True)
class Precision:
    bf16: bool
    label: str  # "bf16 — auto: AMX", "fp32 — auto: no AMX", "fp32"
    note: str = ""  # for the run's log when an explicit choice could not be honoured as asked


def choose_precision(requested: str, device: torch.device, points: bool = False) -> Precision:
    """`requested` is the config's fp32 | bf16 | auto; `points`: a 2-D run, whose nets are so small that bf16 only
    rounds (on an AMX CPU the 2-d-default ring run, 300 steps: 5 of 8 modes in fp32, 0 in bf16, and slower)."""
    if requested == "fp32":
        return Precision(False, "fp32")
    if requested == "bf16":
        if not bf16_supported(device):
            return Precision(False, "fp32 — bf16 unsupported here",
                             f"bf16 is not supported on this {device.type}; training in fp32 instead")
        if device.type == "cpu" and not amx_tiles():
            return Precision(True, "bf16", "bf16 on this CPU (no AMX) is usually slower than fp32; it saves memory, "
                                           "not time")
        return Precision(True, "bf16")
    if points:
        return Precision(False, "fp32 — auto: 2-D points")
    if device.type == "cuda":
        return Precision(True, "bf16 — auto: GPU with bf16") if cuda_bf16(device) else \
            Precision(False, "fp32 — auto: GPU without bf16")
    if device.type == "cpu":
        return Precision(True, "bf16 — auto: AMX") if amx_tiles() else Precision(False, "fp32 — auto: no AMX")
    return Precision(False, f"fp32 — auto: {device.type.upper()} (no native bf16 path)")


def cpu_threads(cfg) -> int:
    """Intra-op threads for a CPU run: the config's, else the most it may take: this process's share of the cores
    (torchrun splits them among its local processes, runs in one process split them among themselves). With
    `threads: 0` the run then measures 1 thread against that share and keeps the faster (threads.AdaptiveThreads):
    a fixed rule cannot know the machine. Measured on a 2-core CPU, 2 threads vs 1: quiet and headless classic-mlp
    17.8k vs 13.2k images/s, fast-mnist 2.76k vs 1.63k; in the dashboard with 5 viewers classic-mlp 1.1k vs 8.6k;
    fast-mnist on a machine other users kept busy 23 vs 455 (benchmarks/busy.py)."""
    return cfg.threads or core_share()
