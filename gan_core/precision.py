"""Which number format a run trains in, and why, in words a user sees (Monitor, the CLI).

`auto` (the default) takes bf16 autocast only where the hardware runs it natively: a CUDA GPU with bf16, or a CPU
with AMX tiles. Elsewhere bf16 costs a cast per op and saves little: on CPUs with AVX-512 but no AMX it measured
about half fp32's speed (benchmarks/throughput.py --sections levers), so auto stays on fp32 there.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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


def choose_precision(requested: str, device: torch.device) -> Precision:
    """`requested` is the config's fp32 | bf16 | auto."""
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
    if device.type == "cuda":
        return Precision(True, "bf16 — auto: GPU with bf16") if cuda_bf16(device) else \
            Precision(False, "fp32 — auto: GPU without bf16")
    if device.type == "cpu":
        return Precision(True, "bf16 — auto: AMX") if amx_tiles() else Precision(False, "fp32 — auto: no AMX")
    return Precision(False, f"fp32 — auto: {device.type.upper()} (no native bf16 path)")
