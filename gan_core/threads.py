"""Which threads may use a pool of OpenMP threads: only the training thread. And whether a dashboard shares the
process (then light nets leave it a core: trainer.cpu_threads).

GNU OpenMP (PyTorch's on Linux) spins briefly before a waiting thread sleeps, which is what makes many small
parallel ops fast. Once a process holds more pooled threads than cores it cuts that spin to ~100 iterations, and a
pool lives as long as the thread that made it. So one stray pool anywhere (the thread that built a Trainer, a
dashboard script, the evaluation worker) throttles the training thread's own: classic-mlp on 2 threads went from
18.2k to 7.8k images/s on a 2-core CPU (benchmarks/throughput.py). Every other thread computes on one thread.
"""
from __future__ import annotations

import contextlib

import torch


def one_intra_op_thread_here() -> None:
    """Compute on this thread without an OpenMP pool of its own (see the module's docstring). A thread that has
    already made one keeps it; call this before its first parallel op."""
    torch.set_num_threads(1)


@contextlib.contextmanager
def torch_threads(n: int):
    """A block (or, as `@torch_threads(n)`, a function) on n intra-op threads; the thread's count is restored.
    torch's setting is per calling thread (OpenMP/MKL thread-local): other threads keep theirs."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_dashboard = False


def serve_dashboard_here() -> None:
    """Called by the dashboard's script: its server threads (websocket, page runs) compete with training for cores."""
    global _dashboard
    _dashboard = True


def dashboard_in_process() -> bool:
    return _dashboard
